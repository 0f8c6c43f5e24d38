"""The audit trail as answering surfaces use it (Slack, Teams, the HTTP API): limit, then write.

Two promises, kept while the database cannot take writes (on SQLite a full import holds the
write lock for minutes):

- The hourly limit is decided from what is current at the moment of the decision: the rows in
  `audit_event` (every process's) plus the rows this process admitted and has not written yet.
  Deciding happens under one lock, and the writer commits and forgets its rows under the same
  lock, so each row is counted exactly once and concurrent lookups by one actor cannot overshoot
  the limit in this process. (Several processes on one SQLite file can each overshoot by the
  rows they hold while the lock lasts; on PostgreSQL, audit writes do not wait for an import.)
- No audit row is dropped: one thread writes rows behind the answer, in the order they were
  recorded, retrying for as long as the database refuses them. Up to `memory_rows` wait in
  memory, the rest in a spool file (keyed hashes only, never a number). Rows still unwritten at
  shutdown are left in the spool directory, and the next process on that database writes them
  first.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from phoneindex.audit import REFUSED_SUFFIX, WINDOW, Allowance, Audit
from phoneindex.audit_spool import Row, Spool
from phoneindex.db import writer

log = logging.getLogger(__name__)

MEMORY_ROWS = 10_000
BATCH_ROWS = 500
# Rows recorded within this long go in one transaction: under load one write (and, on
# PostgreSQL, one WAL flush) per gather instead of one per lookup. The hourly limit counts
# unwritten rows too, so the delay changes no decision.
GATHER_SECONDS = 0.05
RETRY_SECONDS = 0.5  # first wait after a refused write; doubles up to RETRY_MAX_SECONDS
RETRY_MAX_SECONDS = 30.0
SAY_EVERY_SECONDS = 60.0  # how often a long wait is logged again


@dataclass(frozen=True, slots=True)
class Ticket:
    """An admitted lookup whose row is written once its answer is known (`AuditTrail.record`)."""

    seq: int
    at: datetime
    actor: str
    via: str
    phone_hash: str


@dataclass(frozen=True, slots=True)
class Admission:
    """The limit's decision: a ticket when allowed; when refused, whether it is the first in an
    hour (then supervisors are told)."""

    allowance: Allowance
    ticket: Ticket | None
    first_refusal: bool = False


@dataclass(frozen=True, slots=True)
class _Blocked:
    """An actor found over `limit`: no slot frees up before `until`; `used` as counted then."""

    until: datetime
    limit: int
    used: int


class AuditTrail:
    """Decides the hourly limit and writes audit rows behind the answers, in order, never lost."""

    def __init__(
        self,
        audit: Audit,
        *,
        spool_dir: Path | None = None,
        memory_rows: int = MEMORY_ROWS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.audit = audit
        self._memory_rows = memory_rows
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._memory: deque[Row] = deque()
        self._spool = Spool(spool_dir) if spool_dir is not None else None
        self._pending: dict[str, dict[int, datetime]] = {}  # admitted, not yet written
        self._refused_at: dict[str, datetime] = {}  # the latest refusal decided here
        self._blocked: dict[str, _Blocked] = {}  # over the limit until then, as last counted
        self._seq = itertools.count(1)
        self._closing = False
        self._abandoned = False
        if self._spool is not None and (adopted := self._spool.adopt()):
            log.warning("%d audit rows left by an earlier process will be written first", adopted)
        self._thread = threading.Thread(target=self._run, name="audit-writes", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ deciding

    def admit(self, actor: str, via: str, phone: str, limit_per_hour: int) -> Admission:
        """May `actor` look up the E.164 `phone` now? A refusal is recorded at once."""
        if limit_per_hour < 0:
            raise ValueError("limit_per_hour must be zero (unlimited) or more")
        phone_hash = self.audit.phone_hash(phone)
        with self._lock:
            now = self.audit.clock()
            if limit_per_hour == 0:  # unlimited (a phone system's key, often): nothing to read
                seq = next(self._seq)
                self._pending.setdefault(actor, {})[seq] = now
                return Admission(Allowance(True, 0, 0, 0), Ticket(seq, now, actor, via, phone_hash))
            blocked = self._blocked.get(actor)
            if blocked is not None and blocked.limit == limit_per_hour and now < blocked.until:
                # Refused again before a slot can free up: no need to count (a client
                # hammering past its limit costs no database read per attempt).
                wait = max(1, math.ceil((blocked.until - now).total_seconds()))
                self._refuse(actor, via, phone_hash, now)
                return Admission(Allowance(False, blocked.used, limit_per_hour, wait), None)
            with self.audit.engine.connect() as conn:
                allowance, free_at = self._allowance(conn, actor, limit_per_hour, now)
                if allowance.allowed:
                    seq = next(self._seq)
                    self._pending.setdefault(actor, {})[seq] = now
                    return Admission(allowance, Ticket(seq, now, actor, via, phone_hash))
                first = self._first_refusal(conn, actor, now)
            assert free_at is not None
            self._blocked[actor] = _Blocked(free_at, limit_per_hour, allowance.used)
            self._refuse(actor, via, phone_hash, now)
        log.warning("refused a lookup by %s via %s: over the hourly limit", actor, via)
        return Admission(allowance, None, first)

    def _refuse(self, actor: str, via: str, phone_hash: str, now: datetime) -> None:
        """Remember and queue a refused attempt (lock held)."""
        self._refused_at[actor] = now
        self._forget_old_refusals(now)
        self._queue(Row(next(self._seq), now, actor, via + REFUSED_SUFFIX, phone_hash, 0))

    def record(self, ticket: Ticket, accounts: int) -> None:
        """The admitted lookup found `accounts` accounts: queue its row."""
        if accounts < 0:
            raise ValueError("accounts must be zero or more")
        row = Row(ticket.seq, ticket.at, ticket.actor, ticket.via, ticket.phone_hash, accounts)
        with self._lock:
            self._queue(row)

    def cancel(self, ticket: Ticket) -> None:
        """The admitted lookup was not answered (it failed): it does not count."""
        with self._lock:
            self._unpend(ticket.actor, ticket.seq)

    def _allowance(
        self, conn: Connection, actor: str, limit: int, now: datetime
    ) -> tuple[Allowance, datetime | None]:
        """The decision, and when refused, the moment a slot frees up at the earliest (other
        processes' lookups can only push it later)."""
        since = now - WINDOW
        mine = [at for at in self._pending.get(actor, {}).values() if at > since]
        # Refused attempts count here too: under the limit with them, under it without.
        # Counted up to the limit only: past it, the exact number changes no decision.
        attempts = self.audit.count_attempts(conn, actor, since, at_most=limit) + len(mine)
        if attempts < limit:
            return Allowance(True, attempts, limit, 0), None
        used = self.audit.count_lookups(conn, actor, since, at_most=limit) + len(mine)
        if used < limit:
            return Allowance(True, used, limit, 0), None
        times = sorted([*self.audit.lookup_times(conn, actor, since), *mine])
        # Allowed again once fewer than `limit` remain: when this lookup leaves the window.
        free_at = times[len(times) - limit] + WINDOW
        wait = math.ceil((free_at - now).total_seconds())
        return Allowance(False, len(times), limit, max(1, wait)), free_at

    def _first_refusal(self, conn: Connection, actor: str, now: datetime) -> bool:
        since = now - WINDOW
        mine = self._refused_at.get(actor)
        if mine is not None and mine > since:
            return False
        return self.audit.last_refusal(conn, actor, since) is None

    def recent_refusal(self, actor: str) -> datetime | None:
        """When this trail last refused `actor`, written to the database yet or not."""
        with self._lock:
            return self._refused_at.get(actor)

    def _forget_old_refusals(self, now: datetime) -> None:
        if len(self._refused_at) > 1000:
            self._refused_at = {a: t for a, t in self._refused_at.items() if t > now - WINDOW}
        if len(self._blocked) > 1000:
            self._blocked = {a: b for a, b in self._blocked.items() if b.until > now}

    # ------------------------------------------------------------------ queueing (lock held)

    def _queue(self, row: Row) -> None:
        spool = self._spool
        if spool is not None and (spool.rows or len(self._memory) >= self._memory_rows):
            try:  # once rows are spooled, later rows follow them there: the order holds
                spool.append([row])
                self._changed.notify_all()
                return
            except OSError as exc:
                log.error("cannot spool audit rows (%s); keeping them in memory", exc)
        self._memory.append(row)
        self._changed.notify_all()

    def _unwritten(self) -> int:
        return len(self._memory) + (self._spool.rows if self._spool is not None else 0)

    def _unpend(self, actor: str, seq: int) -> None:
        mine = self._pending.get(actor)
        if mine is not None:
            mine.pop(seq, None)
            if not mine:
                del self._pending[actor]

    # ------------------------------------------------------------------ writing

    def _run(self) -> None:
        delay = self._retry_seconds
        waiting_since: float | None = None
        said = 0.0
        while True:
            with self._lock:
                while not self._unwritten() and not self._closing:
                    self._changed.wait()
                if self._abandoned or not self._unwritten():
                    return
                gather = not self._closing and self._unwritten() < BATCH_ROWS
            if gather:
                self._stop.wait(GATHER_SECONDS)
            with self._lock:
                if self._abandoned:
                    return
                batch, offset = self._peek()
            try:
                self._write(batch, offset)
            except (SQLAlchemyError, OSError) as exc:
                if self._abandoned:
                    return
                now = time.monotonic()
                if waiting_since is None or now - said >= SAY_EVERY_SECONDS:
                    waiting_since = waiting_since or now
                    said = now
                    log.warning(
                        "audit rows wait for the database (%s); %d unwritten, kept in order",
                        type(exc).__name__,
                        self._unwritten(),
                    )
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if waiting_since is not None:
                log.info("audit rows written again after %.0f s", time.monotonic() - waiting_since)
                waiting_since = None
            delay = self._retry_seconds

    def _peek(self) -> tuple[list[Row], int | None]:
        """The next rows to write (oldest first); the spool offset when they come from there."""
        if self._memory:
            return list(itertools.islice(self._memory, BATCH_ROWS)), None
        assert self._spool is not None
        return self._spool.peek(BATCH_ROWS)

    def _write(self, batch: list[Row], offset: int | None) -> None:
        with self.audit.engine.connect() as conn:
            trans = writer(conn).begin()
            try:
                self.audit.insert(conn, [row.values() for row in batch])
                with self._lock:  # commit and forget together: a decision counts a row once
                    if self._abandoned:
                        trans.rollback()
                        return
                    trans.commit()
                    self._forget(batch, offset)
            finally:
                if trans.is_active:
                    trans.rollback()

    def _forget(self, batch: list[Row], offset: int | None) -> None:
        if offset is None:
            for _ in batch:
                self._memory.popleft()
        else:
            assert self._spool is not None
            self._spool.advance(len(batch), offset)
        for row in batch:
            if row.seq >= 0:
                self._unpend(row.actor, row.seq)
        self._changed.notify_all()

    # ------------------------------------------------------------------ waiting, closing

    def unwritten(self) -> int:
        """Rows recorded and not yet written."""
        with self._lock:
            return self._unwritten()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row recorded so far is written; False if `timeout` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._unwritten():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is waiting (for up to `timeout` s); leave the rest for the next process."""
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)
        with self._lock:
            self._abandoned = True
            self._stop.set()
            older = list(self._memory)
            self._memory.clear()
            left = len(older) + (self._spool.rows if self._spool is not None else 0)
            if not left:
                return
            if self._spool is None:
                log.error("%d audit rows could not be written before shutdown: lost", left)
                return
            path = self._spool.leave(older)
        log.warning("%d audit rows not written yet; kept in %s for the next start", left, path)
