"""The hourly limit decided from written and waiting rows; audit rows never lost, in order."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from phoneindex.audit import Allowance, Audit
from phoneindex.audit_spool import default_spool_dir
from phoneindex.audit_trail import GATHER_SECONDS, AuditTrail
from phoneindex.db import open_database
from tests.conftest import T0, Clock, write_locked
from tests.phoneindex.test_audit import every_stored_value

PHONE = "+14155550100"
OTHER = "+442079460958"


@pytest.fixture
def trail(engine: Engine, clock: Clock, tmp_path: Path) -> Iterator[AuditTrail]:
    made = AuditTrail(Audit(engine, secret_key="k", clock=clock), spool_dir=tmp_path / "spool")
    yield made
    made.close()


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "index.db"
    engine = open_database(f"sqlite:///{path}")
    yield engine, path
    engine.dispose()


def lookup(trail: AuditTrail, actor: str, limit: int, *, via: str = "slack") -> bool:
    """One lookup as a surface makes it: admit, then record with one account."""
    admission = trail.admit(actor, via, PHONE, limit)
    if admission.ticket is not None:
        trail.record(admission.ticket, 1)
    return admission.allowance.allowed


def test_the_121st_lookup_in_an_hour_is_refused_until_the_window_slides(
    trail: AuditTrail, clock: Clock
) -> None:
    for _ in range(120):
        assert lookup(trail, "U1", 120)
        clock.advance(seconds=10)  # the 120th is at T0 + 1190 s; now is T0 + 1200 s
    assert trail.flush(timeout=10)

    refused = trail.admit("U1", "slack", PHONE, 120)
    assert refused.allowance == Allowance(False, 120, 120, 3600 - 1200)
    assert refused.ticket is None and refused.first_refusal
    assert trail.admit("U2", "slack", PHONE, 120).allowance.allowed  # others are not affected

    # Retrying while refused is recorded but does not push the end of the lockout back.
    for _ in range(50):
        clock.advance(seconds=40)
        assert not lookup(trail, "U1", 120)
    clock.now = T0 + timedelta(hours=1)  # the first lookup leaves the window
    again = trail.admit("U1", "slack", PHONE, 120)
    assert again.allowance == Allowance(True, 119, 120, 0)
    trail.flush(timeout=10)
    vias = [e["via"] for e in trail.audit.entries() if e["actor"] == "U1"]
    assert vias.count("slack-refused") == 51 and vias.count("slack") == 120


def test_a_client_hammering_past_its_limit_is_refused_without_counting_again(
    trail: AuditTrail, clock: Clock, engine: Engine
) -> None:
    for _ in range(3):
        assert lookup(trail, "pbx", 3, via="api")
    first = trail.admit("pbx", "api", PHONE, 3)
    assert first.ticket is None and first.first_refusal
    assert first.allowance == Allowance(False, 3, 3, 3600)

    reads: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    waits = []
    for _ in range(200):  # a retry loop gone wrong: every attempt refused at once, no read
        clock.advance(seconds=10)
        again = trail.admit("pbx", "api", PHONE, 3)
        assert again.ticket is None and not again.first_refusal
        waits.append(again.allowance.retry_after_seconds)
    assert reads == []
    assert waits[0] == 3590 and waits[-1] == 3600 - 2000  # counting down to the same moment
    event.remove(engine, "before_cursor_execute", count)

    clock.now = T0 + timedelta(hours=1)  # the first lookup leaves the window: counted again
    assert lookup(trail, "pbx", 3, via="api")
    trail.flush(timeout=10)
    vias = [e["via"] for e in trail.audit.entries() if e["actor"] == "pbx"]
    assert vias.count("api-refused") == 201 and vias.count("api") == 4  # every attempt audited


def test_retry_after_counts_from_the_lookup_that_frees_a_slot(
    trail: AuditTrail, clock: Clock
) -> None:
    for minutes in (0, 10, 20):
        clock.now = T0 + timedelta(minutes=minutes)
        assert lookup(trail, "pbx", 0, via="api")
    clock.now = T0 + timedelta(minutes=30)

    assert trail.admit("pbx", "api", PHONE, 3).allowance.retry_after_seconds == 30 * 60
    # With a lower limit, two lookups must leave: the one at minute 10 frees the slot.
    assert trail.admit("pbx", "api", PHONE, 2).allowance.retry_after_seconds == 40 * 60


def test_a_limit_of_zero_means_unlimited(trail: AuditTrail) -> None:
    for _ in range(5):
        assert lookup(trail, "U1", 0)
    allowance = trail.admit("U1", "slack", PHONE, 0).allowance
    assert (allowance.allowed, allowance.limit, allowance.retry_after_seconds) == (True, 0, 0)


def test_refused_attempts_do_not_count_against_a_raised_limit(trail: AuditTrail) -> None:
    assert lookup(trail, "U1", 1)
    assert trail.admit("U1", "slack", PHONE, 1).ticket is None  # refused, and recorded
    trail.flush(timeout=10)
    raised = trail.admit("U1", "slack", PHONE, 2)
    assert raised.ticket is not None and raised.allowance.allowed
    trail.record(raised.ticket, 1)
    trail.flush(timeout=10)
    refused = trail.admit("U1", "slack", PHONE, 2)
    assert refused.ticket is None and refused.allowance.used == 2


def test_the_first_refusal_in_an_hour_is_flagged_once(trail: AuditTrail, clock: Clock) -> None:
    assert lookup(trail, "U1", 1) and lookup(trail, "U2", 1)

    assert trail.admit("U1", "slack", PHONE, 1).first_refusal is True
    clock.advance(minutes=50)
    assert trail.admit("U1", "api", OTHER, 1).first_refusal is False
    assert trail.admit("U2", "slack", PHONE, 1).first_refusal is True
    trail.flush(timeout=10)
    clock.advance(minutes=9)
    assert trail.admit("U1", "slack", PHONE, 0).allowance.allowed  # unlimited now: no refusal
    clock.advance(minutes=52)  # an hour and a minute after U1's last refusal
    lookup(trail, "U1", 3)
    lookup(trail, "U1", 3)
    assert trail.admit("U1", "slack", PHONE, 2).first_refusal is True


def test_concurrent_lookups_by_one_actor_never_pass_the_limit(trail: AuditTrail) -> None:
    barrier = threading.Barrier(8)
    allowed: list[bool] = []

    def one() -> None:
        barrier.wait()
        allowed.append(lookup(trail, "U1", 3))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(allowed) == [False] * 5 + [True] * 3


def test_a_burst_of_lookups_is_written_in_a_few_transactions(
    trail: AuditTrail, engine: Engine
) -> None:
    inserts: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT"):
            inserts.append(1)

    started = time.monotonic()
    for _ in range(100):  # as a busy phone system asks: a lookup every few milliseconds
        assert lookup(trail, "connect", 0, via="api")
        time.sleep(0.003)
    spent = time.monotonic() - started
    assert trail.flush(timeout=10)
    with engine.connect() as conn:
        written = conn.exec_driver_sql("SELECT count(*) FROM audit_event").scalar_one()
    assert written == 100
    # One transaction (and WAL flush) per gathering interval, not one per lookup.
    assert 1 <= len(inserts) <= min(spent / GATHER_SECONDS + 2, 25)


def test_a_failed_lookup_does_not_count(trail: AuditTrail) -> None:
    failed = trail.admit("U1", "slack-live", PHONE, 1)
    assert failed.ticket is not None
    trail.cancel(failed.ticket)
    assert lookup(trail, "U1", 1)
    trail.flush(timeout=10)
    assert [e["via"] for e in trail.audit.entries()] == ["slack"]


def test_rows_waiting_for_a_locked_database_count_and_are_written_in_order(
    sqlite_file: tuple[Engine, Path], clock: Clock, tmp_path: Path
) -> None:
    engine, path = sqlite_file
    trail = AuditTrail(Audit(engine, secret_key="k", clock=clock), spool_dir=tmp_path / "s")
    try:
        with write_locked(path):
            outcomes = []
            for _ in range(5):
                outcomes.append(lookup(trail, "U1", 2))
                clock.advance(seconds=1)
            assert outcomes == [True, True, False, False, False]
            assert trail.unwritten() == 5
        assert trail.flush(timeout=40)
        entries = trail.audit.entries()
    finally:
        trail.close()
    assert [(e["at"][-3:], e["via"]) for e in reversed(entries)] == [
        ("00Z", "slack"),
        ("01Z", "slack"),
        ("02Z", "slack-refused"),
        ("03Z", "slack-refused"),
        ("04Z", "slack-refused"),
    ]


def test_beyond_the_memory_bound_rows_wait_on_disk_without_the_number(
    sqlite_file: tuple[Engine, Path], clock: Clock, tmp_path: Path
) -> None:
    engine, path = sqlite_file
    spool = tmp_path / "spool"
    audit = Audit(engine, secret_key="k", clock=clock)
    trail = AuditTrail(audit, spool_dir=spool, memory_rows=2)
    try:
        with write_locked(path):
            for n in range(7):
                assert lookup(trail, f"U{n}", 5)
                clock.advance(seconds=1)
            spooled = [line for f in spool.glob("*.jsonl") for line in f.read_text().splitlines()]
            assert [json.loads(line)["actor"] for line in spooled] == ["U2", "U3", "U4", "U5", "U6"]
            assert "4155550100" not in "".join(spooled)
        assert trail.flush(timeout=40)
    finally:
        trail.close()
    assert [e["actor"] for e in reversed(audit.entries())] == [f"U{n}" for n in range(7)]
    assert list(spool.iterdir()) == []


def test_rows_unwritten_at_shutdown_are_written_first_by_the_next_process(
    sqlite_file: tuple[Engine, Path], clock: Clock, tmp_path: Path
) -> None:
    engine, path = sqlite_file
    spool = tmp_path / "spool"
    audit = Audit(engine, secret_key="k", clock=clock)
    with write_locked(path):
        first = AuditTrail(audit, spool_dir=spool, memory_rows=2)
        for n in range(4):
            lookup(first, f"U{n}", 5)
            clock.advance(seconds=1)
        first.close(timeout=0.5)
        [left] = spool.glob("left-*.jsonl")
        assert len(left.read_text().splitlines()) == 4
    assert audit.entries() == []

    second = AuditTrail(audit, spool_dir=spool)
    try:
        lookup(second, "U9", 5)
        assert second.flush(timeout=10)
    finally:
        second.close()
    assert [e["actor"] for e in reversed(audit.entries())] == ["U0", "U1", "U2", "U3", "U9"]
    assert list(spool.iterdir()) == []
    assert not [v for v in every_stored_value(engine) if "4155550100" in v]


def test_the_spool_sits_next_to_a_sqlite_file_else_in_a_temp_directory(tmp_path: Path) -> None:
    sqlite = create_engine(f"sqlite:///{tmp_path / 'mfa-whois.db'}")
    postgres = create_engine("postgresql+psycopg://app:s3cret%25pw@db.example:5432/whois")
    try:
        assert default_spool_dir(sqlite) == tmp_path / "mfa-whois.db.audit-spool"
        elsewhere = default_spool_dir(postgres)
        assert elsewhere.parent == Path(tempfile.gettempdir())
        assert elsewhere.name.startswith("mfa-whois-audit-") and "s3cret" not in str(elsewhere)
        assert not default_spool_dir(sqlite).exists()  # made only when rows need it
    finally:
        sqlite.dispose()
        postgres.dispose()
