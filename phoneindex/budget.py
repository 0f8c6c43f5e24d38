"""One request budget for every process sharing a database (the Auth0 Management API ceiling).

Each call reserves a slot; slots are `interval` seconds apart across all processes, so together
they never send more than the ceiling in any second. Interactive callers (live checks) always
take the next free slot; a bulk caller (enrichment, exports) takes one only when it is at most
`max_ahead` seconds away, and otherwise comes back later, so a live check waits for at most one
bulk call. Holds (Auth0 said its budget is spent, or answered 429) are shared the same way: one
process learning it stops them all.

Where the shared state lives:
- PostgreSQL: one row of `request_budget`, locked for a few milliseconds per call, on the
  database's clock (any number of machines).
- SQLite: a 24-byte file beside the database under an `flock` (a SQLite database is shared only
  by processes on one machine, and its own write lock can be held for minutes by an import; a
  live check must not wait for that).
- anything else (an in-memory database): this process only.
A budget whose store fails (database down, file unwritable) falls back to this process's own
pacing and says so in the log, once a minute at most: Auth0 calls never fail because of it.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

NEVER = 0.0  # a hold or slot time in the past
LOCK_TIMEOUT_MS = 2000
WARN_EVERY_S = 60.0
# Nothing is ever reserved or held this far ahead: such a time comes from a clock that stepped
# back (the file store uses the machine's wall clock) and is forgotten, not waited for.
SANE_AHEAD_S = 600.0
_STATE = struct.Struct("<ddd")


@dataclass(frozen=True)
class State:
    """The shared state: the next free slot and the holds, in the store's clock (seconds)."""

    next_at: float = NEVER
    hold_all: float = NEVER
    hold_bulk: float = NEVER


@dataclass(frozen=True)
class Slot:
    """A reservation: granted, wait `delay` seconds and send; refused, ask again after `delay`.

    `spent`: seconds between the store reading its clock and the caller getting the answer
    (writing the state back, a commit), already gone from `delay`.
    """

    granted: bool
    delay: float
    spent: float = 0.0


def reserve(
    state: State, now: float, interval: float, bulk: bool, max_ahead: float
) -> tuple[State, Slot]:
    """The next slot for a caller at `now` and the state after it (pure: every store uses it)."""
    state = _sane(state, now)
    start = max(state.next_at, state.hold_all, now)
    if bulk:
        start = max(start, state.hold_bulk)
        if start - now > max_ahead:
            # Come back when the queue has drained to one slot, or sooner to see holds lift.
            return state, Slot(False, min(max(start - now - max_ahead, interval), 1.0))
    return State(start + interval, state.hold_all, state.hold_bulk), Slot(True, start - now)


def held(state: State, now: float, seconds: float, bulk_only: bool) -> State:
    """`state` with everybody (or bulk callers only) held for `seconds` from `now`."""
    state, until = _sane(state, now), now + seconds
    if bulk_only:
        return State(state.next_at, state.hold_all, max(state.hold_bulk, until))
    return State(state.next_at, max(state.hold_all, until), state.hold_bulk)


def _spent(slot: Slot | None, read_at: float) -> Slot | None:
    """`slot` with the time since the store's clock was read (monotonic `read_at`)."""
    if slot is None:
        return None
    return Slot(slot.granted, slot.delay, time.monotonic() - read_at)


def _sane(state: State, now: float) -> State:
    """`state` without times impossibly far ahead of `now` (a clock stepped back)."""
    limit = now + SANE_AHEAD_S
    if max(state.next_at, state.hold_all, state.hold_bulk) <= limit:
        return state
    return State(
        *(NEVER if t > limit else t for t in (state.next_at, state.hold_all, state.hold_bulk))
    )


class Budget(Protocol):
    """Where reservations are made."""

    @property
    def shared(self) -> bool:
        """Whether other processes draw from the same budget."""

    def reserve(self, interval: float, bulk: bool, max_ahead: float) -> Slot:
        """Reserve the next slot (see `reserve`)."""

    def hold(self, seconds: float, bulk_only: bool) -> None:
        """Hold every caller (or bulk callers) for `seconds`."""

    def close(self) -> None:
        """Release what the budget holds open."""


class LocalBudget:
    """This process only (also what a failing shared budget falls back to)."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._state = State()

    def reserve(self, interval: float, bulk: bool, max_ahead: float) -> Slot:
        with self._lock:
            self._state, slot = reserve(self._state, self._clock(), interval, bulk, max_ahead)
            return slot

    def hold(self, seconds: float, bulk_only: bool) -> None:
        with self._lock:
            self._state = held(self._state, self._clock(), seconds, bulk_only)

    def close(self) -> None:
        return None


Step = Callable[[State, float], tuple[State, Slot | None]]


class _Stored:
    """A budget whose state lives outside the process: `_change` runs a step on it, atomically."""

    shared = True

    def _change(self, step: Step) -> Slot | None:
        raise NotImplementedError

    def reserve(self, interval: float, bulk: bool, max_ahead: float) -> Slot:
        slot = self._change(lambda state, now: reserve(state, now, interval, bulk, max_ahead))
        assert slot is not None
        return slot

    def hold(self, seconds: float, bulk_only: bool) -> None:
        self._change(lambda state, now: (held(state, now, seconds, bulk_only), None))


class FileBudget(_Stored):
    """Processes on one machine: the state in a small file, changed under an exclusive flock."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        import fcntl  # POSIX only; open_budget falls back to LocalBudget elsewhere

        self._flock = fcntl.flock
        self._ex, self._un = fcntl.LOCK_EX, fcntl.LOCK_UN
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self._file: IO[bytes] = open(path, "a+b")  # noqa: SIM115  (kept open; close() closes)

    def _change(self, step: Step) -> Slot | None:
        with self._lock:
            self._flock(self._file.fileno(), self._ex)
            try:
                self._file.seek(0)
                raw = self._file.read(_STATE.size)
                state = State(*_STATE.unpack(raw)) if len(raw) == _STATE.size else State()
                read_at = time.monotonic()
                after, slot = step(state, self._clock())
                if after != state:
                    self._file.seek(0)
                    self._file.truncate()
                    self._file.write(_STATE.pack(after.next_at, after.hold_all, after.hold_bulk))
                    self._file.flush()
            finally:
                self._flock(self._file.fileno(), self._un)
        return _spent(slot, read_at)

    def close(self) -> None:
        self._file.close()


class DatabaseBudget(_Stored):
    """Processes on any machine sharing a PostgreSQL database: one row, the database's clock."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO request_budget (name, next_at, hold_all, hold_bulk) "
                    "VALUES (:name, 0, 0, 0) ON CONFLICT (name) DO NOTHING"
                ),
                {"name": name},
            )

    def _change(self, step: Step) -> Slot | None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
            row = conn.execute(
                text(
                    "SELECT next_at, hold_all, hold_bulk, "
                    "extract(epoch FROM clock_timestamp())::float8 AS now "
                    "FROM request_budget WHERE name = :name FOR UPDATE"
                ),
                {"name": self.name},
            ).one()
            read_at = time.monotonic()  # the database's `now` is at most a reply's trip ago
            state = State(row.next_at, row.hold_all, row.hold_bulk)
            after, slot = step(state, row.now)
            if after != state:
                conn.execute(
                    text(
                        "UPDATE request_budget SET next_at = :next_at, hold_all = :hold_all, "
                        "hold_bulk = :hold_bulk WHERE name = :name"
                    ),
                    {
                        "name": self.name,
                        "next_at": after.next_at,
                        "hold_all": after.hold_all,
                        "hold_bulk": after.hold_bulk,
                    },
                )
        return _spent(slot, read_at)

    def close(self) -> None:
        self.engine.dispose()


class Resilient:
    """A shared budget that falls back to this process's pacing while its store fails."""

    def __init__(self, inner: Budget, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.fallback = LocalBudget(clock)
        self._clock = clock
        self._warned_at: float | None = None

    @property
    def shared(self) -> bool:
        return self.inner.shared

    def reserve(self, interval: float, bulk: bool, max_ahead: float) -> Slot:
        try:
            return self.inner.reserve(interval, bulk, max_ahead)
        except (OSError, SQLAlchemyError) as exc:
            self._warn(exc)
            return self.fallback.reserve(interval, bulk, max_ahead)

    def hold(self, seconds: float, bulk_only: bool) -> None:
        self.fallback.hold(seconds, bulk_only)
        try:
            self.inner.hold(seconds, bulk_only)
        except (OSError, SQLAlchemyError) as exc:
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        now = self._clock()
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "the shared Auth0 request budget is unavailable (%s): pacing this process alone",
                type(exc).__name__,
            )

    def close(self) -> None:
        self.inner.close()


def open_budget(database_url: str, name: str = "auth0") -> Budget:
    """The budget shared by every process using `database_url` (see the module's docstring)."""
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    try:
        if url.get_backend_name() == "sqlite":
            path = url.database
            if not path or path == ":memory:" or url.query.get("mode") == "memory":
                return LocalBudget()
            return Resilient(FileBudget(Path(f"{path}-{name}-budget")))
        from phoneindex.db import make_engine

        engine = make_engine(database_url, pool_size=1, max_overflow=2)
        return Resilient(DatabaseBudget(engine, name))
    except (ImportError, OSError, SQLAlchemyError) as exc:
        log.warning(
            "the shared Auth0 request budget could not be opened (%s): pacing this process alone",
            type(exc).__name__,
        )
        return LocalBudget()
