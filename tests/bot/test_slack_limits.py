"""The hourly lookup limit through the real app: it holds while audit writes wait for a long
SQLite write lock, no audit row is lost, and supervisors get one alert and one recovery."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from jobs.auth0 import Auth0Client
from jobs.limits import limit_recovery_job
from jobs.schedule import Deps
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.slack_workspace import (
    AGENT,
    ALERTS,
    OTHER_AGENT,
    SHARED,
    Workspace,
    import_sample,
    open_workspace,
)
from tests.conftest import Clock, write_locked
from tests.fake_slack import visible_text


def no_auth0() -> Auth0Client:
    raise AssertionError("the limit job never calls Auth0")


def whois(ws: Workspace, user: str = AGENT) -> str:
    return visible_text(ws.send.command("/whois", SHARED, user).json())


def test_the_limit_holds_while_audit_rows_wait_and_every_row_is_written_in_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "index.db"
    store = Store(open_database(f"sqlite:///{path}"))
    import_sample(store)
    with open_workspace(store, MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=2) as ws:
        with write_locked(path):
            answers = []
            for _ in range(6):
                started = time.monotonic()
                answers.append(whois(ws))
                assert time.monotonic() - started < 2  # answered, not held up by the lock
            assert whois(ws, OTHER_AGENT).count("Jane Doe") == 1  # others keep their own
            assert ws.ctx.answers.trail.audit.entries() == []  # nothing written yet
        entries = ws.audit()  # waits for the writes, now that the lock is gone
        alerts = ws.slack.messages(ALERTS)

    assert ["3 accounts" in a for a in answers] == [True, True, False, False, False, False]
    for refused in answers[2:]:
        assert "2 lookups in the last hour; the limit is 2" in refused
        assert "Jane" not in refused
    mine = [e["via"] for e in reversed(entries) if e["actor"] == AGENT]
    assert mine == ["slack", "slack"] + ["slack-refused"] * 4
    stamps = [e["at"] for e in reversed(entries)]
    assert stamps == sorted(stamps)  # written in the order they happened
    assert len(alerts) == 1 and "over the lookup limit" in visible_text(alerts[0])
    store.engine.dispose()


def test_one_alert_per_incident_and_one_recovery_when_the_hour_is_over(
    store: Store, clock: Clock
) -> None:
    import_sample(store)
    with open_workspace(store, MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=2) as ws:
        answers = ws.ctx.answers
        deps = Deps(ws.ctx.settings, store, answers.runs, answers.alerts, no_auth0)
        deps.recent_refusal = answers.trail.recent_refusal

        def channel() -> list[str]:
            ws.settle()
            return [visible_text(m).split("\n")[0] for m in ws.slack.messages(ALERTS)]

        start = clock.now
        assert "3 accounts" in whois(ws) and "3 accounts" in whois(ws)
        assert "the limit is 2" in whois(ws)
        assert channel() == [":warning: *An agent is over the lookup limit*"]

        clock.now = start + timedelta(minutes=10)
        assert "the limit is 2" in whois(ws)
        # The first two lookups leave the window: allowed again, but the incident goes on.
        clock.now = start + timedelta(minutes=61)
        assert "3 accounts" in whois(ws) and "3 accounts" in whois(ws)
        assert "the limit is 2" in whois(ws)
        limit_recovery_job(deps)
        assert len(channel()) == 1  # no recovery on an allowed lookup, no second alert

        clock.now = start + timedelta(minutes=61 + 59)
        limit_recovery_job(deps)
        assert len(channel()) == 1  # the last refusal is not an hour old yet
        clock.now = start + timedelta(minutes=61 + 61)
        limit_recovery_job(deps)
        limit_recovery_job(deps)
        assert channel() == [
            ":warning: *An agent is over the lookup limit*",
            ":white_check_mark: *An agent is back under the lookup limit*",
        ]
        assert f"<@{AGENT}> has had no refused lookup for an hour" in visible_text(
            ws.slack.messages(ALERTS)[1]
        )

        # A new incident later is a new alert.
        assert "3 accounts" in whois(ws) and "3 accounts" in whois(ws)
        assert "the limit is 2" in whois(ws)
        assert len(channel()) == 3
