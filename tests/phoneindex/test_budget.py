"""The request budget shared by every process: slots, priorities, holds, stores, fallbacks."""

from __future__ import annotations

import logging
import multiprocessing
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from phoneindex.budget import (
    DatabaseBudget,
    FileBudget,
    LocalBudget,
    Resilient,
    State,
    held,
    open_budget,
    reserve,
)
from phoneindex.db import open_database


def test_interactive_callers_always_get_the_next_slot() -> None:
    state = State()
    delays = []
    for _ in range(4):
        state, slot = reserve(state, 100.0, 0.5, bulk=False, max_ahead=0.5)
        assert slot.granted
        delays.append(slot.delay)
    assert delays == [0.0, 0.5, 1.0, 1.5]


def test_bulk_callers_leave_the_queue_to_interactive_ones() -> None:
    state, first = reserve(State(), 100.0, 0.5, bulk=True, max_ahead=0.5)
    state, second = reserve(state, 100.0, 0.5, bulk=True, max_ahead=0.5)
    after_two = state
    state, third = reserve(state, 100.0, 0.5, bulk=True, max_ahead=0.5)
    assert (first.granted, first.delay) == (True, 0.0)
    assert (second.granted, second.delay) == (True, 0.5)
    assert not third.granted and third.delay == 0.5  # come back when one slot has gone
    assert state == after_two  # a refusal reserves nothing
    _, live = reserve(state, 100.0, 0.5, bulk=False, max_ahead=0.5)
    assert live.granted and live.delay == 1.0  # behind the one bulk call already reserved


def test_holds_stop_bulk_callers_or_everybody() -> None:
    bulk_held = held(State(), 100.0, 10.0, bulk_only=True)
    _, live = reserve(bulk_held, 100.0, 0.5, bulk=False, max_ahead=0.5)
    _, bulk = reserve(bulk_held, 100.0, 0.5, bulk=True, max_ahead=0.5)
    assert live.granted and live.delay == 0.0
    assert not bulk.granted and bulk.delay == 1.0  # polls again within a second
    all_held = held(State(), 100.0, 3.0, bulk_only=False)
    _, live = reserve(all_held, 100.0, 0.5, bulk=False, max_ahead=0.5)
    assert live.granted and live.delay == 3.0


def test_two_file_budgets_on_one_file_share_the_slots(tmp_path: Path) -> None:
    path = tmp_path / "db-auth0-budget"
    now = [1000.0]
    a, b = FileBudget(path, clock=lambda: now[0]), FileBudget(path, clock=lambda: now[0])
    try:
        delays = [x.reserve(0.25, bulk=False, max_ahead=0.25).delay for x in (a, b, a, b)]
        assert delays == [0.0, 0.25, 0.5, 0.75]
        a.hold(5.0, bulk_only=False)
        assert b.reserve(0.25, bulk=False, max_ahead=0.25).delay == 5.0
    finally:
        a.close()
        b.close()


def _reserve_many(
    url: str, interval: float, n: int, bulk: bool, out: multiprocessing.Queue
) -> None:
    budget = open_budget(url)
    slots = []
    for _ in range(n):
        while True:
            slot = budget.reserve(interval, bulk, max_ahead=interval)
            at = time.time() + slot.delay - slot.spent  # on this machine's clock, as Pacer counts
            time.sleep(max(0.0, at - time.time()))
            if slot.granted:
                slots.append(at)
                break
    budget.close()
    out.put((bulk, slots))


def _three_processes(url: str, interval: float) -> list[tuple[bool, list[float]]]:
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    jobs = [
        ctx.Process(target=_reserve_many, args=(url, interval, 12, bulk, out))
        for bulk in (True, True, False)
    ]
    for job in jobs:
        job.start()
    results = [out.get(timeout=60) for _ in jobs]
    for job in jobs:
        job.join(timeout=10)
    return results


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_processes_never_send_closer_than_the_interval(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'index.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    open_database(url).dispose()  # the schema, as `serve` / `clock` create it at start
    assert open_budget(url).shared
    interval = 0.05
    results = _three_processes(url, interval)
    times = sorted(t for _, slots in results for t in slots)
    assert len(times) == 36
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Slots are reserved `interval` apart on the store's clock; seen from here, a reply's trip
    # (a few ms, more on a loaded machine) blurs them. Unshared, slots would coincide.
    assert min(gaps) >= 0.6 * interval
    assert times[-1] - times[0] >= 35 * interval - 0.01


def test_a_live_check_waits_for_at_most_one_bulk_call_of_another_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    interval = 0.1
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    bulk = ctx.Process(target=_reserve_many, args=(url, interval, 30, True, out))
    bulk.start()
    time.sleep(0.5)  # the bulk process is busy reserving slot after slot
    budget = open_budget(url)
    try:
        waits = []
        for _ in range(3):
            slot = budget.reserve(interval, bulk=False, max_ahead=interval)
            assert slot.granted
            waits.append(slot.delay)
            time.sleep(slot.delay + interval)
    finally:
        budget.close()
        out.get(timeout=30)
        bulk.join(timeout=10)
    assert max(waits) <= 2 * interval + 0.02


def test_an_unreachable_postgresql_paces_this_process_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    budget = open_budget("postgresql://postgres:s3cret-pw@127.0.0.1:1/none?connect_timeout=1")
    assert isinstance(budget, LocalBudget) and not budget.shared
    assert budget.reserve(0.5, bulk=False, max_ahead=0.5).granted
    assert "pacing this process alone" in caplog.text
    assert "s3cret-pw" not in caplog.text


def test_a_failing_store_falls_back_and_warns_once(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    engine = open_database(pg_url)
    budget = open_budget(pg_url)
    assert isinstance(budget, Resilient) and isinstance(budget.inner, DatabaseBudget)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE request_budget RENAME TO request_budget_gone"))
        slots = [budget.reserve(0.5, bulk=False, max_ahead=0.5) for _ in range(3)]
        assert [s.delay for s in slots] == pytest.approx([0.0, 0.5, 1.0], abs=0.05)
        warnings = [r for r in caplog.records if "pacing this process alone" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE request_budget_gone RENAME TO request_budget"))
        budget.close()
        engine.dispose()


def test_an_in_memory_database_has_a_budget_of_its_own() -> None:
    assert not open_budget("sqlite://").shared
    assert not open_budget("sqlite:///:memory:").shared


def test_a_clock_stepped_back_does_not_stop_every_call() -> None:
    ahead = State(next_at=5000.0, hold_all=4000.0, hold_bulk=100.5)
    _, slot = reserve(ahead, 100.0, 0.5, bulk=True, max_ahead=0.5)
    assert slot.granted and slot.delay == 0.5  # the real bulk hold stays, the bogus times go
