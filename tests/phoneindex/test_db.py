"""Engines and schema management."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError

from phoneindex import db
from phoneindex.db import (
    MIGRATIONS,
    SCHEMA_REVISION,
    _alembic_config,
    make_engine,
    open_database,
    retry_disconnect,
)
from phoneindex.errors import DatabaseError
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.test_cli import run
from tests.conftest import PG_ADMIN_URL


def test_the_fast_path_revision_is_the_newest_migration() -> None:
    engine = make_engine("sqlite://")
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    assert head == SCHEMA_REVISION
    assert MIGRATIONS.is_dir()


def test_a_fresh_database_gets_its_schema_and_stamp(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            == SCHEMA_REVISION
        )
        assert conn.execute(text("SELECT count(*) FROM account")).scalar() == 0
    engine.dispose()
    open_database(db_url).dispose()  # opening again is a no-op


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_paas_urls_are_accepted() -> None:
    settings = load_settings(database_url="postgres://u:p@db.example.com:5432/whois")
    assert settings.database_url == "postgresql+psycopg://u:p@db.example.com:5432/whois"
    assert make_engine("postgres://u@h/d").dialect.driver == "psycopg"


def test_an_unreachable_database_is_a_one_line_error() -> None:
    with pytest.raises(DatabaseError) as caught:
        open_database("postgresql://nobody:hunter2@127.0.0.1:1/none")
    assert "hunter2" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_import_leaves_no_large_write_ahead_log(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from phoneindex.changes import AccountSeen, PhoneLinked
    from phoneindex.store import Store

    db = tmp_path / "x.db"
    store = Store(open_database(f"sqlite:///{db}"))
    at = datetime(2026, 11, 27, tzinfo=UTC)
    changes = [
        change
        for i in range(5000)
        for change in (
            AccountSeen(f"auth0|{i}", at, email=f"user{i}@example.com"),
            PhoneLinked(f"auth0|{i}", f"+1415555{i:04d}", "profile", "export", at),
        )
    ]
    store.replace_export(changes, at)
    assert db.stat().st_size > 500_000
    assert Path(f"{db}-wal").stat().st_size == 0
    store.engine.dispose()


def test_database_errors_never_carry_statement_parameters(tmp_path: Path) -> None:
    from sqlalchemy.exc import IntegrityError

    engine = open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (phone TEXT PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (:p)"), {"p": "+14155550100"})
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:p)"), {"p": "+14155550100"})
    assert "4155550100" not in str(caught.value)
    engine.dispose()


@pytest.fixture
def percent_password_url(pg_url: str) -> Iterator[str]:
    """A PostgreSQL role and database whose password needs percent-encoding in a URL."""
    suffix = uuid.uuid4().hex[:8]
    role, name = f"whois_pct_{suffix}", f"mfa_whois_pct_{suffix}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'p@ss%w0rd'"))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER {role}'))
    host = PG_ADMIN_URL.split("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql://{role}:p%40ss%25w0rd@{host}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def test_a_percent_encoded_password_migrates_and_never_reaches_a_log(
    percent_password_url: str, tmp_path: Path
) -> None:
    for command in (["-v", "migrate"], ["-v", "migrate"], ["-v", "status", "--json"]):
        done = run(command, tmp_path, DATABASE_URL=percent_password_url)
        assert done.returncode == 0, done.stderr
        assert "p%40ss" not in done.stderr and "p@ss" not in done.stderr
        assert "w0rd" not in done.stderr
        assert ":***@" in done.stderr  # -v logs the database URL, password hidden
    assert json.loads(done.stdout)["accounts"] == 0


# --------------------------------------------------------------- dropped PostgreSQL connections


def _terminate_others(engine_url: str) -> int:
    """Kill every other session on the test database, as a server restart or a firewall would."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = engine_url.rsplit("/", 1)[1]
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        ).scalar_one()
    admin.dispose()
    return int(killed)


def _store_with_pooled_connections(url: str) -> Store:
    store = Store(open_database(url))
    with store.engine.connect() as a, store.engine.connect() as b:  # two pooled connections
        a.exec_driver_sql("SELECT 1")
        b.exec_driver_sql("SELECT 1")
    return store


def test_a_lookup_survives_the_server_dropping_recent_connections(pg_url: str) -> None:
    store = _store_with_pooled_connections(pg_url)
    assert store.lookup("+14155550100")["accounts"] == []  # used a moment ago: no ping
    assert _terminate_others(pg_url) >= 1
    # The pooled connection is dead; the lookup notices, retires the pool and reads again.
    assert store.lookup("+14155550100")["accounts"] == []
    assert store.lookup("+14155550100")["accounts"] == []
    _terminate_others(pg_url)
    assert db.ping(store.engine)  # /healthz: a dropped connection is not an outage
    store.engine.dispose()


def test_other_work_gets_a_checked_connection_after_the_server_dropped_them(
    pg_url: str,
) -> None:
    store = _store_with_pooled_connections(pg_url)
    assert _terminate_others(pg_url) >= 1
    # Writes are never run twice: only the check at checkout can make these work.
    store.set_checkpoint("probe", "value")
    assert store.get_checkpoint("probe") == "value"
    store.engine.dispose()


def test_reads_are_retried_once_and_only_on_a_dropped_connection() -> None:
    calls: list[int] = []

    def dropped() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise DBAPIError("SELECT", None, Exception("gone"), connection_invalidated=True)
        return "read"

    assert retry_disconnect(dropped) == "read"
    assert len(calls) == 2

    def broken() -> str:
        calls.append(1)
        raise DBAPIError("SELECT", None, Exception("syntax"))

    calls.clear()
    with pytest.raises(DBAPIError):
        retry_disconnect(broken)
    assert len(calls) == 1


# --------------------------------------------------------------- lookups on a driver connection


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:1/mfa_whois",  # nothing listens there
        "sqlite:////nonexistent-mfa-whois-dir/index.db",  # a file that cannot be opened
    ],
    ids=["postgresql", "sqlite"],
)
def test_a_lookup_with_the_database_away_fails_after_one_connection_attempt(url: str) -> None:
    store = Store(make_engine(url))
    attempts: list[int] = []
    event.listen(store.engine, "do_connect", lambda *_args: attempts.append(1))
    with pytest.raises(DBAPIError) as failed:  # what the API answers 503 for
        store.lookup("+14155550100")
    # Each attempt can wait out the whole connect timeout: a second one doubled the wait for
    # every lookup while the server was away.
    assert len(attempts) == 1
    assert "14155550100" not in str(failed.value)
    store.engine.dispose()


class _Refusing(dict[str, Any]):
    """Lookup parameters that fail inside the driver with an error not its own."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("not a driver error")


def test_a_lookup_failing_outside_the_driver_leaves_no_autocommit_connection(
    pg_url: str,
) -> None:
    store = _store_with_pooled_connections(pg_url)
    store._lookup_params = lambda phone: _Refusing(phone=phone)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        store.lookup("+14155550100")
    # Every connection the pool hands out again runs its statements in one transaction.
    with store.engine.connect() as a, store.engine.connect() as b:
        for conn in (a, b):
            assert conn.connection.driver_connection.autocommit is False  # type: ignore[union-attr]
    store.engine.dispose()
