"""Over-limit incidents end an hour after the last refusal, counting refusals not yet written."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from jobs.alerts import Alerts
from jobs.limits import alert_key, close_finished, limit_alert
from phoneindex.audit import Audit
from phoneindex.audit_trail import AuditTrail
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.conftest import Clock, write_locked
from tests.jobs.test_alerts import Inbox
from tests.phoneindex.test_audit_trail import PHONE, lookup

ACTOR = "U0AGENT"


def test_a_refusal_still_waiting_to_be_written_keeps_the_incident_open(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    clock = Clock()
    engine = open_database(f"sqlite:///{path}", busy_timeout_ms=100)
    audit = Audit(engine, secret_key="k", clock=clock)
    # After a write the lock refused, the trail waits a minute before it tries again.
    trail = AuditTrail(audit, spool_dir=tmp_path / "spool", retry_seconds=60)
    channel = Inbox()
    alerts = Alerts(Store(engine, clock=clock), channel, clock=clock)
    start = clock.now
    try:
        assert lookup(trail, ACTOR, 1)
        clock.now = start + timedelta(minutes=30)
        refused = trail.admit(ACTOR, "slack", PHONE, 1)
        assert refused.ticket is None and refused.first_refusal
        alerts.open(alert_key(ACTOR), *limit_alert("slack", ACTOR, refused.allowance))
        assert trail.flush(5)  # the lookup and the refusal are in the audit table

        clock.now = start + timedelta(minutes=61)
        assert lookup(trail, ACTOR, 1)  # the first lookup has left the window
        assert trail.flush(5)
        with write_locked(path):
            assert not lookup(trail, ACTOR, 1)  # refused again; its row cannot be written
            time.sleep(0.6)  # the writer's try fails after its 0.1 s busy timeout
        assert trail.unwritten() == 1  # the lock is gone; the row waits for the retry

        clock.now = start + timedelta(minutes=91)  # the last *written* refusal: an hour ago
        assert close_finished(alerts, audit, clock.now, trail.recent_refusal) == 0
        assert alerts.is_open(alert_key(ACTOR))
        # What the scheduler did before it knew this process's refusals: a false recovery.
        assert close_finished(alerts, audit, clock.now) == 1
        assert [a.title for a in channel.sent] == [
            "An agent is over the lookup limit",
            "An agent is back under the lookup limit",
        ]
    finally:
        trail.close(timeout=0.1)
        engine.dispose()
