"""Writes deferred after a Slack answer wait out a locked SQLite database instead of failing."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from bot.slack.context import Deferred


def locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def test_a_write_waits_while_the_database_is_locked() -> None:
    tries: list[int] = []

    def write() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise locked()

    writes = Deferred(attempts=5)
    writes.submit("audit record", write)
    writes.flush(timeout=5)
    writes.close()
    assert len(tries) == 3


def test_other_failures_are_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    tries: list[int] = []

    def write() -> None:
        tries.append(1)
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("no such table"))

    writes = Deferred(attempts=5)
    writes.submit("audit record", write)
    writes.flush(timeout=5)
    writes.close()
    assert len(tries) == 1
    assert "deferred audit record failed" in caplog.text
