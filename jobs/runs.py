"""Sync runs (what ran, for whom, with what outcome) and the single-writer lease."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from phoneindex import seen_events
from phoneindex.db import db_now, held_writer, is_busy, upsert_insert, writer
from phoneindex.errors import WhoisError
from phoneindex.models import checkpoint_table, lease_table, run_table
from phoneindex.store import LAST_FULL_SYNC, Store, iso, utcnow

log = logging.getLogger(__name__)

R = run_table.c
WRITER_LEASE = "index-writer"
KINDS = ("full", "enrich", "incremental")
KIND_WORDS = {"full": "full sync", "enrich": "MFA enrichment", "incremental": "log sync"}
# A full sync from a file (`mfa-whois import FILE`) is requested by "import:<file name>".
IMPORT_PREFIX = "import:"
_OLD_IMPORT_PREFIX = "cli:import "  # how imports were recorded before
# Where the index's last full sync came from: "auth0", or "file:<file name>".
LAST_FULL_SYNC_SOURCE = "index.last_full_sync_source"
# The last log-stream delivery (POST /hooks/auth0/logs): when, and its counts, as JSON.
LAST_PUSH = "logstream.last_push"
# The last Auth0 Action event applied (POST /hooks/auth0/action): when, its type and counts.
LAST_ACTION = "actions.last_action"
# The status shows how many Action events of each type came in over this window.
ACTION_WINDOW = timedelta(hours=24)


class AlreadyRunning(WhoisError):
    """Another process holds the writer lease; says which run."""

    def __init__(self, run: dict[str, Any] | None, holder: str) -> None:
        if run is not None:
            what = KIND_WORDS.get(run["kind"], run["kind"])
            message = (
                f"a {what} is already running (run {run['id']}, requested by "
                f"{run['requested_by']}, started {run['started_at']}); try again when it ends"
            )
        else:
            message = f"another writer ({holder}) is already running; try again when it ends"
        super().__init__(message)
        self.run = run


class Busy(WhoisError):
    """The database could not take a write now: another writer holds it (a long import)."""

    def __init__(self) -> None:
        super().__init__(
            "the database is busy with another writer (a long import?); try again when it ends"
        )


class LeaseLost(WhoisError):
    """This process no longer holds the writer lease (it expired and someone else took it)."""


class ShuttingDown(WhoisError):
    """The process is stopping (SIGTERM/SIGINT); the run ends early and is marked failed."""

    def __init__(self) -> None:
        super().__init__("stopped: the process is shutting down")


class RunNotQueued(WhoisError):
    """A queued run to adopt was already taken by another process, or expired."""

    def __init__(self, run_id: int) -> None:
        super().__init__(
            f"run {run_id} is no longer queued (another process took it, or it expired)"
        )
        self.run_id = run_id


@dataclass(frozen=True)
class Queued:
    """The answer to a queue request: the run that will do the work, and whether it is new."""

    id: int
    created: bool  # False: a run of that kind was already queued or running; this is it
    run: dict[str, Any]


class Runs:
    """Run records and the writer lease, in the index database.

    Run records are stamped with `clock` (this process's time); the lease is judged by the
    database's clock, the one clock every process sharing the index agrees on.
    """

    def __init__(
        self,
        engine: Engine,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        lease_ttl: timedelta = timedelta(minutes=5),
        queue_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.queue_ttl = queue_ttl
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        pg = engine.dialect.name == "postgresql"
        self._insert = upsert_insert(engine)
        self._pg = pg

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction; Busy when another writer keeps the database locked."""
        try:
            with self.engine.connect() as conn, writer(conn).begin():
                yield conn
        except OperationalError as exc:
            if is_busy(exc):
                raise Busy() from None
            raise

    # ------------------------------------------------------------------ runs

    def start(self, kind: str, requested_by: str, *, status: str = "running") -> int:
        """Record a new run and return its id."""
        now = self.clock()
        with self._writing() as conn:
            run_id = conn.execute(
                insert(run_table)
                .values(kind=kind, status=status, requested_by=requested_by)
                .values(started_at=now, heartbeat_at=now)
                .returning(R.id)
            ).scalar_one()
        return int(run_id)

    def finish(
        self,
        run_id: int,
        status: str,
        *,
        counts: dict[str, Any] | None = None,
        error: str | None = None,
        observed_at: datetime | None = None,
    ) -> None:
        """Close a run; a succeeded full sync also becomes the index's last full sync.

        `observed_at` is when the full sync's data was true (the export's time); the index's
        freshness is that time, not the moment the import ended.
        """
        now = self.clock()
        with self._writing() as conn:
            kind, requested_by = conn.execute(
                update(run_table)
                .where(R.id == run_id)
                .values(status=status, finished_at=now, error=error)
                .values(counts=json.dumps(counts) if counts else None)
                .returning(R.kind, R.requested_by)
            ).one()
            if kind == "full" and status == "succeeded":
                self._advance_full_sync(conn, observed_at or now, requested_by)

    def _advance_full_sync(self, conn: Connection, at: datetime, requested_by: str) -> None:
        """The index's last full sync moves forward only: an older file imported after a newer
        sync does not make the index look older (its data lost to the newer facts anyway)."""
        current = conn.execute(
            select(checkpoint_table.c.value).where(checkpoint_table.c.name == LAST_FULL_SYNC)
        ).scalar_one_or_none()
        stamp = iso(at)
        if current is not None and stamp is not None and current > stamp:
            return
        self.store.set_checkpoint(LAST_FULL_SYNC, stamp, conn=conn)
        source = import_file(requested_by)
        where = f"file:{source}" if source is not None else "auth0"
        self.store.set_checkpoint(LAST_FULL_SYNC_SOURCE, where, conn=conn)

    def get(self, run_id: int) -> dict[str, Any] | None:
        """One run as a status document fragment."""
        with self.engine.connect() as conn:
            row = conn.execute(select(run_table).where(R.id == run_id)).first()
        return _run_doc(row) if row else None

    def counts(self) -> dict[tuple[str, str], int]:
        """Finished runs by (kind, status): succeeded and failed, since the index began."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(R.kind, R.status, func.count())
                .where(R.status.in_(("succeeded", "failed")))
                .group_by(R.kind, R.status)
            ).all()
        return {(str(kind), str(status)): int(n) for kind, status, n in rows}

    def last(self, kind: str, *, finished: bool = True) -> dict[str, Any] | None:
        """The latest run of a kind (finished ones only by default)."""
        stmt = select(run_table).where(R.kind == kind)
        if finished:
            stmt = stmt.where(R.status.in_(("succeeded", "failed")))
        with self.engine.connect() as conn:
            row = conn.execute(stmt.order_by(R.id.desc()).limit(1)).first()
        return _run_doc(row) if row else None

    def ever_synced_from_auth0(self) -> bool:
        """Whether a full sync from Auth0 (not an imported file) ever succeeded."""
        stmt = (
            select(R.requested_by)
            .where(R.kind == "full", R.status == "succeeded")
            .order_by(R.id.desc())
        )
        with self.engine.connect() as conn:
            return any(import_file(who) is None for who in conn.execute(stmt).scalars())

    def running(self) -> dict[str, Any] | None:
        """The run holding the writer lease now, if any."""
        with self.engine.connect() as conn:
            now = db_now(conn)
            lease = conn.execute(
                select(lease_table).where(
                    lease_table.c.name == WRITER_LEASE, lease_table.c.expires_at > now
                )
            ).first()
            if lease is None or lease.run_id is None:
                return None
            row = conn.execute(select(run_table).where(R.id == lease.run_id)).first()
        return _run_doc(row) if row else None

    def status_document(self) -> dict[str, Any]:
        """The contract's status document."""
        doc = self.store.summary()
        fresh = self.store.freshness()
        doc |= {
            "last_full_sync": self.last("full"),
            "last_enrich": self.last("enrich"),
            "last_incremental_sync": self.last("incremental"),
            "last_push": self.last_push(),
            "last_action": self.last_action(),
            "running": self.running(),
            "queued": self.next_queued("full"),
            "log_checkpoint": self.store.get_checkpoint("auth0.log_checkpoint"),
            **self._checkpoint_age(),
            "stale": fresh["stale"],
            "last_update": fresh["last_update"],
            "data_as_of": fresh["last_full_sync"],
            "data_source": self.store.get_checkpoint(LAST_FULL_SYNC_SOURCE),
        }
        return doc

    def last_push(self) -> dict[str, Any] | None:
        """The last log-stream delivery applied: `at`, its counts; None before the first."""
        raw = self.store.get_checkpoint(LAST_PUSH)
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def last_action(self) -> dict[str, Any] | None:
        """The last Action event applied, and events by type over ACTION_WINDOW; None before."""
        raw = self.store.get_checkpoint(LAST_ACTION)
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        since = self.clock() - ACTION_WINDOW
        return doc | {"events_24h": seen_events.counts(self.engine, since)}

    def _checkpoint_age(self) -> dict[str, Any]:
        """How far the log pull is known applied: `log_checkpoint_at` and its age in seconds.

        `log_checkpoint_at` is the time up to which Auth0 log events are known applied: the date
        of the last event read, the time a pull last found nothing newer, or the moment a full
        sync's export job was created when the checkpoint was handed over from it.
        """
        stamp = self.store.get_checkpoint("auth0.log_checkpoint_at")
        try:
            at = datetime.fromisoformat(stamp) if stamp else None
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            return {"log_checkpoint_at": None, "log_checkpoint_age_seconds": None}
        age = max(int((self.clock() - at).total_seconds()), 0)
        return {"log_checkpoint_at": stamp, "log_checkpoint_age_seconds": age}

    # ----------------------------------------------------------------- queue

    def queue(self, kind: str, requested_by: str) -> Queued:
        """Queue a run of `kind` for the scheduler; one already queued or running is returned."""
        now = self.clock()
        with self._writing() as conn:
            self._serialize(conn)
            self._expire_queued(conn, now)
            row = conn.execute(
                select(run_table)
                .where(R.kind == kind, R.status == "queued")
                .order_by(R.id)
                .limit(1)
            ).first()
            if row is None:
                row = self._running_row(conn, kind)
            if row is not None:
                return Queued(int(row.id), False, _run_doc(row))
            run_id = conn.execute(
                insert(run_table)
                .values(kind=kind, status="queued", requested_by=requested_by, started_at=now)
                .returning(R.id)
            ).scalar_one()
            row = conn.execute(select(run_table).where(R.id == run_id)).one()
        log.info("queued a %s run (run %s) for %s", kind, run_id, requested_by)
        return Queued(int(run_id), True, _run_doc(row))

    def next_queued(self, kind: str) -> dict[str, Any] | None:
        """The oldest run of `kind` waiting to be started (not expired)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(run_table)
                .where(R.kind == kind, R.status == "queued")
                .order_by(R.id)
                .limit(1)
            ).first()
            if row is None or (self._overdue(row) and self._idle(conn, self.clock())):
                return None
        return _run_doc(row)

    def expire_queued(self) -> int:
        """Fail queued runs that waited `queue_ttl` with no writer at work; returns how many."""
        with self._writing() as conn:
            return self._expire_queued(conn, self.clock())

    def _overdue(self, row: Any) -> bool:
        return bool(row.started_at <= self.clock() - self.queue_ttl)

    def _idle(self, conn: Connection, now: datetime) -> bool:
        """No writer holds the lease, and none ended a run within `queue_ttl`.

        A queued run waits its turn behind other writers (hours of enrichment); it expires
        only when nothing has run for a while, i.e. no scheduler is taking queued runs.
        """
        if self._lease_held(conn):
            return False
        recent = conn.execute(
            select(R.id)
            .where(R.heartbeat_at.is_not(None), R.finished_at > now - self.queue_ttl)
            .limit(1)
        ).first()
        return recent is None

    def _expire_queued(self, conn: Connection, now: datetime) -> int:
        if not self._idle(conn, now):
            return 0
        hours = self.queue_ttl.total_seconds() / 3600
        error = (
            f"not started within {hours:g} h of being queued; is a scheduler running "
            "(mfa-whois clock, serve or socket)?"
        )
        expired = conn.execute(
            update(run_table)
            .where(R.status == "queued", R.started_at <= now - self.queue_ttl)
            .values(status="failed", finished_at=now, error=error)
        ).rowcount
        if expired:
            log.warning("%d queued run(s) expired without being started", expired)
        return int(expired or 0)

    def _lease_held(self, conn: Connection) -> bool:
        lease = lease_table.c
        return (
            conn.execute(
                select(lease.name).where(
                    lease.name == WRITER_LEASE, lease.expires_at > db_now(conn)
                )
            ).first()
            is not None
        )

    def _running_row(self, conn: Connection, kind: str) -> Any:
        """The run of `kind` holding a live lease, if any."""
        lease = lease_table.c
        return conn.execute(
            select(run_table)
            .join(lease_table, lease.run_id == R.id)
            .where(lease.name == WRITER_LEASE, lease.expires_at > db_now(conn))
            .where(R.kind == kind, R.status == "running")
        ).first()

    def _serialize(self, conn: Connection) -> None:
        """Make check-then-insert atomic across processes (SQLite: BEGIN IMMEDIATE does it)."""
        if self._pg:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _QUEUE_LOCK_KEY})

    # ----------------------------------------------------------------- lease

    def new_holder(self) -> str:
        """A holder name unique to one acquisition: host, process and a random suffix."""
        return f"{self.me}:{uuid.uuid4().hex[:8]}"

    def acquire(self, holder: str, run_id: int | None = None) -> None:
        """Take the writer lease, or raise AlreadyRunning naming the run that holds it.

        Busy when the database stays locked by another writer longer than its busy timeout.
        """
        self._refuse_if_held(holder)  # a plain read: no waiting on SQLite's write lock
        current = lease_table.c
        with self._writing() as conn:
            now = db_now(conn)
            ins = self._insert(lease_table).values(
                name=WRITER_LEASE,
                holder=holder,
                run_id=run_id,
                acquired_at=now,
                expires_at=now + self.lease_ttl,
            )
            stmt = ins.on_conflict_do_update(
                index_elements=[current.name],
                set_={
                    k: ins.excluded[k] for k in ("holder", "run_id", "acquired_at", "expires_at")
                },
                where=or_(current.expires_at <= now, current.holder == holder),
            ).returning(current.holder)
            before = conn.execute(
                select(current.holder, current.run_id).where(current.name == WRITER_LEASE)
            ).first()
            if conn.execute(stmt).first() is not None:  # rowcount is unreliable for upserts
                if before is not None and before.holder != holder and before.run_id:
                    self._abandon(conn, int(before.run_id))
                return
            other = conn.execute(
                select(current.holder, current.run_id).where(current.name == WRITER_LEASE)
            ).first()
        self._refuse(other)

    def _refuse_if_held(self, holder: str) -> None:
        """AlreadyRunning at once when another holder's lease is live (no write lock needed)."""
        current = lease_table.c
        with self.engine.connect() as conn:
            other = conn.execute(
                select(current.holder, current.run_id).where(
                    current.name == WRITER_LEASE,
                    current.holder != holder,
                    current.expires_at > db_now(conn),
                )
            ).first()
        if other is not None:
            self._refuse(other)

    def _refuse(self, other: Any) -> None:
        run = self.get(other.run_id) if other and other.run_id else None
        raise AlreadyRunning(run, other.holder if other else "unknown")

    def _abandon(self, conn: Connection, run_id: int) -> None:
        """Close a run whose process let its lease expire without closing it (a crash)."""
        closed = conn.execute(
            update(run_table)
            .where(R.id == run_id, R.status == "running")
            .values(status="failed", finished_at=self.clock())
            .values(error="abandoned: its process stopped without finishing it (lease expired)")
        ).rowcount
        if closed:
            log.warning("run %s was abandoned by its process; marked failed", run_id)

    def renew(self, holder: str, run_id: int | None = None) -> None:
        """Extend the lease (and the run's heartbeat); LeaseLost if another process took it.

        On SQLite, a thread in the middle of a write transaction (an import) renews inside it:
        the renewal becomes visible with the import's commit, and nobody else can write before.
        """
        own = held_writer(self.engine)
        if own is not None:
            kept = self._renew(own, holder, run_id)
        else:
            with self._writing() as conn:
                kept = self._renew(conn, holder, run_id)
        if not kept:
            raise LeaseLost("the writer lease expired and was taken by another process")

    def _renew(self, conn: Connection, holder: str, run_id: int | None) -> bool:
        kept = conn.execute(
            update(lease_table)
            .where(lease_table.c.name == WRITER_LEASE, lease_table.c.holder == holder)
            .values(expires_at=db_now(conn) + self.lease_ttl)
        ).rowcount
        if run_id is not None:
            conn.execute(update(run_table).where(R.id == run_id).values(heartbeat_at=self.clock()))
        return bool(kept)

    def release(self, holder: str) -> None:
        """Give the lease back (only if still ours)."""
        with self._writing() as conn:
            conn.execute(
                lease_table.delete().where(
                    lease_table.c.name == WRITER_LEASE, lease_table.c.holder == holder
                )
            )

    @contextmanager
    def lease(self) -> Iterator[str]:
        """Hold the writer lease for several runs in a row; yields the holder to pass on."""
        holder = self.new_holder()
        self.acquire(holder)
        try:
            yield holder
        finally:
            self.release(holder)

    @contextmanager
    def exclusive(
        self,
        kind: str,
        requested_by: str,
        *,
        adopt: int | None = None,
        holder: str | None = None,
    ) -> Iterator[RunHandle]:
        """Run `kind` holding the lease; the run is recorded and closed whatever happens.

        `adopt` starts that queued run instead of recording a new one (RunNotQueued if it is
        gone); `holder` reuses a lease taken with `lease()`, which then stays held afterwards.
        """
        own = holder is None
        holder = holder or self.new_holder()
        self.acquire(holder)
        try:
            run_id = self._adopt(adopt, kind) if adopt is not None else None
            run_id = run_id or self.start(kind, requested_by)
            self.acquire(holder, run_id)  # now the lease names the run
            handle = RunHandle(self, run_id, holder, kind=kind)
            try:
                yield handle
            except BaseException as exc:
                self.finish(run_id, "failed", counts=handle.counts, error=_describe(exc))
                raise
            self.finish(run_id, "succeeded", counts=handle.counts, observed_at=handle.observed_at)
        finally:
            if own:
                self.release(holder)

    def _adopt(self, run_id: int, kind: str) -> int:
        """Turn a queued run into a running one (the caller holds the lease)."""
        now = self.clock()
        with self._writing() as conn:
            taken = conn.execute(
                update(run_table)
                .where(R.id == run_id, R.kind == kind, R.status == "queued")
                .values(status="running", started_at=now, heartbeat_at=now)
            ).rowcount
        if not taken:
            raise RunNotQueued(run_id)
        return run_id


class RunHandle:
    """What a running job sees of its run: its id, counts to record, a heartbeat."""

    def __init__(self, runs: Runs, run_id: int, holder: str, *, kind: str = "") -> None:
        self.runs = runs
        self.id = run_id
        self.holder = holder
        self.kind = kind
        self.counts: dict[str, Any] = {}
        self.observed_at: datetime | None = None  # a full sync: when its data was true

    def heartbeat(self) -> None:
        """Keep the lease while working; raises LeaseLost if it was taken over."""
        self.runs.renew(self.holder, self.id)


def import_file(requested_by: str) -> str | None:
    """The file name of a full sync that imported a file; None for one from Auth0."""
    for prefix in (IMPORT_PREFIX, _OLD_IMPORT_PREFIX):
        if requested_by.startswith(prefix):
            return requested_by[len(prefix) :]
    return None


_QUEUE_LOCK_KEY = 0x6D66_6177  # PostgreSQL advisory lock id for queue(): "mfaw"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, WhoisError):
        return str(exc)
    return f"internal error ({type(exc).__name__})"


def _run_doc(row: Any) -> dict[str, Any]:
    doc = {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "requested_by": row.requested_by,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "counts": json.loads(row.counts) if row.counts else {},
        "error": row.error,
    }
    if row.kind == "full":  # where its data came from: Auth0, or a file (`import`)
        doc["source"] = "file" if import_file(row.requested_by) is not None else "auth0"
    return doc
