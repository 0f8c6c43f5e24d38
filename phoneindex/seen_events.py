"""Action events applied recently, remembered by a hash of their id so a replay is not applied.

Every process sharing the database sees the same memory: the event's row is inserted in the
transaction that applies its changes, so an event is never applied without being remembered,
nor remembered without being applied. Rows older than the window are pruned now and then.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection, Engine

from phoneindex.db import upsert_insert, write_within
from phoneindex.models import action_event_table

E = action_event_table.c


class SeenEvent(NamedTuple):
    """One event to remember: the hash of its id, its type, when it was received."""

    key: str
    type: str
    received_at: datetime


def event_key(event_id: str) -> str:
    """A short fixed-width key for an event id of any length (ids are not secrets)."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


def remember(conn: Connection, event: SeenEvent) -> bool:
    """Record `event` in `conn`'s transaction; False when it was recorded before (a replay)."""
    ins = upsert_insert(conn.engine)(action_event_table)
    stmt = ins.values(key=event.key, type=event.type, received_at=event.received_at)
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT here.
    stmt = stmt.on_conflict_do_nothing(index_elements=[E.key]).returning(E.key)
    return conn.execute(stmt).first() is not None


def prune(engine: Engine, before: datetime, *, lock_wait: float) -> int:
    """Forget events received before `before`; how many. Waits at most `lock_wait` s to write."""
    with engine.connect() as conn, write_within(conn, lock_wait):
        return int(conn.execute(delete(action_event_table).where(E.received_at < before)).rowcount)


def counts(engine: Engine, since: datetime) -> dict[str, int]:
    """Events received since `since`, by type."""
    stmt = (
        select(E.type, func.count()).where(E.received_at >= since).group_by(E.type).order_by(E.type)
    )
    with engine.connect() as conn:
        return {str(kind): int(n) for kind, n in conn.execute(stmt)}
