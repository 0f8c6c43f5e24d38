"""Alert policy: once per incident, a recovery message, shared through the database."""

from __future__ import annotations

from jobs.alerts import Alert, Alerts
from phoneindex.store import Store


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
