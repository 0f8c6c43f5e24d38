"""Alert policy: one message when an incident opens, one when it is over; sent via a notifier.

Incident state lives in the database (checkpoints), so several processes sharing the index
still alert once per incident. The incident is recorded before its message is sent (one atomic
claim, so two processes never both send it): a message whose record could not be written is
not sent at all, and is tried again at the next occurrence, never repeated at every one.
Alert texts never contain full phone numbers: callers pass counts and masked forms only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy.exc import SQLAlchemyError

from phoneindex.db import upsert_insert, writer
from phoneindex.models import checkpoint_table
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


class AlertUndelivered(Exception):
    """No channel of a fan-out took the alert."""


class FanOut:
    """Every alert to every channel (Slack, Teams, ...): one fan-out, not a copy per platform.

    Delivered when at least one channel took it (a channel that failed is logged; retrying the
    incident would repeat it where it arrived); NotifierError only when all of them failed.
    """

    def __init__(self, notifiers: list[Notifier]) -> None:
        self.notifiers = notifiers

    def send(self, alert: Alert) -> None:
        failed = 0
        for notifier in self.notifiers:
            try:
                notifier.send(alert)
            except Exception as exc:  # one channel down must not silence the others
                failed += 1
                log.warning(
                    "alert %s not delivered by %s: %s", alert.key, type(notifier).__name__, exc
                )
        if self.notifiers and failed == len(self.notifiers):
            raise AlertUndelivered(f"no alert channel took {alert.key}")


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
        now = self.clock()
        state = json.dumps({"opened_at": iso(now), "title": title})
        try:
            if self.is_open(key) or not self._claim(key, state, now):
                log.info("incident %s still open; not alerting again", key)
                return False
        except SQLAlchemyError as exc:
            log.warning("alert %s not sent: could not record it (%s); next time", key, _why(exc))
            return False
        if self._send(Alert(key, severity, title, text, now)):
            return True
        try:  # not delivered: forget it, so the next occurrence tries again
            self._release(key)
        except SQLAlchemyError as exc:
            log.warning("alert %s stays recorded though undelivered (%s)", key, _why(exc))
        return False

    def close(self, key: str, title: str, text: str) -> bool:
        """End the incident `key` with a recovery message; nothing if it was not open."""
        try:
            if not self.is_open(key) or not self._release(key):
                return False
        except SQLAlchemyError as exc:
            log.warning("recovery of %s not sent: could not record it (%s)", key, _why(exc))
            return False
        return self._send(Alert(key, "recovery", title, text, self.clock()))

    def is_open(self, key: str) -> bool:
        """Whether an incident is open under `key`."""
        return self.store.get_checkpoint(_PREFIX + key) is not None

    def _claim(self, key: str, state: str, now: datetime) -> bool:
        """Record the incident unless it is already open; True when this call recorded it."""
        c = checkpoint_table.c
        ins = upsert_insert(self.store.engine)(checkpoint_table).values(
            name=_PREFIX + key, value=state, updated_at=now
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[c.name],
            set_={"value": ins.excluded.value, "updated_at": ins.excluded.updated_at},
            where=c.value.is_(None),
        ).returning(c.name)
        with self.store.engine.connect() as conn, writer(conn).begin():
            return conn.execute(stmt).first() is not None

    def _release(self, key: str) -> bool:
        """Close the incident record; True when this call closed it (so sends the recovery)."""
        c = checkpoint_table.c
        with self.store.engine.connect() as conn, writer(conn).begin():
            closed = conn.execute(
                checkpoint_table.update()
                .where(c.name == _PREFIX + key, c.value.is_not(None))
                .values(value=None, updated_at=self.clock())
            ).rowcount
        return bool(closed)

    def _send(self, alert: Alert) -> bool:
        try:
            self.notifier.send(alert)
        except Exception:  # an alert channel being down must not fail the sync itself
            log.exception("could not deliver the %s alert %s", alert.severity, alert.key)
            return False
        return True


def _why(exc: SQLAlchemyError) -> str:
    """The driver's first line (no SQL, no parameters)."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:200]
