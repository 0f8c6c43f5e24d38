"""Alert policy: once per incident, a recovery message, shared through the database."""

from __future__ import annotations

from pathlib import Path

from jobs.alerts import Alert, Alerts
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.conftest import write_locked


class Inbox:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Alert] = []
        self.fail = fail

    def send(self, alert: Alert) -> None:
        if self.fail:
            raise ConnectionError("channel down")
        self.sent.append(alert)


def test_an_incident_alerts_once_then_recovers_once(store: Store) -> None:
    inbox = Inbox()
    alerts = Alerts(store, inbox)
    assert alerts.open("sync.full", "Full sync failed", "Auth0 answered 503")
    assert not alerts.open("sync.full", "Full sync failed", "Auth0 answered 503 again")
    # Another process sharing the database sees the same incident.
    assert not Alerts(store, inbox).open("sync.full", "Full sync failed", "again")
    assert alerts.close("sync.full", "Full sync works again", "run 7 succeeded")
    assert not alerts.close("sync.full", "Full sync works again", "run 8 succeeded")
    assert [(a.severity, a.title) for a in inbox.sent] == [
        ("failure", "Full sync failed"),
        ("recovery", "Full sync works again"),
    ]


def test_an_undelivered_alert_is_tried_again_next_time(store: Store) -> None:
    down = Inbox(fail=True)
    assert not Alerts(store, down).open("index.stale", "Index stale", "no full sync for 30 h")
    up = Inbox()
    assert Alerts(store, up).open("index.stale", "Index stale", "no full sync for 31 h")
    assert [a.text for a in up.sent] == ["no full sync for 31 h"]


def test_an_alert_is_recorded_before_it_is_sent(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    store = Store(open_database(f"sqlite:///{db}", busy_timeout_ms=100))
    inbox = Inbox()
    alerts = Alerts(store, inbox)
    with write_locked(db):  # the incident cannot be recorded: nothing is sent
        assert not alerts.open("sync.incremental", "Log sync failed", "Auth0 answered 503")
        assert not alerts.open("sync.incremental", "Log sync failed", "Auth0 answered 503")
    assert inbox.sent == []

    assert alerts.open("sync.incremental", "Log sync failed", "Auth0 answered 503")
    for _ in range(3):
        assert not alerts.open("sync.incremental", "Log sync failed", "Auth0 answered 503")
    with write_locked(db):  # the recovery cannot be recorded: not sent yet, the incident stays
        assert not alerts.close("sync.incremental", "Log sync works again", "run 9 succeeded")
    assert alerts.close("sync.incremental", "Log sync works again", "run 10 succeeded")
    assert not alerts.close("sync.incremental", "Log sync works again", "run 11 succeeded")
    assert [(a.severity, a.text) for a in inbox.sent] == [
        ("failure", "Auth0 answered 503"),
        ("recovery", "run 10 succeeded"),
    ]
    store.engine.dispose()


def test_two_processes_raising_one_incident_send_it_once(store: Store) -> None:
    inbox = Inbox()
    first, second = Alerts(store, inbox), Alerts(store, inbox)
    assert first.open("index.stale", "Index stale", "no full sync for 30 h")
    assert not second.open("index.stale", "Index stale", "no full sync for 30 h")
    assert second.close("index.stale", "Index fresh", "run 3 succeeded")
    assert not first.close("index.stale", "Index fresh", "run 3 succeeded")
    assert [a.severity for a in inbox.sent] == ["failure", "recovery"]
