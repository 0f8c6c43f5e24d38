"""Audit retention: the scheduler's job deletes audit rows older than the retention, in batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from jobs.alerts import Alerts, LoggingNotifier
from jobs.auth0 import Auth0Client
from jobs.retention import audit_retention_job
from jobs.runs import Runs
from jobs.schedule import Deps
from phoneindex.audit import Audit
from phoneindex.audit_spool import Row
from phoneindex.audit_trail import AuditTrail
from phoneindex.db import is_busy, open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.test_cli import run
from tests.conftest import Clock, write_locked

PHONE = "+14155550100"


def no_auth0() -> Auth0Client:
    raise AssertionError("audit retention never calls Auth0")


@pytest.fixture
def audit(store: Store, clock: Clock) -> Audit:
    return Audit(store.engine, secret_key="k", clock=clock)


@pytest.fixture
def deps(store: Store, db_url: str) -> Iterator[Deps]:
    settings = load_settings(database_url=db_url, MFA_WHOIS_AUDIT_RETENTION_DAYS="90")
    alerts = Alerts(store, LoggingNotifier())
    made = Deps(settings, store, Runs(store.engine, store), alerts, no_auth0)
    yield made
    made.close()


def record_aged(audit: Audit, clock: Clock, actor: str, days: float) -> None:
    at = clock() - timedelta(days=days)
    audit.record(actor=actor, via="slack", phone=PHONE, accounts=1, at=at)


def actors(audit: Audit) -> list[str]:
    return sorted(e["actor"] for e in audit.entries())


def test_rows_older_than_the_retention_are_deleted_and_counted_in_the_log(
    deps: Deps, audit: Audit, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    for actor, days in [("fresh", 0), ("d89", 89), ("d89.9", 89.9), ("d90.1", 90.1), ("d91", 91)]:
        record_aged(audit, clock, actor, days)
    record_aged(audit, clock, "d400", 400)

    with caplog.at_level(logging.INFO, logger="jobs.retention"):
        audit_retention_job(deps)

    assert actors(audit) == ["d89", "d89.9", "fresh"]
    assert "audit-retention: deleted 3 audit rows older than 90 days" in caplog.text

    caplog.clear()
    clock.advance(days=1)  # the next day d89.9 is past the retention, d89 not yet
    with caplog.at_level(logging.INFO, logger="jobs.retention"):
        audit_retention_job(deps)
    assert actors(audit) == ["d89", "fresh"]
    assert "deleted 1 audit rows" in caplog.text


def test_the_retention_follows_the_setting(deps: Deps, audit: Audit, clock: Clock) -> None:
    record_aged(audit, clock, "d6", 6)
    record_aged(audit, clock, "d8", 8)
    deps.settings = deps.settings.model_copy(update={"audit_retention_days": 7})
    audit_retention_job(deps)
    assert actors(audit) == ["d6"]


def test_deletes_in_short_batches_each_committed_on_its_own(audit: Audit, clock: Clock) -> None:
    for n in range(7):
        record_aged(audit, clock, f"old{n}", 100 + n)
    record_aged(audit, clock, "new", 1)
    cutoff = clock() - timedelta(days=90)

    batches: list[int] = []

    def stop_after_two() -> bool:
        batches.append(len(audit.entries()))
        return len(batches) > 2

    # Two batches of 3, then asked to stop: those 6 deletions are committed, the rest waits.
    assert audit.delete_before(cutoff, batch_rows=3, pause=0, should_stop=stop_after_two) == 6
    assert batches == [8, 5, 2]
    assert len(audit.entries()) == 2

    assert audit.delete_before(cutoff, batch_rows=3, pause=0) == 1
    assert actors(audit) == ["new"]
    assert audit.delete_before(cutoff, batch_rows=3, pause=0) == 0


def test_a_naive_cutoff_or_empty_batch_is_a_programming_error(audit: Audit, clock: Clock) -> None:
    with pytest.raises(ValueError, match="aware"):
        audit.delete_before(clock().replace(tzinfo=None))
    with pytest.raises(ValueError, match="batch_rows"):
        audit.delete_before(clock(), batch_rows=0)


def test_spooled_rows_are_still_written_and_deleted_only_once_written(
    deps: Deps, audit: Audit, clock: Clock, tmp_path: Path
) -> None:
    # A row an earlier process could not write (left in the spool), already past the retention.
    spool = tmp_path / "spool"
    spool.mkdir()
    old = Row(-1, clock() - timedelta(days=120), "spooled", "slack", audit.phone_hash(PHONE), 2)
    (spool / "left-00000000000000000001-abcdef01.jsonl").write_text(old.dump())

    audit_retention_job(deps)  # the row is not in the table yet: nothing to delete, file kept
    assert len(list(spool.glob("left-*.jsonl"))) == 1

    trail = AuditTrail(audit, spool_dir=spool)
    try:
        assert trail.flush(timeout=10)
    finally:
        trail.close()
    assert actors(audit) == ["spooled"]  # written, with its own time

    audit_retention_job(deps)
    assert actors(audit) == []


@pytest.mark.parametrize("value", ["0", "-5", "ninety"])
def test_a_bad_retention_fails_at_start_with_one_line(value: str, tmp_path: Path) -> None:
    done = run(["status"], tmp_path, MFA_WHOIS_AUDIT_RETENTION_DAYS=value)
    assert done.returncode == 2
    assert done.stderr.startswith("mfa-whois: error: MFA_WHOIS_AUDIT_RETENTION_DAYS: ")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_long_write_lock_makes_it_give_up_quickly_and_retry_later(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "index.db"
    engine = open_database(f"sqlite:///{path}")
    audit = Audit(engine, secret_key="k", clock=clock)
    record_aged(audit, clock, "old", 100)
    cutoff = clock() - timedelta(days=90)
    with write_locked(path):  # an import holds SQLite's write lock
        started = time.monotonic()
        with pytest.raises(OperationalError) as busy:
            audit.delete_before(cutoff, lock_wait=0.2)
        assert is_busy(busy.value) and time.monotonic() - started < 3
    assert actors(audit) == ["old"]
    assert audit.delete_before(cutoff, lock_wait=0.2) == 1
    engine.dispose()
