"""Signed Auth0 Action events received (POST /hooks/auth0/action): applied at once, and once.

The event is parsed and mapped (jobs/actions.py) before anything is written; a body that is not
an event is refused whole. Its changes, the record of it (`last_action` in the status document)
and the memory of its id go into one transaction: an event is never applied without its id
being remembered, nor remembered without being applied, and the same id posted again (by any
process sharing the database) is answered as a duplicate with nothing applied. Ids are kept
REMEMBER_FOR (far beyond the signature's 300 s window) and forgotten now and then.

Like the log stream, the apply waits at most LOCK_WAIT_S (1 s) for the database's write lock, then
raises Busy (a long import holds it): the caller answers 503. The Actions fail open, so Auth0
loses nothing and does not retry: the fact reaches the index later through the log sync, the
re-read queue or the next export instead of at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from jobs.actions import ActionEvent, MappedEvent, event_changes, parse_event
from jobs.runs import LAST_ACTION, Busy
from phoneindex import seen_events
from phoneindex.db import is_busy
from phoneindex.seen_events import SeenEvent, event_key
from phoneindex.store import ApplyStats, Store, iso

log = logging.getLogger(__name__)

# The shipped Actions wait 1.5 s for an answer (actions/*.js): a busy database answers 503 well
# within that, so the Action logs why instead of timing out. (The log stream waits longer.)
LOCK_WAIT_S = 1.0

MAX_BODY_BYTES = 1024 * 1024
REMEMBER_FOR = timedelta(hours=24)
PRUNE_EVERY = timedelta(minutes=5)


@dataclass
class Received:
    """What one event did: its type, whether it was a duplicate, its mapping and counts."""

    event: ActionEvent
    received_at: datetime
    mapped: MappedEvent
    stats: ApplyStats

    @property
    def duplicate(self) -> bool:
        """The same id was applied before: nothing was done this time."""
        return self.stats.duplicate

    def answer(self) -> dict[str, Any]:
        """The 200 body."""
        if self.duplicate:
            return {"type": self.event.type, "duplicate": True, "changes": 0}
        return {"type": self.event.type, "duplicate": False} | self.counts()

    def counts(self) -> dict[str, Any]:
        """What the event gave."""
        mapped = self.mapped
        return {
            "changes": len(mapped.changes),
            "withheld_numbers": mapped.withheld_numbers,
            "reread": mapped.reread is not None,
            "ignored": mapped.ignored,
        }

    def record(self) -> dict[str, Any]:
        """The status document's `last_action` (without the window's counts)."""
        return {
            "at": iso(self.received_at),
            "type": self.event.type,
            "occurred_at": iso(self.event.occurred_at),
            **self.counts(),
        }


class ActionInbox:
    """Receives Action event bodies (already verified) for one store."""

    def __init__(
        self,
        store: Store,
        *,
        default_region: str | None = None,
        clock: Callable[[], datetime] | None = None,
        lock_wait: float = LOCK_WAIT_S,
    ) -> None:
        self.store = store
        self.region = default_region
        self.clock = clock or store.clock
        self.lock_wait = lock_wait
        self._pruned_at: datetime | None = None

    def receive(self, body: bytes) -> Received:
        """Parse, map and apply one event body; BadActionEvent, Busy or a database error."""
        now = self.clock()
        event = parse_event(body, now=now)
        # Read before the write transaction: a write landing in between only makes this event's
        # re-read decision (or the profile fields it keeps) as old as the read; the store's
        # last-writer-wins still orders the facts themselves.
        state = self.store.account_state(event.user_id) if event.user_id else None
        mapped = event_changes(event, state, default_region=self.region)
        received = Received(event, now, mapped, ApplyStats())
        seen = SeenEvent(event_key(event.id), event.type, now)
        try:
            received.stats = self.store.apply_at_once(
                mapped.changes,
                lock_wait=self.lock_wait,
                checkpoints={LAST_ACTION: json.dumps(received.record())},
                event=seen,
            )
        except OperationalError as exc:
            if is_busy(exc):
                log.warning("action event (%s) not applied: the database is busy", event.type)
                raise Busy() from None
            raise
        _log(received)
        self._prune(now)
        return received

    def _prune(self, now: datetime) -> None:
        """Forget ids older than REMEMBER_FOR, at most once every PRUNE_EVERY (best effort)."""
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        try:
            before = now - REMEMBER_FOR
            gone = seen_events.prune(self.store.engine, before, lock_wait=self.lock_wait)
        except SQLAlchemyError as exc:  # tried again later; the event itself is applied
            log.info("action events: old ids not pruned now (%s)", type(exc).__name__)
            return
        if gone:
            log.info("action events: %d ids older than %s forgotten", gone, REMEMBER_FOR)


def _log(received: Received) -> None:
    event, mapped = received.event, received.mapped
    ident = event.id[:64]
    if received.duplicate:
        log.info("action event %s (%s): a duplicate, nothing applied", ident, event.type)
        return
    log.info(
        "action event %s (%s): %d changes applied%s%s",
        ident, event.type, len(mapped.changes),
        f"; re-read queued: {mapped.reread}" if mapped.reread else "",
        f"; ignored: {mapped.ignored}" if mapped.ignored else "",
    )  # fmt: skip
    if mapped.withheld_numbers:
        log.warning(
            "action event %s (%s): %d masked or unusable numbers not indexed",
            ident, event.type, mapped.withheld_numbers,
        )  # fmt: skip
