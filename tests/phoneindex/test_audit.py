"""The lookup audit trail and the hourly lookup limit, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from phoneindex.audit import Audit
from phoneindex.db import make_engine
from phoneindex.models import secret_table
from tests.conftest import T0, Clock

PHONE = "+14155550100"
OTHER = "+442079460958"
R = TypeVar("R")


def run_together(n: int, work: Callable[[int], R]) -> list[R]:
    """Run `work(i)` in n threads released at the same moment; their results in order."""
    barrier = threading.Barrier(n)
    results: list[R | None] = [None] * n
    errors: list[BaseException] = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def every_stored_value(engine: Engine) -> list[str]:
    """Every value in every table of the database, as text."""
    with engine.connect() as conn:
        return [
            str(value)
            for table in SQLModel.metadata.sorted_tables
            for row in conn.execute(select(table)).all()
            for value in row
        ]


# ---------------------------------------------------------------------- hashing


def test_the_hash_is_stable_and_depends_on_the_key(engine: Engine) -> None:
    audit = Audit(engine, secret_key="k1")
    first = audit.phone_hash(PHONE)

    assert Audit(engine, secret_key="k1").phone_hash(PHONE) == first
    assert Audit(engine, secret_key="k2").phone_hash(PHONE) != first
    assert audit.phone_hash(OTHER) != first
    assert len(first) == 32 and int(first, 16) >= 0


def test_an_explicit_key_is_honoured_and_nothing_is_generated(engine: Engine) -> None:
    audit = Audit(engine, secret_key="operator-key")
    audit.record(actor="U1", via="slack", phone=PHONE, accounts=1)

    # Whoever holds MFA_WHOIS_SECRET_KEY can check whether a given number was looked up.
    expected = hmac.new(b"operator-key", PHONE.encode(), hashlib.sha256).hexdigest()[:32]
    assert audit.entries()[0]["phone_hash"] == expected
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(secret_table)).scalar_one() == 0


def test_a_generated_key_is_kept_so_other_processes_hash_alike(engine: Engine, db_url: str) -> None:
    first = Audit(engine).phone_hash(PHONE)

    other_process = make_engine(db_url)
    try:
        assert Audit(other_process).phone_hash(PHONE) == first
    finally:
        other_process.dispose()
    assert Audit(engine, secret_key="set-later").phone_hash(PHONE) != first


def test_audits_racing_to_create_the_key_end_with_one_key(engine: Engine, db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(6)]
    try:
        hashes = run_together(len(engines), lambda i: Audit(engines[i]).phone_hash(PHONE))
    finally:
        for eng in engines:
            eng.dispose()

    assert len(set(hashes)) == 1
    assert Audit(engine).phone_hash(PHONE) == hashes[0]
    with engine.connect() as conn:
        names = conn.execute(select(secret_table.c.name)).scalars().all()
    assert names == ["audit.hash_key"]


def test_no_stored_value_contains_the_number(engine: Engine) -> None:
    audit = Audit(engine)
    audit.record(actor="U1", via="slack", phone=PHONE, accounts=2)
    audit.record(actor="api:pbx", via="api", phone=PHONE, accounts=0)
    audit.record(actor="U1", via="slack-live", phone=OTHER, accounts=1)
    audit.record(actor="U1", via="slack-refused", phone=PHONE, accounts=0)

    values = every_stored_value(engine)
    assert len(audit.entries()) == 4
    for digits in ("4155550100", "5550100", "2079460958", "7946095"):
        assert not [v for v in values if digits in v]


def test_text_that_is_not_e164_is_refused_without_echoing_it(engine: Engine) -> None:
    audit = Audit(engine, secret_key="k")
    with pytest.raises(ValueError) as err:
        audit.record(actor="U1", via="slack", phone="(415) 555-0100", accounts=0)
    assert "555" not in str(err.value)
    assert audit.entries() == []


# ---------------------------------------------------------------------- reading


def test_entries_are_newest_first_and_filtered_by_since(engine: Engine, clock: Clock) -> None:
    audit = Audit(engine, clock=clock)
    audit.record(actor="U1", via="slack", phone=PHONE, accounts=2)
    clock.advance(minutes=5)
    audit.record(actor="api:pbx", via="api", phone=OTHER, accounts=0)
    clock.advance(minutes=5)
    audit.record(actor="U1", via="slack-live-refused", phone=PHONE, accounts=0)

    entries = audit.entries()
    assert entries == [
        {
            "at": "2026-11-27T09:10:00Z",
            "actor": "U1",
            "via": "slack-live-refused",
            "phone_hash": audit.phone_hash(PHONE),
            "accounts": 0,
        },
        {
            "at": "2026-11-27T09:05:00Z",
            "actor": "api:pbx",
            "via": "api",
            "phone_hash": audit.phone_hash(OTHER),
            "accounts": 0,
        },
        {
            "at": "2026-11-27T09:00:00Z",
            "actor": "U1",
            "via": "slack",
            "phone_hash": audit.phone_hash(PHONE),
            "accounts": 2,
        },
    ]
    assert audit.entries(since=T0 + timedelta(minutes=5)) == entries[:2]
    assert audit.entries(limit=1) == entries[:1]
    with pytest.raises(ValueError):
        audit.entries(since=T0.replace(tzinfo=None))


def test_refused_actors_names_each_actors_latest_refusal(engine: Engine, clock: Clock) -> None:
    audit = Audit(engine, secret_key="k", clock=clock)
    audit.record(actor="U1", via="slack-refused", phone=PHONE, accounts=0)
    audit.record(actor="U1", via="slack", phone=PHONE, accounts=1)
    clock.advance(minutes=10)
    audit.record(actor="pbx", via="api-refused", phone=PHONE, accounts=0)
    audit.record(actor="U1", via="slack-live-refused", phone=PHONE, accounts=0)

    assert audit.refused_actors(T0 - timedelta(hours=1)) == {
        "U1": ("slack-live", T0 + timedelta(minutes=10)),
        "pbx": ("api", T0 + timedelta(minutes=10)),
    }
    assert audit.refused_actors(T0 + timedelta(minutes=10)) == {}
