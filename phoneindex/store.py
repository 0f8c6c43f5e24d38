"""apply(changes) and lookup(): the only write path into the index and the only read path out.

Every write is idempotent and last-writer-wins by the time the source observed it, so replays
and out-of-order deliveries give the same index. Unlinks are kept as inactive rows (tombstones)
so that an older "linked" arriving late cannot resurrect a number.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, not_, null, or_, select, true, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from phoneindex.bulk import BulkStatement, Row, timestamp_converter
from phoneindex.changes import (
    AccountDeleted,
    AccountSeen,
    Change,
    EnrollmentRemoved,
    MfaPhonesReplaced,
    PhoneLinked,
    PhoneUnlinked,
    ProfilePhonesReplaced,
    RefetchRequested,
    mfa_key,
)
from phoneindex.db import (
    retry_disconnect,
    truncate_wal,
    unpinged,
    upsert_insert,
    write_within,
    writer,
)
from phoneindex.fullload import FullLoad, Listing, LoadCounts
from phoneindex.models import EPOCH, UTCDateTime, account_table, checkpoint_table, link_table
from phoneindex.seen_events import SeenEvent, remember

A = account_table.c
L = link_table.c

LAST_UPDATE = "index.last_update"
LAST_FULL_SYNC = "index.last_full_sync"
# When the export last imported was taken: older passwordless/profile facts are superseded.
EXPORT_SNAPSHOT = "index.export_snapshot"
FRESHNESS_TTL = 1.0  # seconds
KIND_ORDER = {"mfa": 0, "passwordless": 1, "profile": 2}
PROFILE_KINDS = ("passwordless", "profile")
# A failed read of an account: not tried again before READ_RETRY_FIRST, doubling with each
# failure in a row up to READ_RETRY_MAX. From READ_FAILURES_SHOWN in a row, `status` counts it.
READ_RETRY_FIRST = timedelta(minutes=15)
READ_RETRY_MAX = timedelta(hours=24)
READ_FAILURES_SHOWN = 3
_PROFILE = ("email", "name", "connection", "blocked", "created_at", "last_login", "logins_count")
_PROFILE_COLUMNS = (
    *_PROFILE, "multifactor", "multifactor_last_modified", "mfa_key", "observed_at",
)  # fmt: skip
# Bulk rows are tuples in table column order (BulkStatement checks it).
_ACCOUNT_ROW = (
    "user_id", *_PROFILE, "multifactor", "multifactor_last_modified", "observed_at", "seen_at",
    "mfa_key", "mfa_masked", "updated_at",
)  # fmt: skip
_LINK_ROW = (
    "phone", "user_id", "kind", "method", "confirmed", "confirmed_at", "source", "active",
    "observed_at", "updated_at", "identity", "authenticator_id",
)  # fmt: skip


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """`2026-11-27T09:41:00Z`: the timestamp form of every document we produce."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class EnrichTarget:
    """An account to read; `mfa_key` is what an MFA read will answer.

    `has_mfa`: the index has, or had, MFA for the account (its `multifactor`, an earlier MFA
    read, or an MFA link from another source), so a re-read must read its MFA numbers too.
    """

    user_id: str
    mfa_key: str
    refetch_requested_at: datetime | None
    has_mfa: bool = False
    read_failures: int = 0  # reads of the account that failed in a row so far


@dataclass(frozen=True, slots=True)
class AccountState:
    """A live account as the index knows it: profile, active MFA numbers, masked MFA numbers."""

    # `seen.observed_at` is EPOCH when sources only mentioned the account (no profile yet).

    seen: AccountSeen
    mfa_numbers: int
    mfa_masked: int

    @property
    def profiled(self) -> bool:
        """Whether a source ever gave the account's profile (not only mentioned it)."""
        return self.seen.observed_at > EPOCH


@dataclass
class ApplyStats:
    """What one apply() or replace_export() did."""

    accounts_seen: int = 0
    accounts_deleted: int = 0
    links: dict[str, int] = field(default_factory=dict)
    unlinks: int = 0
    mfa_reads: int = 0
    masked: int = 0
    refetches: int = 0
    read_failures: int = 0  # failed reads recorded (each delays the account's next read)
    accounts_removed: int = 0
    links_removed: int = 0
    profile_reads: int = 0  # user objects read whole (live checks, re-reads)
    unknown_enrollments: int = 0  # enrollment deletes whose owner the index does not know
    superseded: int = 0  # changes older than the last export, about what it replaced
    duplicate: bool = False  # an event applied before (apply_at_once with `event`): nothing done

    def as_dict(self) -> dict[str, Any]:
        """Counts for run records and summaries."""
        return {k: v for k, v in self.__dict__.items() if v}


class Store:
    """The phone index: applies changes, answers lookups."""

    def __init__(
        self,
        engine: Engine,
        *,
        stale_after: timedelta = timedelta(hours=26),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.stale_after = stale_after
        self.clock = clock
        pg = engine.dialect.name == "postgresql"
        self._insert = upsert_insert(engine)
        self._ts = timestamp_converter(engine.dialect)
        self._account_upsert = BulkStatement(
            self._make_account_upsert(), _ACCOUNT_ROW, engine.dialect
        )
        self._mention_upsert = self._make_mention_upsert()
        self._tombstone_upsert = self._make_tombstone_upsert()
        self._link_upsert = BulkStatement(self._make_link_upsert(), _LINK_ROW, engine.dialect)
        self._lookup_sql = self._compile_lookup()
        self._lookup_params: Callable[[str], Any] = (
            (lambda phone: (phone,)) if engine.dialect.positional else (lambda p: {"phone": p})
        )
        self._iso_out: Callable[[Any], str | None] = _sqlite_iso if not pg else iso
        # Lookups read outside a transaction on PostgreSQL: one round trip each instead of
        # BEGIN, SELECT, ROLLBACK (a lookup is one statement; the freshness comes from a cache).
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT") if pg else engine
        self._pg = pg
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        # Freshness read by lookups, kept for a second (this store's own writes reset it).
        self._fresh_cache: tuple[float, dict[str, str | None]] | None = None

    # ----------------------------------------------------------------- writes

    def apply(self, changes: Iterable[Change], *, batch_size: int = 2000) -> ApplyStats:
        """Apply changes in batches, one transaction per batch."""
        stats = ApplyStats()
        for batch in _batched(changes, batch_size):
            with self.engine.connect() as conn:
                with writer(conn).begin():
                    self._apply_batch(conn, self._current(conn, batch, stats), stats)
                    self._touch(conn)
        return stats

    def apply_at_once(
        self,
        changes: list[Change],
        *,
        lock_wait: float,
        checkpoints: Mapping[str, str] | None = None,
        event: SeenEvent | None = None,
    ) -> ApplyStats:
        """Apply all `changes` and set `checkpoints` in one transaction: all of it or nothing.

        Waits at most `lock_wait` seconds for another writer's lock (a long import), then fails
        with an error phoneindex.db.is_busy() recognises. `last_update` moves only when there
        are changes. With `event`, the event is remembered in the same transaction, and if it
        was remembered before nothing is applied and `stats.duplicate` says so.
        """
        stats = ApplyStats()
        with self.engine.connect() as conn, write_within(conn, lock_wait):
            if event is not None and not remember(conn, event):
                stats.duplicate = True
                return stats
            if changes:
                self._apply_batch(conn, self._current(conn, changes, stats), stats)
                self._touch(conn)
            for name, value in (checkpoints or {}).items():
                self._set_checkpoint(conn, name, value)
        return stats

    def replace_export(
        self,
        changes: Iterable[Listing],
        snapshot_at: datetime,
        *,
        batch_size: int = 5000,
        on_batch: Callable[[ApplyStats], None] | None = None,
    ) -> ApplyStats:
        """Replace the export-sourced part of the index atomically with `changes`.

        Accounts and passwordless/profile numbers not re-asserted by `changes` (and not seen by
        another source after `snapshot_at`) disappear; MFA numbers of remaining accounts stay.
        If `changes` raises, nothing is written.
        """
        stats = ApplyStats()
        with self.engine.connect() as conn:
            load = FullLoad(conn, batch_size)

            def progress() -> None:
                stats.accounts_seen = load.accounts
                if on_batch is not None:
                    on_batch(stats)

            try:
                # One writer transaction: on SQLite it holds the write lock from the start, so
                # the lease heartbeats of a long import go through it (db.held_writer).
                with writer(conn).begin():
                    load.create_stage()
                    load.feed(changes, progress)
                    counts = self._swap(conn, load, snapshot_at)
            finally:
                load.drop_stage()
        stats.accounts_seen = counts.accounts
        stats.links = dict(counts.links)
        stats.accounts_removed = counts.accounts_removed
        stats.links_removed = counts.links_removed
        truncate_wal(self.engine)  # an import rewrites most pages: don't keep a log that size
        return stats

    def _swap(self, conn: Connection, load: FullLoad, snapshot_at: datetime) -> LoadCounts:
        counts = load.swap(snapshot_at, self.clock())
        self._set_checkpoint(conn, EXPORT_SNAPSHOT, snapshot_at.astimezone(UTC).isoformat())
        self._touch(conn)
        return counts

    def export_snapshot(self) -> datetime | None:
        """When the export last imported was taken (None before the first import)."""
        with self.engine.connect() as conn:
            return self._export_snapshot(conn)

    def _export_snapshot(self, conn: Connection) -> datetime | None:
        raw = conn.execute(
            select(checkpoint_table.c.value).where(checkpoint_table.c.name == EXPORT_SNAPSHOT)
        ).scalar_one_or_none()
        return None if raw is None else datetime.fromisoformat(raw)

    def _current(self, conn: Connection, batch: list[Change], stats: ApplyStats) -> list[Change]:
        """Drop what the last export import superseded: the sweep left no tombstone to stop it.

        An export taken at S is the whole truth about accounts and passwordless/profile numbers
        at S. A late event observed before S about those numbers, or about an account the
        import removed, would bring back what the export said is gone.
        """
        snapshot = self._export_snapshot(conn)
        if snapshot is None:
            return batch
        older = [c for c in batch if _is_older(c, snapshot)]
        if not older:
            return batch
        users = {c.user_id for c in older if not isinstance(c, EnrollmentRemoved)}
        known = set(
            conn.execute(select(A.user_id).where(A.user_id.in_(users))).scalars()
        )  # fmt: skip
        dropped = {id(c) for c in older if _superseded(c, known)}
        stats.superseded += len(dropped)
        return [c for c in batch if id(c) not in dropped] if dropped else batch

    def _apply_batch(self, conn: Connection, batch: list[Change], stats: ApplyStats) -> None:
        seen: dict[str, AccountSeen] = {}
        deleted: dict[str, AccountDeleted] = {}
        links: dict[tuple[str, str, str], PhoneLinked | PhoneUnlinked] = {}
        reads: dict[str, MfaPhonesReplaced] = {}
        profiles: dict[str, ProfilePhonesReplaced] = {}
        refetch: dict[str, RefetchRequested] = {}  # the earliest request per account
        refetch_last: dict[str, RefetchRequested] = {}  # and the latest
        failed: dict[str, RefetchRequested] = {}
        enrollments: list[EnrollmentRemoved] = []
        for change in batch:
            if isinstance(change, PhoneLinked | PhoneUnlinked):
                _keep_latest(links, (change.user_id, change.phone, change.kind), change)
            elif isinstance(change, AccountSeen):
                _keep_latest(seen, change.user_id, change)
            elif isinstance(change, MfaPhonesReplaced):
                _keep_latest(reads, change.user_id, change)
            elif isinstance(change, ProfilePhonesReplaced):
                _keep_latest(profiles, change.user_id, change)
            elif isinstance(change, AccountDeleted):
                _keep_latest(deleted, change.user_id, change)
            elif isinstance(change, RefetchRequested):
                _keep_latest(refetch, change.user_id, change, earliest=True)
                _keep_latest(refetch_last, change.user_id, change)
                if change.failed:
                    _keep_latest(failed, change.user_id, change)
            elif isinstance(change, EnrollmentRemoved):
                enrollments.append(change)
        now = self.clock()
        if seen:
            self._upsert_accounts(conn, seen.values(), now, stats)
        mentions = [*links.values(), *reads.values(), *profiles.values(), *refetch.values()]
        self._mention(conn, seen, mentions, now)
        if deleted:
            self._delete_accounts(conn, deleted.values(), now, stats)
        if links:
            self._upsert_links(conn, links.values(), now, stats)
        for profile in profiles.values():
            self._replace_profile(conn, profile, now, stats)
        for read in reads.values():
            self._replace_mfa(conn, read, now, stats)
        for owner in self._enrollment_owners(conn, enrollments, stats):
            _keep_latest(refetch, owner.user_id, owner, earliest=True)
            _keep_latest(refetch_last, owner.user_id, owner)
        self._reset_failures(conn, {*reads, *profiles})
        if refetch:
            requests = [(c, refetch_last[u]) for u, c in refetch.items()]
            self._request_refetch(conn, requests, stats)
        if failed:
            self._record_failures(conn, failed.values(), stats)
        self._answer_refetch(conn, {*seen, *reads, *profiles}, now)

    def _upsert_accounts(
        self, conn: Connection, seen: Iterable[AccountSeen], now: datetime, stats: ApplyStats
    ) -> None:
        ts = self._ts
        when = ts(now)
        seen_ts = _memo(ts)  # a batch shares a handful of observed_at values
        rows = [
            (
                c.user_id, c.email, c.name, c.connection, c.blocked, ts(c.created_at),
                ts(c.last_login), c.logins_count, ",".join(c.multifactor) or None,
                ts(c.multifactor_last_modified), seen_ts(c.observed_at), seen_ts(c.observed_at),
                mfa_key(c.multifactor, c.multifactor_last_modified) if c.multifactor else "",
                0, when,
            )
            for c in seen
        ]  # fmt: skip
        self._account_upsert.run(conn, rows)
        stats.accounts_seen += len(rows)

    def _mention(
        self,
        conn: Connection,
        seen: dict[str, AccountSeen],
        changes: list[
            PhoneLinked
            | PhoneUnlinked
            | MfaPhonesReplaced
            | ProfilePhonesReplaced
            | RefetchRequested
        ],
        now: datetime,
    ) -> None:
        """Make sure every account a change mentions exists, and record that it was seen."""
        latest: dict[str, datetime] = {}
        for change in changes:
            prior = seen.get(change.user_id)
            if prior is not None and prior.observed_at >= change.observed_at:
                continue  # the account row was written in this batch already
            if change.observed_at > latest.get(change.user_id, EPOCH):
                latest[change.user_id] = change.observed_at
        if latest:
            rows = [
                {"user_id": u, "observed_at": EPOCH, "seen_at": t, "updated_at": now}
                | {"blocked": False, "mfa_masked": 0, "mfa_key": ""}
                for u, t in latest.items()
            ]
            conn.execute(self._mention_upsert, rows)

    def _delete_accounts(
        self, conn: Connection, gone: Iterable[AccountDeleted], now: datetime, stats: ApplyStats
    ) -> None:
        rows = [
            {"user_id": c.user_id, "observed_at": c.observed_at, "seen_at": c.observed_at}
            | {"deleted_at": c.observed_at, "updated_at": now}
            | {"blocked": False, "mfa_masked": 0, "mfa_key": ""}
            for c in gone
        ]
        conn.execute(self._tombstone_upsert, rows)
        conn.execute(
            delete(link_table).where(
                L.user_id == _bind("user_id"), L.observed_at <= _bind("observed_at")
            ),
            [{"b_user_id": r["user_id"], "b_observed_at": r["observed_at"]} for r in rows],
        )
        stats.accounts_deleted += len(rows)

    def _upsert_links(
        self,
        conn: Connection,
        changes: Iterable[PhoneLinked | PhoneUnlinked],
        now: datetime,
        stats: ApplyStats,
        authenticators: dict[tuple[str, str], str | None] | None = None,
    ) -> None:
        """Upsert links; `authenticators` gives MFA links their authenticator id (user, phone)."""
        authenticators = authenticators or {}
        when = self._ts(now)
        ts = _memo(self._ts)
        rows: list[Row] = []
        counts = stats.links
        for c in changes:
            if isinstance(c, PhoneLinked):
                seen = ts(c.observed_at)
                known = None if c.confirmed is None else seen
                rows.append(
                    (c.phone, c.user_id, c.kind, c.method, c.confirmed, known, c.source, True,
                     seen, when, c.identity, authenticators.get((c.user_id, c.phone)))
                )  # fmt: skip
                counts[c.kind] = counts.get(c.kind, 0) + 1
            else:
                rows.append(
                    (c.phone, c.user_id, c.kind, None, None, None, c.source, False,
                     ts(c.observed_at), when, None, None)
                )  # fmt: skip
                stats.unlinks += 1
        self._link_upsert.run(conn, rows)

    def _replace_mfa(
        self, conn: Connection, read: MfaPhonesReplaced, now: datetime, stats: ApplyStats
    ) -> None:
        keep = {p.phone for p in read.phones}
        stale = [
            L.user_id == read.user_id,
            L.kind == "mfa",
            L.active == true(),
            L.observed_at <= read.observed_at,
        ]
        if keep:
            stale.append(L.phone.not_in(keep))
        dropped = 0
        if not read.masked:
            # With masked numbers in the read we cannot tell which known numbers are gone:
            # keep them (a masked value is never indexed, a real one from logs stays).
            dropped = conn.execute(
                update(link_table)
                .where(*stale)
                .values(
                    active=False, observed_at=read.observed_at, source=read.source, updated_at=now
                )
            ).rowcount
        links = [
            PhoneLinked(
                read.user_id, p.phone, "mfa", read.source, read.observed_at, p.method, p.confirmed
            )
            for p in read.phones
        ]
        if links:
            ids = {(read.user_id, p.phone): p.authenticator_id for p in read.phones}
            self._upsert_links(conn, links, now, stats, ids)
        stats.unlinks += dropped or 0
        stats.mfa_reads += 1
        stats.masked += read.masked
        conn.execute(
            update(account_table)
            .where(A.user_id == read.user_id)
            .values(
                mfa_fetched_key=func.coalesce(read.fetched_key, A.mfa_fetched_key),
                mfa_fetched_at=read.observed_at,
                mfa_masked=read.masked,
                updated_at=now,
            )
        )

    def _replace_profile(
        self, conn: Connection, read: ProfilePhonesReplaced, now: datetime, stats: ApplyStats
    ) -> None:
        """A user object's passwordless/profile numbers: the rest of the account's are unlinked."""
        keep = {(p.phone, p.kind) for p in read.phones}
        rows = conn.execute(
            select(L.phone, L.kind).where(
                L.user_id == read.user_id,
                L.kind.in_(PROFILE_KINDS),
                L.active == true(),
                L.observed_at <= read.observed_at,
            )
        ).all()
        gone: list[PhoneLinked | PhoneUnlinked] = [
            PhoneUnlinked(read.user_id, phone, kind, read.source, read.observed_at)
            for phone, kind in rows
            if (phone, kind) not in keep
        ]
        links: list[PhoneLinked | PhoneUnlinked] = [
            PhoneLinked(read.user_id, p.phone, p.kind, read.source, read.observed_at, None,
                        p.confirmed, p.identity)
            for p in read.phones
        ]  # fmt: skip
        self._upsert_links(conn, [*gone, *links], now, stats)
        stats.profile_reads += 1

    def _enrollment_owners(
        self, conn: Connection, removed: list[EnrollmentRemoved], stats: ApplyStats
    ) -> list[RefetchRequested]:
        """Re-read requests for the owners of deleted enrollments; unknown ones are counted."""
        if not removed:
            return []
        wanted = {authenticator_id(r.enrollment_id): r for r in removed}
        found = conn.execute(
            select(L.authenticator_id, L.user_id)
            .where(L.authenticator_id.in_(list(wanted)))
            .distinct()
        ).all()
        owned = {aid for aid, _ in found}
        stats.unknown_enrollments += sum(1 for aid in wanted if aid not in owned)
        return [RefetchRequested(user, wanted[aid].observed_at) for aid, user in found]

    def _request_refetch(
        self,
        conn: Connection,
        requests: list[tuple[RefetchRequested, RefetchRequested]],
        stats: ApplyStats,
    ) -> None:
        """Queue re-reads: (earliest, latest) request per account in this batch.

        The account keeps its place by its earliest unanswered request and remembers the latest,
        so a read that started before a newer request does not answer it (see _answer_refetch).
        """
        first = bindparam("b_first", type_=UTCDateTime())
        last = bindparam("b_last", type_=UTCDateTime())
        # A read after the earliest request answered that one: the place comes from the latest.
        place = case((_read_since(first), last), else_=first)
        known = func.coalesce(A.refetch_latest_at, A.refetch_requested_at)
        stmt = (
            update(account_table)
            .where(
                A.user_id == _bind("user_id"),
                not_(_read_since(last)),  # a re-read after the request already answered it
            )
            .values(
                refetch_requested_at=case(
                    (or_(A.refetch_requested_at.is_(None), A.refetch_requested_at > place), place),
                    else_=A.refetch_requested_at,
                ),
                refetch_latest_at=case((or_(known.is_(None), known < last), last), else_=known),
            )
        )
        rows = [
            {"b_user_id": a.user_id, "b_first": a.observed_at, "b_last": b.observed_at}
            for a, b in requests
        ]
        stats.refetches += len(rows)
        conn.execute(stmt, rows)

    def _record_failures(
        self, conn: Connection, failures: Iterable[RefetchRequested], stats: ApplyStats
    ) -> None:
        """Count failed reads in a row; each moves the account's next read back (backoff)."""
        by_user = {c.user_id: c for c in failures}
        found = select(A.user_id, A.read_failures).where(A.user_id.in_(list(by_user)))
        counts: dict[str, int] = dict(conn.execute(found).all())
        at = bindparam("b_at", type_=UTCDateTime())
        stmt = (
            update(account_table)
            .where(A.user_id == _bind("user_id"), not_(_read_since(at)))
            .values(
                read_failures=_bind("failures"),
                read_retry_at=bindparam("b_retry_at", type_=UTCDateTime()),
            )
        )
        rows = []
        for user_id, change in by_user.items():
            if user_id not in counts:
                continue  # not in the index (the read's account was never seen)
            failures_now = int(counts[user_id] or 0) + 1
            rows.append(
                {"b_user_id": user_id, "b_at": change.observed_at, "b_failures": failures_now}
                | {"b_retry_at": change.observed_at + retry_after(failures_now)}
            )
        if rows:
            conn.execute(stmt, rows)
            stats.read_failures += len(rows)

    def _reset_failures(self, conn: Connection, user_ids: set[str]) -> None:
        """A read that succeeded ends the account's run of failures and its backoff."""
        if user_ids:
            conn.execute(
                update(account_table)
                .where(A.user_id.in_(user_ids), A.read_failures != 0)
                .values(read_failures=0, read_retry_at=None)
            )

    def _answer_refetch(self, conn: Connection, user_ids: set[str], now: datetime) -> None:
        """Clear queued re-reads that the reads applied so far answer (profile and MFA).

        Only a read stamped at or after the latest request answers the queue entry: a request
        that arrived while an older read was in flight stays queued, in its earliest place.
        """
        if not user_ids:
            return
        latest = func.coalesce(A.refetch_latest_at, A.refetch_requested_at)
        conn.execute(
            update(account_table)
            .where(
                A.user_id.in_(user_ids), A.refetch_requested_at.is_not(None), _read_since(latest)
            )
            .values(refetch_requested_at=None, refetch_latest_at=None, updated_at=now)
        )

    def _touch(self, conn: Connection) -> None:
        self._set_checkpoint(conn, LAST_UPDATE, iso(self.clock()))

    # ----------------------------------------------------------- statements

    def _make_account_upsert(self) -> Any:
        ins = self._insert(account_table)
        ex = ins.excluded
        values = {name: ex[name] for name in _PROFILE_COLUMNS}
        return ins.on_conflict_do_update(
            index_elements=[A.user_id],
            set_=values
            | {
                "seen_at": case((ex.seen_at > A.seen_at, ex.seen_at), else_=A.seen_at),
                "deleted_at": null(),
                "updated_at": ex.updated_at,
            },
            where=and_(
                ex.observed_at >= A.observed_at,
                or_(A.deleted_at.is_(None), ex.observed_at > A.deleted_at),
            ),
        )

    def _make_mention_upsert(self) -> Any:
        ins = self._insert(account_table)
        ex = ins.excluded
        return ins.on_conflict_do_update(
            index_elements=[A.user_id],
            set_={"seen_at": ex.seen_at},
            where=ex.seen_at > A.seen_at,
        )

    def _make_tombstone_upsert(self) -> Any:
        ins = self._insert(account_table)
        ex = ins.excluded
        return ins.on_conflict_do_update(
            index_elements=[A.user_id],
            set_={
                "deleted_at": ex.deleted_at,
                "observed_at": ex.observed_at,
                "seen_at": case((ex.seen_at > A.seen_at, ex.seen_at), else_=A.seen_at),
                "updated_at": ex.updated_at,
            },
            where=ex.observed_at >= A.observed_at,
        )

    def _make_link_upsert(self) -> Any:
        ins = self._insert(link_table)
        ex = ins.excluded
        newer = ex.observed_at >= L.observed_at
        # `confirmed` has its own last writer: the latest source that knew it (not None).
        knows = and_(
            ex.active == true(),
            ex.confirmed.is_not(None),
            or_(L.confirmed_at.is_(None), ex.confirmed_at >= L.confirmed_at),
        )
        return ins.on_conflict_do_update(
            index_elements=[L.phone, L.user_id, L.kind],
            set_={
                "method": case((and_(newer, ex.active == true()), ex.method), else_=L.method),
                "confirmed": case((knows, ex.confirmed), else_=L.confirmed),
                "confirmed_at": case((knows, ex.confirmed_at), else_=L.confirmed_at),
                "source": case((newer, ex.source), else_=L.source),
                "active": case((newer, ex.active), else_=L.active),
                "observed_at": case((newer, ex.observed_at), else_=L.observed_at),
                "updated_at": ex.updated_at,
                # Which identity carries the number is part of the link as last observed.
                "identity": case((and_(newer, ex.active == true()), ex.identity), else_=L.identity),
                # Only authenticator reads know the id; other sources keep what they knew.
                "authenticator_id": func.coalesce(ex.authenticator_id, L.authenticator_id),
            },
            where=or_(newer, knows),
        )

    # ------------------------------------------------------------------ reads

    def lookup(self, phone: str, query: str | None = None) -> dict[str, Any]:
        """The contract's lookup document: every account linked to the E.164 `phone`."""
        sql, params = self._lookup_sql, self._lookup_params(phone)

        def read() -> tuple[Sequence[Any], dict[str, Any]]:
            with self._reads.connect() as conn:
                return conn.exec_driver_sql(sql, params).all(), self._freshness(conn)

        try:
            rows = self._read_directly(sql, params)
        except self._dbapi_error:
            # A dropped connection, a server away: read the usual way, which words the error,
            # retires dropped connections and reads once more after one.
            rows, fresh = retry_disconnect(read)
        else:
            fresh = retry_disconnect(lambda: self._freshness(None))
        return {
            "query": phone if query is None else query,
            "phone": phone,
            "accounts": _group_accounts(rows, self._iso_out),
            "freshness": fresh,
        }

    def _compile_lookup(self) -> str:
        """The lookup query, compiled once: lookups are the hot read path."""
        stmt = (
            select(
                A.user_id, A.email, A.name, A.connection, A.blocked, A.created_at, A.last_login,
                L.kind, L.method, L.confirmed, L.source, L.observed_at, L.identity,
            )
            .join_from(link_table, account_table, A.user_id == L.user_id)
            .where(L.phone == bindparam("phone"), L.active == true(), A.deleted_at.is_(None))
        )  # fmt: skip
        return str(stmt.compile(dialect=self.engine.dialect))

    def _read_directly(self, sql: str, params: Any) -> Sequence[Any]:
        """Rows of one read on a pooled driver connection, around SQLAlchemy's Connection.

        The hot path: lookups spent more in SQLAlchemy's execution machinery (and in the GIL
        hand-overs between its steps) than in the query (benchmarks/RESULTS.md, issue 9).
        PostgreSQL reads in autocommit (no BEGIN/ROLLBACK round trips); SQLite's connections
        never open a transaction for a SELECT. Any error invalidates the connection (its state,
        autocommit included, is unknown); a driver error is raised for the caller to read again
        the usual way. No connection to be had (the server away) is raised as SQLAlchemy words
        it: another attempt would only wait out the connect timeout again.
        """
        try:
            with unpinged():  # a dropped connection fails the read, which the caller repeats
                raw = self.engine.raw_connection()
        except self._dbapi_error as exc:
            dialect = self.engine.dialect
            raise DBAPIError.instance(
                None, None, exc, self._dbapi_error, hide_parameters=True, dialect=dialect
            ) from exc
        try:
            driver: Any = raw.driver_connection
            if self._pg:
                driver.autocommit = True
            cursor = raw.cursor()
            try:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
            finally:
                cursor.close()
            if self._pg:
                driver.autocommit = False
        except BaseException as exc:  # whatever failed, the connection's state is unknown
            raw.invalidate(exc)  # (e.g. still in autocommit): it never goes back to the pool
            raise
        finally:
            raw.close()
        return rows

    def freshness(self) -> dict[str, Any]:
        """When the index last had a full sync and any update, and whether it is stale."""
        return self._freshness(None)

    def _freshness(self, conn: Connection | None) -> dict[str, Any]:
        """From the cache, else read (on `conn`, or on a connection of its own)."""
        cached = self._fresh_cache
        if cached is None or time.monotonic() - cached[0] > FRESHNESS_TTL:
            if conn is None:
                with self._reads.connect() as own:
                    return self._freshness(own)
            rows = conn.execute(
                select(checkpoint_table.c.name, checkpoint_table.c.value).where(
                    checkpoint_table.c.name.in_((LAST_UPDATE, LAST_FULL_SYNC))
                )
            ).all()
            cached = self._fresh_cache = (time.monotonic(), {n: v for n, v in rows})
        values = cached[1]
        last_full = values.get(LAST_FULL_SYNC)
        stale = last_full is None or (
            self.clock() - datetime.fromisoformat(last_full) > self.stale_after
        )
        return {
            "last_full_sync": last_full,
            "last_update": values.get(LAST_UPDATE),
            "stale": stale,
        }

    def summary(self) -> dict[str, Any]:
        """Index size: accounts, numbers by kind, masked MFA numbers, accounts failing reads."""
        live = A.deleted_at.is_(None)
        with self.engine.connect() as conn:
            accounts = conn.execute(
                select(func.count()).select_from(account_table).where(live)
            ).scalar_one()
            failing = func.sum(case((A.read_failures >= READ_FAILURES_SHOWN, 1), else_=0))
            masked, failing_total = conn.execute(
                select(func.coalesce(func.sum(A.mfa_masked), 0), func.coalesce(failing, 0))
                .where(live)
            ).one()  # fmt: skip
            by_kind = conn.execute(
                select(L.kind, func.count(func.distinct(L.phone)))
                .join_from(link_table, account_table, A.user_id == L.user_id)
                .where(L.active == true(), live)
                .group_by(L.kind)
            ).all()
        numbers = {"mfa": 0, "passwordless": 0, "profile": 0} | {k: int(n) for k, n in by_kind}
        return {
            "accounts": int(accounts), "numbers": numbers, "masked_mfa_numbers": int(masked),
            "failing_reads": int(failing_total),
        }  # fmt: skip

    def enrich_candidates(
        self,
        *,
        after: str | None = None,
        limit: int = 500,
        everything: bool = False,
        due_at: datetime | None = None,
    ) -> list[EnrichTarget]:
        """Accounts whose MFA numbers must be read, in user id order after `after`.

        By default: accounts with a queued re-fetch, and accounts whose MFA state changed since
        their numbers were last read (MFA added, changed or removed); with `due_at`, without
        those whose last reads failed and whose retry time comes later. With `everything`:
        every account that has or had MFA.
        """
        stmt = (
            select(*_TARGET)
            .where(*_enrich_filter(after, everything, due_at))
            .order_by(A.user_id)
            .limit(limit)
        )
        return self._targets(stmt)

    def refetch_queue(
        self, limit: int = 100, *, due_at: datetime | None = None
    ) -> list[EnrichTarget]:
        """Accounts with a queued re-read, oldest request first.

        An account whose read failed takes its place again at its retry time (the back of the
        queue); with `due_at`, only accounts whose retry time has come.
        """
        where = [A.deleted_at.is_(None), A.refetch_requested_at.is_not(None)]
        if due_at is not None:
            where.append(_due(due_at))
        stmt = (
            select(*_TARGET)
            .where(*where)
            .order_by(func.coalesce(A.read_retry_at, A.refetch_requested_at), A.user_id)
            .limit(limit)
        )
        return self._targets(stmt)

    def count_enrich_candidates(
        self, *, after: str | None = None, everything: bool = False, due_at: datetime | None = None
    ) -> int:
        """How many accounts enrich_candidates() would walk through (for progress and ETA)."""
        stmt = select(func.count()).select_from(account_table)
        where = _enrich_filter(after, everything, due_at)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt.where(*where)).scalar_one())

    def _targets(self, stmt: Any) -> list[EnrichTarget]:
        with self.engine.connect() as conn:
            return [
                EnrichTarget(u, k, at, bool(mfa), int(failures or 0))
                for u, k, at, mfa, failures in conn.execute(stmt)
            ]

    def account(self, user_id: str) -> dict[str, Any] | None:
        """One live account's profile fields (as in the lookup document), without phones."""
        stmt = select(
            A.user_id, A.email, A.name, A.connection, A.blocked, A.created_at, A.last_login
        ).where(A.user_id == user_id, A.deleted_at.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return {
            "user_id": row.user_id, "email": row.email, "name": row.name,
            "connection": row.connection, "blocked": bool(row.blocked),
            "created_at": iso(row.created_at), "last_login": iso(row.last_login),
        }  # fmt: skip

    def account_state(self, user_id: str) -> AccountState | None:
        """What the index knows of a live account: its profile and MFA numbers; None if nothing."""
        mfa = (
            select(func.count())
            .where(L.user_id == A.user_id, L.kind == "mfa", L.active == true())
            .scalar_subquery()
        )
        stmt = select(
            A.user_id, A.observed_at, A.email, A.name, A.connection, A.blocked, A.created_at,
            A.last_login, A.logins_count, A.multifactor, A.multifactor_last_modified,
            mfa.label("mfa_numbers"), A.mfa_masked,
        ).where(A.user_id == user_id, A.deleted_at.is_(None))  # fmt: skip
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        providers = tuple(p for p in (row.multifactor or "").split(",") if p)
        seen = AccountSeen(
            row.user_id, row.observed_at, row.email, row.name, row.connection, bool(row.blocked),
            row.created_at, row.last_login, row.logins_count, providers,
            row.multifactor_last_modified,
        )  # fmt: skip
        return AccountState(seen, int(row.mfa_numbers or 0), int(row.mfa_masked or 0))

    # ------------------------------------------------------------ checkpoints

    def get_checkpoint(self, name: str) -> str | None:
        """A named small value (log checkpoint, alert state), or None."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(checkpoint_table.c.value).where(checkpoint_table.c.name == name)
            ).scalar_one_or_none()

    def set_checkpoint(self, name: str, value: str | None, conn: Connection | None = None) -> None:
        """Store a named small value, in `conn`'s transaction when given."""
        if conn is not None:
            self._set_checkpoint(conn, name, value)
            return
        with self.engine.connect() as own:
            with writer(own).begin():
                self._set_checkpoint(own, name, value)

    def _set_checkpoint(self, conn: Connection, name: str, value: str | None) -> None:
        self._fresh_cache = None
        ins = self._insert(checkpoint_table)
        conn.execute(
            ins.values(name=name, value=value, updated_at=self.clock()).on_conflict_do_update(
                index_elements=[checkpoint_table.c.name],
                set_={"value": ins.excluded.value, "updated_at": ins.excluded.updated_at},
            )
        )


_TARGET = (
    A.user_id,
    A.mfa_key,
    A.refetch_requested_at,
    or_(
        A.mfa_key != "",
        func.coalesce(A.mfa_fetched_key, "") != "",
        select(L.phone).where(L.user_id == A.user_id, L.kind == "mfa", L.active == true()).exists(),
    ).label("has_mfa"),
    A.read_failures,
)


def _bind(name: str) -> Any:
    """A named parameter for executemany statements (prefixed to avoid column-name clashes)."""
    return bindparam(f"b_{name}")


def authenticator_id(enrollment_id: str) -> str:
    """`dev_x`, `phone|dev_x` or `sms|dev_x` -> the phone authenticator id `phone|dev_x`."""
    return "phone|" + enrollment_id.rpartition("|")[2]


def _read_since(at: Any) -> Any:
    """The account was read whole at or after `at`: its profile, and its MFA numbers if any."""
    no_mfa = and_(A.mfa_key == "", func.coalesce(A.mfa_fetched_key, "") == "")
    mfa_read = and_(A.mfa_fetched_at.is_not(None), A.mfa_fetched_at >= at)
    return and_(A.observed_at >= at, or_(mfa_read, no_mfa))


def _is_older(change: Change, snapshot: datetime) -> bool:
    return not isinstance(change, AccountDeleted | EnrollmentRemoved) and (
        change.observed_at < snapshot
    )


def _superseded(change: Change, known: set[str]) -> bool:
    """An older change the last export import replaced (see Store._current)."""
    if isinstance(change, ProfilePhonesReplaced):
        return True
    if isinstance(change, PhoneLinked | PhoneUnlinked) and change.kind in PROFILE_KINDS:
        return True
    return getattr(change, "user_id", None) not in known


def _keep_latest(into: dict[Any, Any], key: Any, change: Any, *, earliest: bool = False) -> None:
    prior = into.get(key)
    if prior is None:
        into[key] = change
    elif earliest:
        if change.observed_at < prior.observed_at:
            into[key] = change
    elif change.observed_at >= prior.observed_at:
        into[key] = change


def _due(at: datetime) -> Any:
    """No failed read holds the account back at `at`."""
    return or_(A.read_retry_at.is_(None), A.read_retry_at <= at)


def retry_after(failures: int) -> timedelta:
    """How long an account waits after `failures` failed reads in a row."""
    doublings = min(max(failures - 1, 0), 16)
    return min(READ_RETRY_FIRST * (1 << doublings), READ_RETRY_MAX)


def _enrich_filter(after: str | None, everything: bool, due_at: datetime | None) -> list[Any]:
    """Which live accounts enrichment reads (see Store.enrich_candidates)."""
    fetched = func.coalesce(A.mfa_fetched_key, "")
    if everything:
        wanted = or_(A.mfa_key != "", fetched != "")
    else:
        wanted = or_(A.refetch_requested_at.is_not(None), A.mfa_key != fetched)
    where = [A.deleted_at.is_(None), wanted]
    if due_at is not None and not everything:  # --all reads every account, failing or not
        where.append(_due(due_at))
    if after is not None:
        where.append(A.user_id > after)
    return where


def _sqlite_iso(value: str | None) -> str | None:
    """SQLite stores `2026-11-27T09:41:00.000000+00:00` (always UTC): cut to the document form."""
    return None if value is None else value[:19] + "Z"


def _group_accounts(
    rows: Iterable[Any], iso_out: Callable[[Any], str | None]
) -> list[dict[str, Any]]:
    accounts: dict[str, dict[str, Any]] = {}
    for (user_id, email, name, connection, blocked, created, login,
         kind, method, confirmed, source, observed, identity) in rows:  # fmt: skip
        acc = accounts.get(user_id)
        if acc is None:
            acc = accounts[user_id] = {
                "user_id": user_id,
                "email": email,
                "name": name,
                "connection": connection,
                "blocked": bool(blocked),
                "created_at": iso_out(created),
                "last_login": iso_out(login),
                "phones": [],
            }
        acc["phones"].append(
            {
                "kind": kind,
                "method": method,
                "confirmed": None if confirmed is None else bool(confirmed),
                "source": source,
                "updated_at": iso_out(observed),
                # Set when the number is a linked identity's (account linking), not the account's.
                "identity": identity,
            }
        )
    for acc in accounts.values():
        if len(acc["phones"]) > 1:
            acc["phones"].sort(key=lambda p: (KIND_ORDER.get(p["kind"], 9), p["method"] or ""))
    if len(accounts) < 2:
        return list(accounts.values())
    # Most recent login first, accounts never logged in last, ties by user id.
    by_id = sorted(accounts.values(), key=lambda a: str(a["user_id"]))
    return sorted(by_id, key=lambda a: a["last_login"] or "", reverse=True)


def _memo(convert: Callable[[datetime], Any]) -> Callable[[datetime], Any]:
    """`convert` remembering its answers (for values that repeat across a batch)."""
    cache: dict[datetime, Any] = {}

    def converted(value: datetime) -> Any:
        try:
            return cache[value]
        except KeyError:
            result = cache[value] = convert(value)
            return result

    return converted


def _batched(items: Iterable[Change], size: int) -> Iterator[list[Change]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch
