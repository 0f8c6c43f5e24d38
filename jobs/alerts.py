"""Alert policy: one message when an incident opens, one when it is over; sent via a notifier.

Incident state lives in the database (checkpoints), so several processes sharing the index
still alert once per incident. Alert texts never contain full phone numbers: callers pass
counts and masked forms only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from phoneindex.store import Store, iso, utcnow

log = logging.getLogger(__name__)

Severity = Literal["failure", "warning", "recovery"]
_PREFIX = "alert."


@dataclass(frozen=True)
class Alert:
    """One message for supervisors."""

    key: str  # the incident, e.g. "sync.full", "mfa.masked", "index.stale"
    severity: Severity
    title: str
    text: str
    at: datetime


class Notifier(Protocol):
    """Where alerts go: the log by default, Slack when configured."""

    def send(self, alert: Alert) -> None: ...


class LoggingNotifier:
    """Alerts as log lines (the default when no alert channel is configured)."""

    def send(self, alert: Alert) -> None:
        level = logging.INFO if alert.severity == "recovery" else logging.WARNING
        log.log(level, "ALERT [%s] %s: %s", alert.severity, alert.title, alert.text)


class Alerts:
    """Once per incident, and a recovery message when it is over."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.notifier = notifier or LoggingNotifier()
        self.clock = clock

    def open(self, key: str, title: str, text: str, *, severity: Severity = "failure") -> bool:
        """Raise the incident `key`; returns True when this call sent the alert."""
        if self.is_open(key):
            log.info("incident %s still open; not alerting again", key)
            return False
        now = self.clock()
        if not self._send(Alert(key, severity, title, text, now)):
            return False  # not recorded: the next occurrence tries again
        state = json.dumps({"opened_at": iso(now), "title": title})
        self.store.set_checkpoint(_PREFIX + key, state)
        return True

    def close(self, key: str, title: str, text: str) -> bool:
        """End the incident `key` with a recovery message; nothing if it was not open."""
        if not self.is_open(key):
            return False
        self.store.set_checkpoint(_PREFIX + key, None)
        return self._send(Alert(key, "recovery", title, text, self.clock()))

    def is_open(self, key: str) -> bool:
        """Whether an incident is open under `key`."""
        return self.store.get_checkpoint(_PREFIX + key) is not None

    def _send(self, alert: Alert) -> bool:
        try:
            self.notifier.send(alert)
        except Exception:  # an alert channel being down must not fail the sync itself
            log.exception("could not deliver the %s alert %s", alert.severity, alert.key)
            return False
        return True
