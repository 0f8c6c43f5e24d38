"""Engines and schema: SQLite with WAL (readers never wait for a writer) or PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, SQLAlchemyError
from sqlmodel import SQLModel

from phoneindex import models  # noqa: F401  (registers the tables)
from phoneindex.errors import DatabaseError

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration; a database already there skips Alembic entirely (fast start-up).
# tests/phoneindex/test_db.py checks it against the migrations folder.
SCHEMA_REVISION = "0005"
SQLITE_BUSY_MS = 30_000
# PostgreSQL connections per process. One pool serves everything a process does: under
# `serve`, lookups (each a few milliseconds on one connection: 50 lookups/s keep one or two
# busy, bursts a few more), the audit writer, and the in-process scheduler (at most 5 jobs at
# once, one connection each at a time). 10 stay open; bursts open up to 10 more, closed again
# when returned. A request that cannot get one within POOL_TIMEOUT_S fails (503) instead of
# hanging past Slack's 3 seconds. Size PostgreSQL's max_connections for 20 per process.
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 10
PG_POOL_TIMEOUT_S = 5.0
# PostgreSQL connections are pinged when taken from the pool (a firewall, a restart or a
# failover may have dropped them), except by index lookups (`unpinged`): for them that ping was
# a second round trip on every lookup. A lookup whose connection turns out dropped discards it
# and reads again the usual way, on a pinged connection (Store.lookup); each dead connection
# left in the pool costs one such retry, once.


def make_engine(url: str, *, busy_timeout_ms: int = SQLITE_BUSY_MS, **kwargs: Any) -> Engine:
    """An engine for `url`, with SQLite tuned for one writer and many concurrent readers.

    Statement parameters (phone numbers, emails) never appear in SQLAlchemy's error messages
    or logs: a traceback of a failed write must not carry a number into a log line.
    `busy_timeout_ms` is how long a SQLite writer waits for another's write lock.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        if url not in ("sqlite://", "sqlite:///:memory:"):  # a file: a pool that does not churn
            # Threads serving requests, the audit writer and the scheduler's jobs outnumber
            # SQLAlchemy's default 5: connections past it were opened (with our PRAGMAs) and
            # closed again for every busy moment.
            kwargs.setdefault("pool_size", PG_POOL_SIZE)
            kwargs.setdefault("max_overflow", PG_MAX_OVERFLOW)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            **kwargs,
        )
        _tune_sqlite(engine, busy_timeout_ms)
    else:
        kwargs.setdefault("pool_size", PG_POOL_SIZE)
        kwargs.setdefault("max_overflow", PG_MAX_OVERFLOW)
        kwargs.setdefault("pool_timeout", PG_POOL_TIMEOUT_S)
        engine = create_engine(url, **kwargs)
        _ping_at_checkout(engine)
    log.info("database: %s", safe_url(engine))
    return engine


_checkouts = threading.local()


@contextmanager
def unpinged() -> Iterator[None]:
    """Connections taken from the pool in this block (this thread) are not pinged first: the
    caller reads again if one turns out dropped (`retry_disconnect`)."""
    _checkouts.unpinged = True
    try:
        yield
    finally:
        _checkouts.unpinged = False


def _ping_at_checkout(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, but skipped for new connections and `unpinged` readers."""

    @event.listens_for(engine, "connect")
    def _new(_dbapi_conn: Any, record: Any) -> None:
        record.info["new"] = True

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if record.info.pop("new", False) or getattr(_checkouts, "unpinged", False):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any driver error: the pool replaces the connection
            raise DisconnectionError("a pooled connection did not answer") from exc


def retry_disconnect(read: Callable[[], T]) -> T:
    """Run a read; once more if it failed because the server dropped its connection.

    Only for reads (running one twice changes nothing). The failed connection and every one
    pooled before it are retired by then, so the second try gets a fresh connection.
    """
    try:
        return read()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("the database dropped a pooled connection; reading again on a new one")
        return read()


def safe_url(engine: Engine) -> str:
    """The engine's URL for logs and messages: the password is never shown."""
    return engine.url.render_as_string(hide_password=True)


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that later tries to
        # write can fail at once with "database is locked" instead of waiting its turn.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
        if mode == "IMMEDIATE":
            _writers().setdefault(engine, conn)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Connection) -> None:
        writers = _writers()
        if writers.get(engine) is conn:
            del writers[engine]


_local = threading.local()


def _writers() -> dict[Engine, Connection]:
    """This thread's SQLite connections in a write transaction, per engine."""
    found: dict[Engine, Connection] | None = getattr(_local, "writers", None)
    if found is None:
        found = _local.writers = {}
    return found


def held_writer(engine: Engine) -> Connection | None:
    """SQLite: this thread's connection holding the write lock (e.g. an import), if any.

    A small write made by the same thread during that transaction (a lease heartbeat) must go
    through it: another connection would wait on this thread's own lock.
    """
    conn = _writers().get(engine)
    if conn is not None and (conn.closed or not conn.in_transaction()):
        del _writers()[engine]  # ended without a commit/rollback event (closed, invalidated)
        return None
    return conn


def writer(conn: Connection) -> Connection:
    """Mark a connection as a writer (SQLite: BEGIN IMMEDIATE); call before its first statement."""
    return conn.execution_options(sqlite_begin="IMMEDIATE")


@contextmanager
def write_within(conn: Connection, seconds: float) -> Iterator[Connection]:
    """A write transaction that waits at most `seconds` for another writer's lock.

    Longer, the first statement that needs the lock fails with an error is_busy() recognises
    (SQLite: BEGIN IMMEDIATE under a shorter busy timeout, restored afterwards; PostgreSQL:
    `lock_timeout` for this transaction only).
    """
    millis = max(int(seconds * 1000), 1)
    if conn.dialect.name != "sqlite":
        with conn.begin():
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {millis}")
            yield conn
        return
    raw: Any = conn.connection.dbapi_connection
    before = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
    raw.execute(f"PRAGMA busy_timeout={millis}")
    try:
        with writer(conn).begin():
            yield conn
    finally:
        raw.execute(f"PRAGMA busy_timeout={before}")


def db_now(conn: Connection) -> datetime:
    """The database server's clock (aware UTC): one clock for every process sharing it."""
    if conn.dialect.name == "postgresql":
        value = conn.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
        return value.astimezone(UTC)  # type: ignore[no-any-return]
    text = conn.exec_driver_sql("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").scalar_one()
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` says another writer holds the database (SQLite's lock, a PG lock timeout)."""
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    return getattr(orig, "sqlstate", None) == "55P03"  # lock_not_available


def init_schema(engine: Engine) -> None:
    """Create the schema on a fresh database, or bring an older one up to date (Alembic)."""
    try:
        if _revision(engine) == SCHEMA_REVISION:
            return
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open the database: {_reason(exc)}") from None
    from alembic import command

    cfg = _alembic_config(engine)
    if "account" not in tables:
        SQLModel.metadata.create_all(engine)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.stamp(cfg, "head")
        log.info("created a new database schema")
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database, None when there is none yet."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    # No URL in the config: migrations run on the connection handed over in
    # `cfg.attributes["connection"]`. (A URL there goes through ConfigParser interpolation,
    # where a percent-encoded password such as `p%40ss` is a syntax error.)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def open_database(url: str, *, busy_timeout_ms: int = SQLITE_BUSY_MS, **kwargs: Any) -> Engine:
    """The engine for `url` with its schema ready; one-line DatabaseError if that fails."""
    engine = make_engine(url, busy_timeout_ms=busy_timeout_ms, **kwargs)
    try:
        init_schema(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseError(f"cannot prepare the database: {_reason(exc)}") from None
    return engine


def upsert_insert(engine: Engine) -> Callable[..., Any]:
    """The dialect's `insert` with ON CONFLICT support (imported only for the dialect in use)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def truncate_wal(engine: Engine) -> None:
    """SQLite: fold the write-ahead log into the database and shrink it (after a big import).

    Best effort: with readers in the middle of a transaction the log is only partly folded.
    """
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error:  # busy readers only delay the shrink
        log.info("could not truncate the write-ahead log now")
    finally:
        raw.close()


def ping(engine: Engine) -> bool:
    """True when the database answers a trivial query."""

    def select_one() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    try:
        retry_disconnect(select_one)  # a connection the server dropped is not an outage
        return True
    except SQLAlchemyError:
        return False


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own first line, without SQL, parameters or credentials."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:200]
