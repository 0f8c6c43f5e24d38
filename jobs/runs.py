"""Sync runs (what ran, for whom, with what outcome) and the single-writer lease."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from phoneindex.db import writer
from phoneindex.errors import WhoisError
from phoneindex.models import lease_table, run_table
from phoneindex.store import LAST_FULL_SYNC, Store, iso, utcnow

log = logging.getLogger(__name__)

R = run_table.c
WRITER_LEASE = "index-writer"
KINDS = ("full", "enrich", "incremental")
KIND_WORDS = {"full": "full sync", "enrich": "MFA enrichment", "incremental": "log sync"}


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


class LeaseLost(WhoisError):
    """This process no longer holds the writer lease (it expired and someone else took it)."""


class Runs:
    """Run records and the writer lease, in the index database."""

    def __init__(
        self,
        engine: Engine,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        lease_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self.engine = engine
        self.store = store
        self.clock = clock
        self.lease_ttl = lease_ttl
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        pg = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if pg else sqlite.insert

    # ------------------------------------------------------------------ runs

    def start(self, kind: str, requested_by: str, *, status: str = "running") -> int:
        """Record a new run and return its id."""
        now = self.clock()
        with self.engine.connect() as conn, writer(conn).begin():
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
    ) -> None:
        """Close a run; a succeeded full sync also becomes the index's last full sync."""
        now = self.clock()
        with self.engine.connect() as conn, writer(conn).begin():
            kind = conn.execute(
                update(run_table)
                .where(R.id == run_id)
                .values(status=status, finished_at=now, error=error)
                .values(counts=json.dumps(counts) if counts else None)
                .returning(R.kind)
            ).scalar_one()
            if kind == "full" and status == "succeeded":
                self.store.set_checkpoint(LAST_FULL_SYNC, iso(now), conn=conn)

    def get(self, run_id: int) -> dict[str, Any] | None:
        """One run as a status document fragment."""
        with self.engine.connect() as conn:
            row = conn.execute(select(run_table).where(R.id == run_id)).first()
        return _run_doc(row) if row else None

    def last(self, kind: str, *, finished: bool = True) -> dict[str, Any] | None:
        """The latest run of a kind (finished ones only by default)."""
        stmt = select(run_table).where(R.kind == kind)
        if finished:
            stmt = stmt.where(R.status.in_(("succeeded", "failed")))
        with self.engine.connect() as conn:
            row = conn.execute(stmt.order_by(R.id.desc()).limit(1)).first()
        return _run_doc(row) if row else None

    def running(self) -> dict[str, Any] | None:
        """The run holding the writer lease now, if any."""
        now = self.clock()
        with self.engine.connect() as conn:
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
            "running": self.running(),
            "log_checkpoint": self.store.get_checkpoint("auth0.log_checkpoint"),
            "stale": fresh["stale"],
            "last_update": fresh["last_update"],
        }
        return doc

    # ----------------------------------------------------------------- lease

    def new_holder(self) -> str:
        """A holder name unique to one acquisition: host, process and a random suffix."""
        return f"{self.me}:{uuid.uuid4().hex[:8]}"

    def acquire(self, holder: str, run_id: int | None = None) -> None:
        """Take the writer lease, or raise AlreadyRunning naming the run that holds it."""
        now = self.clock()
        ins = self._insert(lease_table).values(
            name=WRITER_LEASE,
            holder=holder,
            run_id=run_id,
            acquired_at=now,
            expires_at=now + self.lease_ttl,
        )
        current = lease_table.c
        stmt = ins.on_conflict_do_update(
            index_elements=[current.name],
            set_={k: ins.excluded[k] for k in ("holder", "run_id", "acquired_at", "expires_at")},
            where=or_(current.expires_at <= now, current.holder == holder),
        ).returning(current.holder)
        with self.engine.connect() as conn, writer(conn).begin():
            if conn.execute(stmt).first() is not None:  # rowcount is unreliable for upserts
                return
            other = conn.execute(
                select(current.holder, current.run_id).where(current.name == WRITER_LEASE)
            ).first()
        run = self.get(other.run_id) if other and other.run_id else None
        raise AlreadyRunning(run, other.holder if other else "unknown")

    def renew(self, holder: str, run_id: int | None = None) -> None:
        """Extend the lease (and the run's heartbeat); LeaseLost if another process took it."""
        now = self.clock()
        with self.engine.connect() as conn, writer(conn).begin():
            kept = conn.execute(
                update(lease_table)
                .where(lease_table.c.name == WRITER_LEASE, lease_table.c.holder == holder)
                .values(expires_at=now + self.lease_ttl)
            ).rowcount
            if run_id is not None:
                conn.execute(update(run_table).where(R.id == run_id).values(heartbeat_at=now))
        if not kept:
            raise LeaseLost("the writer lease expired and was taken by another process")

    def release(self, holder: str) -> None:
        """Give the lease back (only if still ours)."""
        with self.engine.connect() as conn, writer(conn).begin():
            conn.execute(
                lease_table.delete().where(
                    lease_table.c.name == WRITER_LEASE, lease_table.c.holder == holder
                )
            )

    @contextmanager
    def exclusive(self, kind: str, requested_by: str) -> Iterator[RunHandle]:
        """Run `kind` holding the lease; the run is recorded and closed whatever happens."""
        holder = self.new_holder()
        self.acquire(holder)
        try:
            run_id = self.start(kind, requested_by)
            self.acquire(holder, run_id)  # now the lease names the run
            handle = RunHandle(self, run_id, holder)
            try:
                yield handle
            except BaseException as exc:
                self.finish(run_id, "failed", counts=handle.counts, error=_describe(exc))
                raise
            self.finish(run_id, "succeeded", counts=handle.counts)
        finally:
            self.release(holder)


class RunHandle:
    """What a running job sees of its run: its id, counts to record, a heartbeat."""

    def __init__(self, runs: Runs, run_id: int, holder: str) -> None:
        self.runs = runs
        self.id = run_id
        self.holder = holder
        self.counts: dict[str, Any] = {}

    def heartbeat(self) -> None:
        """Keep the lease while working; raises LeaseLost if it was taken over."""
        self.runs.renew(self.holder, self.id)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, WhoisError):
        return str(exc)
    return f"internal error ({type(exc).__name__})"


def _run_doc(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "requested_by": row.requested_by,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "counts": json.loads(row.counts) if row.counts else {},
        "error": row.error,
    }
