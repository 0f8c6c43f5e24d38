"""Auth0 log-stream deliveries (custom webhook): the pull sync's mapping, applied at once.

A delivery is a batch of `{"log_id": ..., "data": {<log event>}}` items in one of the stream's
three content formats: a JSON array, JSON lines, or one JSON object. The whole batch is read and
mapped (jobs/logs.py, exactly as `mfa-whois sync` maps pulled events) before anything is
written, then applied in one transaction together with the record of the delivery: a body that
is not a batch of items is refused whole and nothing of it is applied. Inside a good batch, a
relevant event without a user id or date is skipped and counted, as the pull does, so both
paths always agree. The store is last-writer-wins by each event's own date, so redeliveries and
batches in any order converge on the same index.

The apply does not take the sync runs' writer lease (a delivery never waits for an enrichment
slice); it waits at most LOCK_WAIT_S for the database's own write lock, then raises Busy (a long
import holds it): the caller answers 503 and Auth0 delivers the batch again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.exc import OperationalError

from jobs.logs import MappedEvents, event_date, events_changes
from jobs.runs import LAST_PUSH, Busy
from phoneindex.db import is_busy
from phoneindex.errors import WhoisError
from phoneindex.store import ApplyStats, Store, iso

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
# Ordinary writers (a log-sync page, an enrichment batch, a lease renewal) hold SQLite's write
# lock for milliseconds; an import holds it for minutes. Wait out the first, not the second.
LOCK_WAIT_S = 2.0
FORMATS = "a JSON array, JSON lines or one JSON object"


class BadDelivery(WhoisError):
    """A body that is not a log-stream batch; says where it went wrong, never what it held."""


@dataclass
class Delivery:
    """What one delivery did: its events mapped, the store's counts, when it was received."""

    mapped: MappedEvents
    stats: ApplyStats
    received_at: datetime
    newest_event: datetime | None

    def record(self) -> dict[str, Any]:
        """The status document's `last_push`."""
        return record(self.mapped, self.received_at, self.newest_event)


def record(mapped: MappedEvents, at: datetime, newest: datetime | None) -> dict[str, Any]:
    """`last_push`: when the delivery came, its counts, the date of its newest event."""
    return {"at": iso(at), **mapped.counts(), "newest_event": iso(newest)}


def parse_delivery(body: bytes) -> list[Mapping[str, Any]]:
    """The log events of a delivery in any of the three content formats; BadDelivery if not."""
    text = body.strip()
    if not text:
        raise BadDelivery(f"the body is empty; expected log-stream items as {FORMATS}")
    if text.startswith(b"["):
        items = _loads(text, "the body is not a JSON array")
        if not isinstance(items, list):
            raise BadDelivery("the body is not a JSON array")
        return [_event(item, f"item {n}") for n, item in enumerate(items, 1)]
    try:
        return [_event(orjson.loads(text), "the object")]
    except orjson.JSONDecodeError:
        pass  # not one JSON value: JSON lines, one item a line
    lines = [(n, line) for n, line in enumerate(text.split(b"\n"), 1) if line.strip()]
    if len(lines) < 2:
        raise BadDelivery(f"the body is not JSON; expected log-stream items as {FORMATS}")
    return [_event(_loads(line, f"line {n} is not JSON"), f"line {n}") for n, line in lines]


def apply_delivery(
    store: Store,
    events: list[Mapping[str, Any]],
    *,
    default_region: str | None = None,
    clock: Callable[[], datetime] | None = None,
    lock_wait: float = LOCK_WAIT_S,
) -> Delivery:
    """Map every event, then apply the changes and the delivery's record in one transaction."""
    mapped = events_changes(events, default_region=default_region)
    received = (clock or store.clock)()
    dates = [d for d in map(event_date, events) if d is not None]
    newest = max(dates, default=None)
    doc = json.dumps(record(mapped, received, newest))
    try:
        stats = store.apply_at_once(
            mapped.changes, lock_wait=lock_wait, checkpoints={LAST_PUSH: doc}
        )
    except OperationalError as exc:
        if is_busy(exc):
            log.warning("log stream: %d events not applied: the database is busy", len(events))
            raise Busy() from None
        raise
    _log(mapped)
    return Delivery(mapped, stats, received, newest)


def _loads(text: bytes, why: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadDelivery(why) from None


def _event(item: Any, where: str) -> Mapping[str, Any]:
    """The `data` of one `{"log_id", "data"}` item."""
    data = item.get("data") if isinstance(item, dict) else None
    if not isinstance(data, dict):
        raise BadDelivery(f'{where} is not a log-stream item: no "data" object')
    return data


def _log(mapped: MappedEvents) -> None:
    log.info(
        "log stream: %d events, %d changes applied, %d ignored",
        mapped.events,
        len(mapped.changes),
        mapped.ignored,
    )
    if mapped.bad:
        log.warning("log stream: %d malformed events skipped (no user_id or date)", mapped.bad)
    if mapped.withheld_numbers:
        log.warning(
            "log stream: %d phone numbers were masked or hashed and not indexed: leave "
            "phone_number un-obfuscated in the stream's PII settings",
            mapped.withheld_numbers,
        )
