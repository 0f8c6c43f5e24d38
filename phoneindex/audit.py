"""The lookup audit trail and the per-actor hourly lookup limit, shared by Slack, HTTP and CLI.

Every lookup is one `audit_event` row: when, who (Slack user id, API key name), through what,
a keyed hash of the number and how many accounts matched. The number itself is never stored
or logged. The hash is HMAC-SHA256 over the E.164 text, truncated to 32 hex digits (128 bits):
the same number always gives the same hash under the same key, so supervisors can see that one
number was looked up repeatedly without seeing it. The key is MFA_WHOIS_SECRET_KEY when set,
else a random 32-byte key generated once and kept in `app_secret` ("audit.hash_key"). Kept in
the database, it sits next to the hashes; set MFA_WHOIS_SECRET_KEY to keep them apart. Changing
the key makes later hashes unrelated to earlier ones.

How callers use it (one mechanism for every surface):

    allowance = audit.allow(actor, settings.agent_lookups_per_hour)
    if not allowance.allowed:
        if audit.record_refusal(actor=actor, via="slack", phone=e164):
            alerts...  # first refusal of this actor in an hour: tell supervisors once
        return refuse(allowance.retry_after_seconds)
    document = store.lookup(e164)
    audit.record(actor=actor, via="slack", phone=e164, accounts=len(document["accounts"]))

The limit counts the actor's recorded lookups in the sliding last hour, over every `via`
(a live check counts as a lookup). A limit of 0 means unlimited. Refused attempts are recorded
(via "<via>-refused", accounts 0) so they show in `mfa-whois audit`, but they do not count
towards the limit: an actor who keeps retrying is allowed again as soon as enough of their
earlier lookups leave the window, never locked out indefinitely. allow() is a read and record()
a separate short write, so concurrent lookups by one actor may overshoot the limit by at most
the number of requests in flight; this is an abuse limit, not a quota.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, select, text
from sqlalchemy.engine import Connection, Engine

from phoneindex.db import upsert_insert, writer
from phoneindex.models import audit_table, secret_table
from phoneindex.store import iso, utcnow

log = logging.getLogger(__name__)

C = audit_table.c
WINDOW = timedelta(hours=1)
KEY_NAME = "audit.hash_key"
REFUSED_SUFFIX = "-refused"
HASH_HEX_CHARS = 32
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_LOCK_CLASS = 0x6D66_6175  # PostgreSQL advisory lock class for refusals: "mfau"


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
        row = self._row(actor, via, phone, accounts)
        if at is not None:
            row["at"] = at
        with self.engine.connect() as conn:
            with writer(conn).begin():
                conn.execute(insert(audit_table).values(row))

    def record_refusal(self, *, actor: str, via: str, phone: str) -> bool:
        """Record a refused lookup; True when the actor had no refusal in the last hour."""
        row = self._row(actor, via + REFUSED_SUFFIX, phone, 0)
        earlier = select(C.id).where(C.actor == actor, C.at > row["at"] - WINDOW, _refused(True))
        with self.engine.connect() as conn:
            with writer(conn).begin():
                self._serialize(conn, actor)
                first = conn.execute(earlier.limit(1)).first() is None
                conn.execute(insert(audit_table).values(row))
        log.warning("refused a lookup by %s via %s: over the hourly limit", actor, via)
        return first

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

    def _serialize(self, conn: Connection, actor: str) -> None:
        """Make one actor's check-then-insert atomic (SQLite: BEGIN IMMEDIATE already does)."""
        if self.engine.dialect.name != "postgresql":
            return
        objid = int.from_bytes(hashlib.sha256(actor.encode()).digest()[:4], "big", signed=True)
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:cls, :obj)"), {"cls": _LOCK_CLASS, "obj": objid}
        )

    # ------------------------------------------------------------------ limit

    def allow(self, actor: str, limit_per_hour: int) -> Allowance:
        """May `actor` look up now? Counts their lookups in the last hour; 0 = unlimited."""
        if limit_per_hour < 0:
            raise ValueError("limit_per_hour must be zero (unlimited) or more")
        now = self.clock()
        counted = and_(C.actor == actor, C.at > now - WINDOW, _refused(False))
        with self.engine.connect() as conn:
            used = int(conn.execute(select(func.count()).where(counted)).scalar_one())
            if limit_per_hour == 0 or used < limit_per_hour:
                return Allowance(True, used, limit_per_hour, 0)
            # Allowed again once used drops below the limit: when this lookup leaves the window.
            freeing = conn.execute(
                select(C.at)
                .where(counted)
                .order_by(C.at, C.id)
                .offset(used - limit_per_hour)
                .limit(1)
            ).scalar_one()
        wait = math.ceil((freeing + WINDOW - now).total_seconds())
        return Allowance(False, used, limit_per_hour, max(1, wait))

    # ------------------------------------------------------------------ reading

    def entries(
        self, *, since: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The audit trail newest first: at (ISO Z), actor, via, phone_hash, accounts."""
        query = select(C.at, C.actor, C.via, C.phone_hash, C.accounts).order_by(
            C.at.desc(), C.id.desc()
        )
        if since is not None:
            if since.tzinfo is None:
                raise ValueError("since must be an aware datetime")
            query = query.where(C.at >= since)
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


def _refused(refused: bool) -> ColumnElement[bool]:
    """Rows that are (or are not) refused attempts."""
    cond: ColumnElement[bool] = C.via.endswith(REFUSED_SUFFIX, autoescape=True)
    return cond if refused else ~cond
