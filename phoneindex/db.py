"""Engines and schema: SQLite with WAL (readers never wait for a writer) or PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from phoneindex import models  # noqa: F401  (registers the tables)
from phoneindex.errors import DatabaseError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration; a database already there skips Alembic entirely (fast start-up).
# tests/phoneindex/test_db.py checks it against the migrations folder.
SCHEMA_REVISION = "0002"
SQLITE_BUSY_MS = 30_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`, with SQLite tuned for one writer and many concurrent readers.

    Statement parameters (phone numbers, emails) never appear in SQLAlchemy's error messages
    or logs: a traceback of a failed write must not carry a number into a log line.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://") :]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000},
            **kwargs,
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache per connection
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that later tries to
        # write can fail at once with "database is locked" instead of waiting its turn.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def writer(conn: Connection) -> Connection:
    """Mark a connection as a writer (SQLite: BEGIN IMMEDIATE); call before its first statement."""
    return conn.execution_options(sqlite_begin="IMMEDIATE")


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

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def open_database(url: str, **kwargs: Any) -> Engine:
    """The engine for `url` with its schema ready; one-line DatabaseError if that fails."""
    engine = make_engine(url, **kwargs)
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
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except SQLAlchemyError:
        return False


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's own first line, without SQL, parameters or credentials."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return text[:200]
