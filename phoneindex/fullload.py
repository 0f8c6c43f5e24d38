"""A full replace of the export-sourced index: stage, merge into fresh tables, swap.

An export lists every account, so rewriting the live tables row by row (an upsert per account,
then a sweep) touches every page of both b-trees in random order. Instead, in one transaction,
the export is loaded into staging tables (SQLite: in a private attached database, read back
through a covering index; PostgreSQL: temporary tables filled with `COPY`), merged with the
current index into fresh tables by two `INSERT ... SELECT` per table (SQLite: in key order, into
tables that already have their indexes; PostgreSQL: keys and indexes built after), and the fresh
tables replace the old ones. The merge applies
exactly the rules of `Store.apply` plus the sweep: last writer wins by observed time, accounts
not in the export and not seen since the snapshot disappear, their passwordless/profile numbers
too, MFA numbers and enrichment bookkeeping of remaining accounts stay. Readers keep answering
from the old tables until the commit (SQLite WAL, PostgreSQL MVCC; PostgreSQL writers wait only
during the merge); any error rolls everything back.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Column, Index, MetaData, Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex, CreateTable, DefaultClause

from phoneindex.changes import AccountSeen, PhoneLinked, mfa_key
from phoneindex.models import EPOCH, account_table, link_table

Row = tuple[Any, ...]
# SQLite: the staging tables' own page cache (the main one stays at db.py's 64 MiB; the key
# index sort may use as much): an import of a million users stays well under 300 MB resident.
STAGE_CACHE_KIB = 32_768
STAGE_DB = "stage"  # SQLite: the staging tables' own database, attached for a load
STAGE_PAGE_SIZE = 16_384
PG_WORK_MEM = "256MB"  # the merge's hash joins and sorts, in the server, for this transaction


class ExportedAccount(NamedTuple):
    """An account as an export lists it: AccountSeen's fields, timestamps as `utc_text` strings.

    The full-replace path takes these instead of AccountSeen so that a million distinct
    timestamps are not parsed into datetimes and formatted back one by one.
    """

    user_id: str
    observed_at: datetime
    email: str | None = None
    name: str | None = None
    connection: str | None = None
    blocked: bool = False
    created_at: str | None = None
    last_login: str | None = None
    logins_count: int | None = None
    multifactor: tuple[str, ...] = ()
    multifactor_last_modified: str | None = None


def utc_text(value: str) -> str:
    """An ISO 8601 timestamp with a zone as stored: `2024-03-05T11:22:33.456000+00:00`.

    Auth0's own form (`...T11:22:33.456Z`) is cut and pasted; anything else goes through
    datetime. ValueError when `value` is no timestamp with a time zone.
    """
    stamp = datetime.fromisoformat(value)  # validates (fast, in C)
    if len(value) == 24 and value[23] == "Z" and value[19] == ".":
        return value[:23] + "000+00:00"
    if stamp.tzinfo is None:
        raise ValueError("naive timestamp")
    return stamp.astimezone(UTC).isoformat(timespec="microseconds")


def stamp_text(value: datetime | None) -> str | None:
    """A datetime in the stored text form (aware UTC required)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given where aware UTC is required")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# What a full replace takes: the export's accounts (either form) and their numbers.
Listing = AccountSeen | ExportedAccount | PhoneLinked

# Staging columns, in the order of the tuples fed to them.
_STAGE_ACCOUNT = (
    "user_id", "email", "name", "connection", "blocked", "created_at", "last_login",
    "logins_count", "multifactor", "multifactor_last_modified", "mfa_key", "observed_at", "whole",
)  # fmt: skip
_STAGE_LINK = (
    "phone", "user_id", "kind", "method", "confirmed", "source", "observed_at", "identity",
)  # fmt: skip
_PROFILE = (
    "email", "name", "connection", "blocked", "created_at", "last_login", "logins_count",
    "multifactor", "multifactor_last_modified", "mfa_key",
)  # fmt: skip
_TIMESTAMPS = {"created_at", "last_login", "multifactor_last_modified", "observed_at"}
_TYPES = {"blocked": "BOOLEAN", "logins_count": "INTEGER", "whole": "INTEGER",
          "confirmed": "BOOLEAN"}  # fmt: skip
# SQLite's driver binds None and booleans several times slower than an int or a str (it looks
# for an adapter first): booleans are staged as 0/1, and the columns that are usually empty hold
# an int stand-in instead of NULL (in untyped columns: never equal to one of their text values),
# which the views the merge reads through turn back into NULL.
STAND_IN = 0
_STOOD_IN = {"multifactor", "multifactor_last_modified", "method", "identity"}


class LoadCounts(NamedTuple):
    """What a full load did."""

    accounts: int
    links: dict[str, int]
    accounts_removed: int
    links_removed: int


class FullLoad:
    """One full replace on one connection: feed() the export's changes, then swap()."""

    def __init__(self, conn: Connection, batch_size: int = 5000) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.batch_size = batch_size
        self.accounts = 0
        self.links: dict[str, int] = {}
        self._text: Callable[[datetime | None], Any] = (lambda v: v) if self.pg else stamp_text
        self._null = None if self.pg else STAND_IN  # what an empty column is staged as
        self._memo: dict[datetime, Any] = {}
        self._oldest: datetime | None = None  # the earliest observation staged
        # PostgreSQL: COPY cannot upsert, so listings are counted by key; only an export that
        # lists a key twice pays for a de-duplicating pass.
        # Hashes, not the keys (a million user ids would take 150 MB): a collision only costs
        # the de-duplicating pass.
        self._keys: set[int] = set()
        self._link_keys: set[int] = set()
        self._repeated = False

    # ------------------------------------------------------------ staging

    def create_stage(self) -> None:
        """Empty staging tables, private to this connection."""
        run = self.conn.exec_driver_sql
        if self.pg:  # temporary tables
            cols, lcols = _columns(_STAGE_ACCOUNT, True), _columns(_STAGE_LINK, True)
            run(f"CREATE TEMP TABLE stage_account_raw ({cols}, seq BIGSERIAL) ON COMMIT DROP")
            run(f"CREATE TEMP TABLE stage_link_raw ({lcols}, seq BIGSERIAL) ON COMMIT DROP")
            return
        # SQLite: a private database of their own (a temporary file), detached whole afterwards
        # (dropping a million staged rows would visit every page of them once more).
        staged = (("stage_account", _STAGE_ACCOUNT), ("stage_link", _STAGE_LINK))
        if self._stage_attached():  # left over on this connection by a load that failed
            for name, _cols in staged:
                run(f"DROP VIEW IF EXISTS {STAGE_DB}.{name}")
                run(f"DROP TABLE IF EXISTS {STAGE_DB}.{name}_rows")
        else:
            run(f"ATTACH DATABASE '' AS {STAGE_DB}")
            # Bigger pages than the index's: the staged rows are only written, sorted and read
            # front to back, and fewer, larger pages make each of those cheaper.
            run(f"PRAGMA {STAGE_DB}.page_size={STAGE_PAGE_SIZE}")
        run(f"PRAGMA {STAGE_DB}.cache_size=-{STAGE_CACHE_KIB}")
        for name, columns in staged:
            # Plain (rowid) tables: appending is the cheapest write by far (inserting a million
            # random keys into a b-tree costs several times more); one sort orders them.
            run(
                f"CREATE TABLE {STAGE_DB}.{name}_rows"
                f" (seq INTEGER PRIMARY KEY, {_columns(columns, False)})"
            )
            shown = ", ".join(
                f"NULLIF({c}, {STAND_IN}) AS {c}" if c in _STOOD_IN else c for c in columns
            )
            run(f"CREATE VIEW {STAGE_DB}.{name} AS SELECT rowid AS rowid, {shown} FROM {name}_rows")

    def drop_stage(self) -> None:
        """SQLite: detach the staging database; call after the load's transaction, not in one."""
        # A writer's transaction locks every attached database (PostgreSQL drops its temporary
        # tables at commit or rollback).
        if not self.pg and self._stage_attached():
            self._raw().execute(f"DETACH DATABASE {STAGE_DB}")

    def _stage_attached(self) -> bool:
        return any(row[1] == STAGE_DB for row in self._raw().execute("PRAGMA database_list"))

    def _raw(self) -> Any:
        """The driver's own connection (SQLite: statements outside SQLAlchemy's transactions)."""
        return self.conn.connection.dbapi_connection

    def feed(self, changes: Iterable[Listing], on_batch: Callable[[], None] | None = None) -> None:
        """Stage the export's accounts and links, in batches."""
        accounts: list[Row] = []
        links: list[Row] = []
        mentioned: dict[str, datetime] = {}  # links whose account was not listed just before
        listed = ""
        # Millions of short-lived dicts and tuples and no reference cycles: the cyclic
        # collector would only rescan the batch again and again (a fifth of the parse time).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for change in changes:
                if type(change) is ExportedAccount:
                    accounts.append(self._exported_row(change))
                    listed = change.user_id
                elif type(change) is PhoneLinked:
                    links.append(self._link_row(change))
                    if change.user_id != listed:
                        _keep_latest(mentioned, change.user_id, change.observed_at)
                elif type(change) is AccountSeen:
                    accounts.append(self._seen_row(change))
                    listed = change.user_id
                else:
                    raise TypeError(f"a full replace takes accounts and links, not {type(change)}")
                if len(accounts) >= self.batch_size:
                    self._flush(accounts, links)
                    accounts, links = [], []
                    if on_batch is not None:
                        on_batch()
            self._flush(accounts, links)
            if self.pg:  # PostgreSQL: only accounts not listed at all (see _keys)
                mentioned = {u: at for u, at in mentioned.items() if hash(u) not in self._keys}
            self._flush([self._mention_row(u, at) for u, at in mentioned.items()], [])
            if not self.pg:
                for sql in _STAGE_KEYS:
                    self.conn.exec_driver_sql(sql)
            if on_batch is not None:
                on_batch()  # the last batch too, before the merge (a heartbeat, progress)
        finally:
            if collecting:
                gc.enable()

    def _mention_row(self, user_id: str, observed_at: datetime) -> Row:
        """An account a link names without a listing: kept (or created) and marked seen."""
        self.accounts -= 1  # not an account of the export
        null = self._null
        return (user_id, None, None, None, 0, None, None, None, null, null, "",
                self._observed(observed_at), 0)  # fmt: skip

    def _observed(self, value: datetime) -> Any:
        try:
            return self._memo[value]
        except KeyError:  # a new observation time (an export has one)
            self._oldest = min(self._oldest or value, value)
            converted = self._memo[value] = self._text(value)
            return converted

    def _exported_row(self, c: ExportedAccount) -> Row:
        mf, modified, null = c.multifactor, c.multifactor_last_modified, self._null
        return (
            c.user_id, c.email, c.name, c.connection, 1 if c.blocked else 0, c.created_at,
            c.last_login, c.logins_count, ",".join(mf) if mf else null,
            null if modified is None else modified,
            mfa_key(mf, _parsed(modified)) if mf else "", self._observed(c.observed_at), 1,
        )  # fmt: skip

    def _seen_row(self, c: AccountSeen) -> Row:
        mf, modified, null = c.multifactor, c.multifactor_last_modified, self._null
        ts = self._text
        return (
            c.user_id, c.email, c.name, c.connection, 1 if c.blocked else 0, ts(c.created_at),
            ts(c.last_login), c.logins_count, ",".join(mf) if mf else null,
            null if modified is None else ts(modified), mfa_key(mf, modified),
            self._observed(c.observed_at), 1,
        )  # fmt: skip

    def _link_row(self, c: PhoneLinked) -> Row:
        self.links[c.kind] = self.links.get(c.kind, 0) + 1
        method, confirmed, identity, null = c.method, c.confirmed, c.identity, self._null
        return (
            c.phone, c.user_id, c.kind, null if method is None else method,
            None if confirmed is None else 1 if confirmed else 0, c.source,
            self._observed(c.observed_at), null if identity is None else identity,
        )  # fmt: skip

    def _flush(self, accounts: list[Row], links: list[Row]) -> None:
        self.accounts += len(accounts)
        if self.pg:
            self._note_keys(accounts, links)
            self._copy("stage_account_raw", _STAGE_ACCOUNT, accounts)
            self._copy("stage_link_raw", _STAGE_LINK, links)
            return
        run = self.conn.exec_driver_sql
        if accounts:
            marks = ", ".join("?" * len(_STAGE_ACCOUNT))
            run(
                f"INSERT INTO stage_account_rows ({', '.join(_STAGE_ACCOUNT)}) VALUES ({marks})",
                accounts,
            )
        if links:
            marks = ", ".join("?" * len(_STAGE_LINK))
            run(f"INSERT INTO stage_link_rows ({', '.join(_STAGE_LINK)}) VALUES ({marks})", links)

    def _note_keys(self, accounts: list[Row], links: list[Row]) -> None:
        keys, link_keys = self._keys, self._link_keys
        before = len(keys) + len(link_keys)
        keys.update(hash(row[0]) for row in accounts)
        link_keys.update(hash((row[0], row[1], row[2])) for row in links)
        if len(keys) + len(link_keys) - before < len(accounts) + len(links):
            self._repeated = True

    def _copy(self, table: str, columns: Sequence[str], rows: list[Row]) -> None:
        if not rows:
            return
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    # ------------------------------------------------------------- merging

    def swap(self, snapshot_at: datetime, now: datetime) -> LoadCounts:
        """Merge the staged export with the index into fresh tables and put them in place."""
        run = self.conn.exec_driver_sql
        ts = self._text
        params = {"snap": ts(snapshot_at), "now": ts(now), "epoch": ts(EPOCH)}
        if self.pg:
            run(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")
            self._dedup_pg()
            run("LOCK TABLE account, phone_link IN EXCLUSIVE MODE")  # writers wait, readers not
        self._create_fresh(account_table)
        if self.pg:
            old = self._count("account"), self._count("phone_link")
            kept = self._execute(_accounts_kept_sql(), params)
            self._execute(_accounts_new_sql(), params)
            self._add_key(account_table)  # built in one sort, not row by row
            self._create_fresh(link_table)
            kept_links = self._execute(_links_kept_sql(), params)
            self._execute(_links_new_sql(self._unsure(snapshot_at)), params)
            self._add_key(link_table)
            removed = old[0] - kept, old[1] - kept_links
        else:
            self._execute(_accounts_listed_sql(), params)
            self._execute(_accounts_unlisted_sql(), params)
            self._create_fresh(link_table)
            self._execute(_links_listed_sql(self._unsure(snapshot_at)), params)
            self._execute(_links_unlisted_sql(), params)
            removed = (
                self._missing("account", "user_id"),
                self._missing("phone_link", "phone", "user_id", "kind"),
            )
        self._put_in_place((account_table, link_table))
        return LoadCounts(self.accounts, self.links, *removed)

    def _missing(self, table: str, *key: str) -> int:
        """Rows of the index's `table` that its fresh copy does not have."""
        same = " AND ".join(f"n.{k} = o.{k}" for k in key)
        return self._count(f"{table} o WHERE NOT EXISTS (SELECT 1 FROM {table}_new n WHERE {same})")

    def _unsure(self, snapshot_at: datetime) -> bool:
        """Whether a listed number's account may be gone: only if staged before the snapshot.

        Every staged number has its account staged (listed or mentioned) at least as recently,
        and an account staged as of the snapshot or later always stays (seen_at >= observed_at).
        """
        return self._oldest is not None and self._oldest < snapshot_at

    def _count(self, table: str) -> int:
        return int(self.conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())

    def _execute(self, sql: str, params: dict[str, Any]) -> int:
        return int(self.conn.execute(text(sql), params).rowcount or 0)

    def _dedup_pg(self) -> None:
        """PostgreSQL: the last listing of each account and link (COPY cannot upsert)."""
        run = self.conn.exec_driver_sql
        self._keys.clear()
        self._link_keys.clear()
        if not self._repeated:  # every key listed once: the staged rows are it
            run("ALTER TABLE stage_account_raw RENAME TO stage_account")
            run("ALTER TABLE stage_link_raw RENAME TO stage_link")
            run("ANALYZE stage_account, stage_link")
            return
        run(
            "CREATE TEMP TABLE stage_account ON COMMIT DROP AS SELECT DISTINCT ON (user_id) "
            f"{', '.join(_STAGE_ACCOUNT)} FROM stage_account_raw"
            " ORDER BY user_id, whole DESC, seq DESC"
        )
        run("ALTER TABLE stage_account ADD PRIMARY KEY (user_id)")
        run(
            "CREATE TEMP TABLE stage_link ON COMMIT DROP AS SELECT DISTINCT ON "
            f"(phone, user_id, kind) {', '.join(_STAGE_LINK)} FROM stage_link_raw "
            "ORDER BY phone, user_id, kind, seq DESC"
        )
        run("ALTER TABLE stage_link ADD PRIMARY KEY (phone, user_id, kind)")
        run("ANALYZE stage_account, stage_link")

    def _create_fresh(self, table: Table) -> None:
        """`<table>_new`: the same columns (PostgreSQL: no primary key or index yet)."""
        keyed = not self.pg  # SQLite cannot add a primary key later; it is filled in order
        fresh = Table(
            f"{table.name}_new",
            MetaData(),
            *(
                Column(
                    c.name,
                    c.type,
                    primary_key=keyed and c.primary_key,
                    nullable=c.nullable,
                    # The model's server defaults (account.read_failures): inserts that do not
                    # name the column must keep working on the swapped-in table.
                    server_default=_server_default(c),
                )  # fmt: skip
                for c in table.columns
            ),
            **table.dialect_kwargs,
        )
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {fresh.name}")
        self.conn.execute(CreateTable(fresh))
        if self.pg:
            return
        # SQLite: the model's indexes under their own names, before the fresh table is filled
        # (their entries mostly come in key order: NULLs, then the primary key); the old
        # table gives its up (readers keep seeing them until the commit).
        for index in table.indexes:
            self.conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
            columns = (fresh.c[c.name] for c in index.columns)
            self.conn.execute(CreateIndex(Index(index.name, *columns, unique=index.unique)))

    def _add_key(self, table: Table) -> None:
        key = ", ".join(c.name for c in table.primary_key.columns)
        self.conn.exec_driver_sql(f"ALTER TABLE {table.name}_new ADD PRIMARY KEY ({key})")

    def _put_in_place(self, tables: Sequence[Table]) -> None:
        """Drop the old tables, rename the fresh ones (PostgreSQL: give them their indexes)."""
        run = self.conn.exec_driver_sql
        if not self.pg:  # readers keep their snapshot whatever this transaction holds
            for table in tables:
                run(f"DROP TABLE {table.name}")
                run(f"ALTER TABLE {table.name}_new RENAME TO {table.name}")
            return
        # PostgreSQL: dropping a table locks lookups out until the commit, so everything slow
        # (indexes, statistics) is done on the fresh tables first, then the swap is renames.
        for table in tables:
            name = table.name
            for index in table.indexes:
                sql = str(CreateIndex(index).compile(dialect=self.conn.dialect))
                run(sql.replace(f" ON {name} ", f" ON {name}_new ", 1).replace(
                    f"INDEX {index.name} ", f"INDEX {index.name}_new ", 1))  # fmt: skip
            run(f"ANALYZE {name}_new")
        for table in tables:
            name = table.name
            run(f"DROP TABLE {name}")
            run(f"ALTER TABLE {name}_new RENAME TO {name}")
            run(f"ALTER TABLE {name} RENAME CONSTRAINT {name}_new_pkey TO {name}_pkey")
            for index in table.indexes:
                run(f"ALTER INDEX {index.name}_new RENAME TO {index.name}")


def _columns(names: Sequence[str], pg: bool) -> str:
    """Staging column definitions (SQLite: a stand-in's column has no type, so no conversion)."""
    ts = "TIMESTAMPTZ" if pg else "TEXT"
    return ", ".join(
        c
        if not pg and c in _STOOD_IN
        else f"{c} {ts if c in _TIMESTAMPS else _TYPES.get(c, 'TEXT')}"
        for c in names
    )


def _keep_latest(into: dict[str, datetime], key: str, at: datetime) -> None:
    if at > into.get(key, EPOCH):
        into[key] = at


def _parsed(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# The merge statements. Column lists follow the model, so a column added later is copied as is.
# An account both in the index and listed takes the listing's profile when the listing is newer
# (and newer than a deletion); one only mentioned by a link is kept and marked seen; one only in
# the index stays when some source saw it after the snapshot (else it and its links go).
_U = (
    "(s.whole = 1 AND s.observed_at >= o.observed_at"
    " AND (o.deleted_at IS NULL OR s.observed_at > o.deleted_at))"
)
_SEEN = f"(s.observed_at > o.seen_at AND (s.whole = 0 OR {_U}))"


def _insert(table: Table, exprs: dict[str, str], tail: str, *, replace: bool = False) -> str:
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    return (
        f"{verb} INTO {table.name}_new ({', '.join(exprs)}) SELECT {', '.join(exprs.values())} "
        + tail
    )


def _server_default(column: Column[Any]) -> Any:
    """The column's server default as a fresh clause, or None."""
    default = column.server_default
    arg = getattr(default, "arg", None)
    return None if arg is None else DefaultClause(arg)


def _either(absent: str, new: dict[str, str], merged: dict[str, str]) -> dict[str, str]:
    """Per column: the new row's value when the index has none (`absent`), else the merge."""
    return {
        c: merged[c]
        if new[c] == merged[c]
        else f"CASE WHEN {absent} THEN {new[c]} ELSE {merged[c]} END"
        for c in merged
    }


def _account_merged() -> dict[str, str]:
    exprs = {c.name: f"o.{c.name}" for c in account_table.columns}
    exprs |= {c: f"CASE WHEN {_U} THEN s.{c} ELSE o.{c} END" for c in _PROFILE}
    return exprs | {
        "observed_at": f"CASE WHEN {_U} THEN s.observed_at ELSE o.observed_at END",
        "seen_at": f"CASE WHEN {_SEEN} THEN s.observed_at ELSE o.seen_at END",
        "deleted_at": f"CASE WHEN {_U} THEN NULL ELSE o.deleted_at END",
        "updated_at": f"CASE WHEN {_U} THEN :now ELSE o.updated_at END",
    }


def _account_new() -> dict[str, str]:
    exprs = {c.name: "NULL" for c in account_table.columns}
    exprs |= {c: f"s.{c}" for c in ("user_id", *_PROFILE)}
    return exprs | {
        "observed_at": "CASE WHEN s.whole = 1 THEN s.observed_at ELSE :epoch END",
        "seen_at": "s.observed_at",
        "mfa_masked": "0",
        "read_failures": "0",
        "updated_at": ":now",
    }


# SQLite: the staged rows are read in key order through an index holding all their columns
# (built in one sort, then read front to back; a key-only index would fetch every row from a
# random page of the staged table). The index is then probed, and the fresh table written, in key
# order, and of two listings of one key the later one replaces the earlier: the one observed
# last, the last one listed among equals (`seq`, the row's rowid; a mention, whole = 0, never
# replaces a listing).
_ACCOUNT_ORDER = ("user_id", "whole", "observed_at", "seq")
_LINK_ORDER = ("phone", "user_id", "kind", "observed_at", "seq")


def _covering(name: str, order: tuple[str, ...], columns: Sequence[str]) -> str:
    everything = order + tuple(c for c in columns if c not in order)
    return f"CREATE INDEX {STAGE_DB}.{name}_key ON {name}_rows ({', '.join(everything)})"


_STAGE_KEYS = (
    _covering("stage_account", _ACCOUNT_ORDER, _STAGE_ACCOUNT),
    _covering("stage_link", _LINK_ORDER, _STAGE_LINK),
)
_FINAL_SEEN = f"CASE WHEN {_SEEN} THEN s.observed_at ELSE o.seen_at END >= :snap"


def _accounts_kept_sql() -> str:
    """PostgreSQL: accounts of the index that stay, merged with their listing if any."""
    return _insert(
        account_table,
        _account_merged(),
        f"FROM account o LEFT JOIN stage_account s ON s.user_id = o.user_id WHERE {_FINAL_SEEN}",
    )


def _accounts_new_sql() -> str:
    """PostgreSQL: listed accounts the index does not have."""
    return _insert(
        account_table,
        _account_new(),
        "FROM stage_account s WHERE s.observed_at >= :snap AND NOT EXISTS"
        " (SELECT 1 FROM account o WHERE o.user_id = s.user_id)",
    )


def _accounts_listed_sql() -> str:
    """SQLite: every listed account, merged with the index's (the last listing wins)."""
    return _insert(
        account_table,
        _either("o.user_id IS NULL", _account_new(), _account_merged()),
        "FROM stage_account s LEFT JOIN account o ON o.user_id = s.user_id"
        f" WHERE (o.user_id IS NULL AND s.observed_at >= :snap) OR {_FINAL_SEEN}"
        " ORDER BY s.user_id, s.whole, s.observed_at, s.rowid",
        replace=True,
    )


def _accounts_unlisted_sql() -> str:
    """SQLite: accounts of the index not listed that some source saw after the snapshot."""
    exprs = {c.name: f"o.{c.name}" for c in account_table.columns}
    return _insert(
        account_table,
        exprs,
        "FROM account o WHERE o.seen_at >= :snap AND NOT EXISTS"
        " (SELECT 1 FROM account_new n WHERE n.user_id = o.user_id)",
    )


# A link both in the index and listed: the listing wins when newer (n); `confirmed` has its own
# last writer, the latest source that knew it (k). Passwordless/profile numbers neither listed
# nor observed since the snapshot go; MFA numbers stay with their account.
_N = "s.observed_at >= o.observed_at"
_K = "(s.confirmed IS NOT NULL AND (o.confirmed_at IS NULL OR s.observed_at >= o.confirmed_at))"
_SAME_LINK = "s.phone = o.phone AND s.user_id = o.user_id AND s.kind = o.kind"
_SWEPT = "('passwordless', 'profile')"
_HAS_ACCOUNT = "EXISTS (SELECT 1 FROM account_new a WHERE a.user_id = {t}.user_id)"
# SQLite: an account listed as of the snapshot or later stays (seen_at >= observed_at always);
# asking the small staging index first spares a random read of the fresh table per number.
_LISTED_SURVIVES = (
    "(EXISTS (SELECT 1 FROM stage_account a WHERE a.user_id = s.user_id"
    f" AND a.observed_at >= :snap) OR {_HAS_ACCOUNT.format(t='s')})"
)
_LISTED_STAYS = f"(s.kind NOT IN {_SWEPT} OR s.observed_at >= :snap)"
_MERGED_STAYS = (
    f"(o.kind NOT IN {_SWEPT} OR CASE WHEN {_N} THEN s.observed_at ELSE o.observed_at END >= :snap)"
)


def _link_merged() -> dict[str, str]:
    exprs = {c.name: f"o.{c.name}" for c in link_table.columns}
    return exprs | {
        "method": f"CASE WHEN {_N} THEN s.method ELSE o.method END",
        "confirmed": f"CASE WHEN {_K} THEN s.confirmed ELSE o.confirmed END",
        "confirmed_at": f"CASE WHEN {_K} THEN s.observed_at ELSE o.confirmed_at END",
        "source": f"CASE WHEN {_N} THEN s.source ELSE o.source END",
        "active": f"CASE WHEN {_N} THEN TRUE ELSE o.active END",
        "observed_at": f"CASE WHEN {_N} THEN s.observed_at ELSE o.observed_at END",
        "updated_at": f"CASE WHEN {_N} OR {_K} THEN :now ELSE o.updated_at END",
        # Which identity carries the number is part of the link as last observed; the MFA
        # authenticator id (not in exports) stays as it was.
        "identity": f"CASE WHEN {_N} THEN s.identity ELSE o.identity END",
    }


def _link_new() -> dict[str, str]:
    exprs = {c.name: "NULL" for c in link_table.columns}
    listed = ("phone", "user_id", "kind", "method", "confirmed", "source", "identity")
    exprs |= {c: f"s.{c}" for c in listed}
    return exprs | {
        "confirmed_at": "CASE WHEN s.confirmed IS NULL THEN NULL ELSE s.observed_at END",
        "active": "TRUE",
        "observed_at": "s.observed_at",
        "updated_at": ":now",
    }


def _links_kept_sql() -> str:
    """PostgreSQL: links of the index that stay, merged with their listing if any."""
    return _insert(
        link_table,
        _link_merged(),
        f"FROM phone_link o LEFT JOIN stage_link s ON {_SAME_LINK}"
        f" WHERE {_HAS_ACCOUNT.format(t='o')} AND {_MERGED_STAYS}",
    )


def _links_new_sql(check_account: bool) -> str:
    """PostgreSQL: listed links the index does not have."""
    return _insert(
        link_table,
        _link_new(),
        f"FROM stage_link s WHERE {_LISTED_STAYS}"
        + (f" AND {_HAS_ACCOUNT.format(t='s')}" if check_account else "")
        + f" AND NOT EXISTS (SELECT 1 FROM phone_link o WHERE {_SAME_LINK})",
    )


def _links_listed_sql(check_account: bool) -> str:
    """SQLite: every listed link, merged with the index's (the last listing wins)."""
    return _insert(
        link_table,
        _either("o.phone IS NULL", _link_new(), _link_merged()),
        f"FROM stage_link s LEFT JOIN phone_link o ON {_SAME_LINK}"
        f" WHERE (CASE WHEN o.phone IS NULL THEN {_LISTED_STAYS} ELSE {_MERGED_STAYS} END)"
        + (f" AND {_LISTED_SURVIVES}" if check_account else "")
        + " ORDER BY s.phone, s.user_id, s.kind, s.observed_at, s.rowid",
        replace=True,
    )


def _links_unlisted_sql() -> str:
    """SQLite: links of the index not listed that stay (MFA, or observed after the snapshot)."""
    exprs = {c.name: f"o.{c.name}" for c in link_table.columns}
    return _insert(
        link_table,
        exprs,
        f"FROM phone_link o WHERE (o.kind NOT IN {_SWEPT} OR o.observed_at >= :snap)"
        f" AND {_HAS_ACCOUNT.format(t='o')} AND NOT EXISTS"
        " (SELECT 1 FROM phone_link_new n WHERE n.phone = o.phone AND n.user_id = o.user_id"
        " AND n.kind = o.kind)",
    )
