"""Upgrading a database made by an older release keeps its index."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import text

from phoneindex.changes import RefetchRequested
from phoneindex.db import SCHEMA_REVISION, _alembic_config, make_engine, open_database
from phoneindex.store import Store
from tests.conftest import T0

T1 = T0 + timedelta(hours=1)


def test_a_0001_database_upgrades_to_0003_and_keeps_its_links(db_url: str) -> None:
    old = make_engine(db_url)
    cfg = _alembic_config(old)
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with old.begin() as conn:
        conn.execute(text(
            "INSERT INTO account (user_id, blocked, observed_at, seen_at, mfa_key, mfa_masked,"
            " updated_at) VALUES ('auth0|1', false, :t, :t, '', 0, :t)"
        ), {"t": "2026-11-27T09:00:00.000000+00:00"})  # fmt: skip
        conn.execute(text(
            "INSERT INTO phone_link (phone, user_id, kind, source, active, observed_at, updated_at)"
            " VALUES ('+14155550100', 'auth0|1', 'profile', 'export', true, :t, :t)"
        ), {"t": "2026-11-27T09:00:00.000000+00:00"})  # fmt: skip
    old.dispose()

    engine = open_database(db_url)  # upgrades to the newest revision
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            SCHEMA_REVISION
        )
    store = Store(engine)
    [account] = store.lookup("+14155550100")["accounts"]
    assert account["user_id"] == "auth0|1"
    assert account["phones"][0]["identity"] is None
    # 0003: no failed reads and no re-read queued for the existing account; the queue works.
    assert store.summary()["failing_reads"] == 0 and store.refetch_queue() == []
    assert store.enrich_candidates(due_at=T1) == []
    store.apply([RefetchRequested("auth0|1", T1)])
    [target] = store.refetch_queue(due_at=T1)
    assert (target.user_id, target.read_failures) == ("auth0|1", 0)
    engine.dispose()


def test_a_0003_database_upgrades_and_remembers_action_events(db_url: str) -> None:
    from phoneindex.seen_events import SeenEvent, counts, remember

    old = make_engine(db_url)
    cfg = _alembic_config(old)
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    old.dispose()
    engine = open_database(db_url)
    with engine.begin() as conn:
        assert remember(conn, SeenEvent("k" * 32, "user.login", T0)) is True
    with engine.begin() as conn:
        assert remember(conn, SeenEvent("k" * 32, "user.login", T1)) is False
    assert counts(engine, T0) == {"user.login": 1}
    engine.dispose()
