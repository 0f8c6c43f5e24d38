"""The lookup audit trail and the per-actor hourly lookup limit, shared by Slack, HTTP and CLI.

Every lookup is one `audit_event` row: when, who (Slack user id, API key name), through what,
a keyed hash of the number and how many accounts matched. The number itself is never stored
or logged. The hash is HMAC-SHA256 over the E.164 text, truncated to 32 hex digits (128 bits):
the same number always gives the same hash under the same key, so supervisors can see that one
number was looked up repeatedly without seeing it. The key is MFA_WHOIS_SECRET_KEY when set,
else a random 32-byte key generated once and kept in `app_secret` ("audit.hash_key"). Kept in
the database, it sits next to the hashes; set MFA_WHOIS_SECRET_KEY to keep them apart. Changing
the key makes later hashes unrelated to earlier ones.

Rows older than MFA_WHOIS_AUDIT_RETENTION_DAYS are deleted by the scheduler's audit-retention
job (jobs/retention.py) through `delete_before`, a thousand rows per short transaction.

How callers use it: surfaces go through phoneindex.audit_trail.AuditTrail, which decides the
hourly limit from the rows written here plus the rows it still holds, and writes rows behind the
answer. The limit counts an actor's lookups in the sliding last hour, over every `via` (a live
check and a page view count as lookups). Refused attempts are recorded (via "<via>-refused",
accounts 0) so they show in `mfa-whois audit`, but they do not count towards the limit: an
actor who keeps retrying is allowed again as soon as enough of their earlier lookups leave the
window, never locked out indefinitely.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, select
from sqlalchemy.engine import Connection, Engine

from phoneindex.db import upsert_insert, write_within, writer
from phoneindex.models import audit_table, secret_table
from phoneindex.store import iso, utcnow

log = logging.getLogger(__name__)

C = audit_table.c
WINDOW = timedelta(hours=1)
KEY_NAME = "audit.hash_key"
REFUSED_SUFFIX = "-refused"
HASH_HEX_CHARS = 32
DELETE_BATCH_ROWS = 1000  # rows per retention transaction: the write lock is held briefly
DELETE_PAUSE_SECONDS = 0.05  # between two batches, so waiting writers get the lock
DELETE_LOCK_WAIT_SECONDS = 5.0  # SQLite: longer, another writer (an import) has it; try later
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(frozen=True, slots=True)
class Allowance:
    """Whether an actor may look up now; `limit` 0 means unlimited."""

    allowed: bool
    used: int  # lookups recorded for the actor in the last hour (refusals excluded)
    limit: int
    retry_after_seconds: int  # 0 when allowed; else when enough lookups leave the window


class Audit:
    """Records lookups with a keyed hash of the number and enforces the hourly lookup limit."""

    def __init__(
        self,
        engine: Engine,
        *,
        secret_key: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.clock = clock
        # An empty MFA_WHOIS_SECRET_KEY means "not set", never an empty HMAC key.
        self._key: bytes | None = secret_key.encode("utf-8") if secret_key else None

    # ------------------------------------------------------------------ hashing

    def phone_hash(self, e164: str) -> str:
        """The keyed hash of an E.164 number: 32 hex digits, stable for one key."""
        if not _E164.fullmatch(e164):
            raise ValueError("the audit hashes E.164 numbers only (normalise the input first)")
        digest = hmac.new(self._hash_key(), e164.encode("ascii"), hashlib.sha256).hexdigest()
        return digest[:HASH_HEX_CHARS]

    def _hash_key(self) -> bytes:
        """The HMAC key: the configured one, or the database's (created once), cached."""
        if self._key is None:
            self._key = bytes.fromhex(self._stored_key())
        return self._key

    def _stored_key(self) -> str:
        """The generated key in app_secret; creates it if absent (safe when processes race)."""
        query = select(secret_table.c.value).where(secret_table.c.name == KEY_NAME)
        with self.engine.connect() as conn:
            value: str | None = conn.execute(query).scalar_one_or_none()
        if value is not None:
            return value
        mine = secrets.token_hex(32)
        ins = upsert_insert(self.engine)(secret_table).values(
            name=KEY_NAME, value=mine, created_at=self.clock()
        )
        with self.engine.connect() as conn:
            with writer(conn).begin():
                conn.execute(ins.on_conflict_do_nothing(index_elements=[secret_table.c.name]))
                stored: str = conn.execute(query).scalar_one()  # ours, or the racing winner's
        if stored == mine:
            log.info("generated the audit hashing key (set MFA_WHOIS_SECRET_KEY to use your own)")
        return stored

    # ------------------------------------------------------------------ recording

    def record(
        self, *, actor: str, via: str, phone: str, accounts: int, at: datetime | None = None
    ) -> None:
        """Record one lookup of the E.164 `phone` by `actor` through `via` (slack, api, ...).

        `at` is when the lookup happened (callers that write later pass it); default now.
        """
        row = self.row(actor=actor, via=via, phone=phone, accounts=accounts, at=at)
        with self.engine.connect() as conn:
            with writer(conn).begin():
                self.insert(conn, [row])

    def _row(self, actor: str, via: str, phone: str, accounts: int) -> dict[str, Any]:
        """One audit row; the number goes in only as its keyed hash."""
        if accounts < 0:
            raise ValueError("accounts must be zero or more")
        return {
            "at": self.clock(),
            "actor": actor,
            "via": via,
            "phone_hash": self.phone_hash(phone),
            "accounts": accounts,
        }

    # ------------------------------------------------------------------ limit

    def insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert prepared rows (see `row`) on a connection whose transaction the caller owns."""
        if rows:
            conn.execute(insert(audit_table), rows)

    def row(
        self, *, actor: str, via: str, phone: str, accounts: int, at: datetime | None = None
    ) -> dict[str, Any]:
        """One audit row, ready to insert; the number goes in only as its keyed hash."""
        row = self._row(actor, via, phone, accounts)
        if at is not None:
            row["at"] = at
        return row

    # ------------------------------------------------------------------ limit

    def lookup_times(self, conn: Connection, actor: str, since: datetime) -> list[datetime]:
        """When `actor` looked up after `since` (refusals excluded), oldest first."""
        query = (
            select(C.at).where(C.actor == actor, C.at > since, _refused(False)).order_by(C.at, C.id)
        )
        return list(conn.execute(query).scalars())

    def count_attempts(
        self, conn: Connection, actor: str, since: datetime, *, at_most: int | None = None
    ) -> int:
        """Lookups and refused attempts of `actor` after `since`, counted up to `at_most`: read
        from the (actor, at) index alone; never fewer than count_lookups. With `at_most` (the
        limit), a client hammering past its limit costs no more per request as its refused
        attempts pile up."""
        return _count(conn, and_(C.actor == actor, C.at > since), at_most)

    def count_lookups(
        self, conn: Connection, actor: str, since: datetime, *, at_most: int | None = None
    ) -> int:
        """How many lookups `actor` made after `since` (refusals excluded), up to `at_most`."""
        return _count(conn, and_(C.actor == actor, C.at > since, _refused(False)), at_most)

    def last_refusal(self, conn: Connection, actor: str, since: datetime) -> datetime | None:
        """The latest refused attempt of `actor` after `since`, if any."""
        query = select(func.max(C.at)).where(C.actor == actor, C.at > since, _refused(True))
        last: datetime | None = conn.execute(query).scalar_one()
        return last

    def refused_actors(self, since: datetime) -> dict[str, tuple[str, datetime]]:
        """Each actor refused after `since`: the via of their latest refusal, and its time."""
        query = (
            select(C.actor, C.via, func.max(C.at))
            .where(C.at > since, _refused(True))
            .group_by(C.actor, C.via)
        )
        latest: dict[str, tuple[str, datetime]] = {}
        with self.engine.connect() as conn:
            for actor, via, at in conn.execute(query).all():
                if actor not in latest or at > latest[actor][1]:
                    latest[actor] = (via.removesuffix(REFUSED_SUFFIX), at)
        return latest

    # ------------------------------------------------------------------ reading

    def entries(
        self,
        *,
        since: datetime | None = None,
        limit: int | None = None,
        actor: str | None = None,
        phone_hash: str | None = None,
    ) -> list[dict[str, Any]]:
        """The audit trail newest first: at (ISO Z), actor, via, phone_hash, accounts.

        `actor` and `phone_hash` keep only that actor's rows, that number's (see phone_hash).
        """
        query = select(C.at, C.actor, C.via, C.phone_hash, C.accounts).order_by(
            C.at.desc(), C.id.desc()
        )
        if since is not None:
            if since.tzinfo is None:
                raise ValueError("since must be an aware datetime")
            query = query.where(C.at >= since)
        if actor is not None:
            query = query.where(C.actor == actor)
        if phone_hash is not None:
            query = query.where(C.phone_hash == phone_hash)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            {
                "at": iso(r.at),
                "actor": r.actor,
                "via": r.via,
                "phone_hash": r.phone_hash,
                "accounts": r.accounts,
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ retention

    def delete_before(
        self,
        cutoff: datetime,
        *,
        batch_rows: int = DELETE_BATCH_ROWS,
        pause: float = DELETE_PAUSE_SECONDS,
        lock_wait: float = DELETE_LOCK_WAIT_SECONDS,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> int:
        """Delete written rows older than `cutoff`, `batch_rows` per short transaction; how many.

        Rows still waiting to be written (AuditTrail's memory or spool) are not touched: they
        are written first, and a later pass deletes them if they are old by then. A writer
        holding the lock longer than `lock_wait` fails it with an error is_busy() recognises.
        """
        if cutoff.tzinfo is None:
            raise ValueError("cutoff must be an aware datetime")
        if batch_rows < 1:
            raise ValueError("batch_rows must be 1 or more")
        # Oldest first along the `at` index: no sort of the whole backlog per batch.
        oldest = select(C.id).where(C.at < cutoff).order_by(C.at).limit(batch_rows)
        statement = delete(audit_table).where(C.id.in_(oldest.scalar_subquery()))
        deleted = 0
        while not should_stop():
            with self.engine.connect() as conn, write_within(conn, lock_wait):
                count = conn.execute(statement).rowcount
            deleted += count
            if count < batch_rows:
                break
            time.sleep(pause)  # the lock is free: another writer's turn
        return deleted


def _refused(refused: bool) -> ColumnElement[bool]:
    """Rows that are (or are not) refused attempts."""
    cond: ColumnElement[bool] = C.via.endswith(REFUSED_SUFFIX, autoescape=True)
    return cond if refused else ~cond


def _count(conn: Connection, where: Any, at_most: int | None) -> int:
    """Rows matching `where`, counted no further than `at_most` (None: all)."""
    rows = select(C.at).where(where)
    if at_most is not None:
        rows = rows.limit(at_most)
    return int(conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one())
