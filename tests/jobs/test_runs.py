"""Run records, the single-writer lease and the queue of requested full syncs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from jobs.runs import AlreadyRunning, LeaseLost, RunNotQueued, Runs
from phoneindex.store import Store
from tests.conftest import Clock


@pytest.fixture
def runs(store: Store, clock: Clock) -> Runs:
    return Runs(store.engine, store, clock=clock)


def test_a_run_is_recorded_and_closed(runs: Runs) -> None:
    with runs.exclusive("full", "cli") as run:
        assert runs.running() == runs.get(run.id)
        assert runs.get(run.id)["status"] == "running"
        run.counts["users"] = 3
    done = runs.last("full")
    assert done is not None
    assert done["status"] == "succeeded" and done["counts"] == {"users": 3}
    assert done["requested_by"] == "cli" and done["error"] is None
    assert runs.running() is None
    assert runs.status_document()["last_full_sync"] == done


def test_a_failed_run_keeps_the_error_line(runs: Runs) -> None:
    with pytest.raises(KeyError), runs.exclusive("enrich", "scheduler"):
        raise KeyError("+14155550100")  # an unexpected error: its text is not recorded
    failed = runs.last("enrich")
    assert failed is not None and failed["status"] == "failed"
    assert failed["error"] == "internal error (KeyError)"


def test_a_second_writer_is_told_which_run_holds_the_lease(runs: Runs) -> None:
    with runs.exclusive("full", "slack:U1") as run:
        with pytest.raises(AlreadyRunning) as refused, runs.exclusive("incremental", "scheduler"):
            pass
        message = str(refused.value)
        assert f"a full sync is already running (run {run.id}, requested by slack:U1" in message
    assert runs.last("incremental") is None


def test_a_lease_left_by_a_crashed_process_expires(store: Store, clock: Clock) -> None:
    runs = Runs(store.engine, store, clock=clock, lease_ttl=timedelta(milliseconds=300))
    crashed = runs.new_holder()
    run_id = runs.start("full", "scheduler")
    runs.acquire(crashed, run_id)
    with pytest.raises(AlreadyRunning), runs.exclusive("incremental", "scheduler"):
        pass
    time.sleep(0.4)  # the lease lives in the database's (real) time
    with runs.exclusive("incremental", "scheduler"):
        pass
    abandoned = runs.get(run_id)
    assert abandoned is not None and abandoned["status"] == "failed"
    assert "abandoned" in abandoned["error"]
    with pytest.raises(LeaseLost):
        runs.renew(crashed, run_id)


def test_lease_expiry_is_judged_by_the_database_clock_not_the_process_clock(
    store: Store,
) -> None:
    # Two processes whose clocks disagree by 10 minutes share one database.
    behind = Runs(store.engine, store, clock=Clock(datetime.now(UTC)))
    ahead = Runs(store.engine, store, clock=Clock(datetime.now(UTC) + timedelta(minutes=10)))
    holder = behind.new_holder()
    run_id = behind.start("full", "scheduler")
    behind.acquire(holder, run_id)

    with pytest.raises(AlreadyRunning), ahead.exclusive("incremental", "scheduler"):
        pass  # the fast clock must not think the 5-minute lease expired
    assert ahead.running() == behind.get(run_id)
    behind.renew(holder, run_id)  # still ours
    started = behind.get(run_id)
    assert started is not None and started["status"] == "running"


def test_one_lease_can_cover_several_runs(runs: Runs) -> None:
    with runs.lease() as holder:
        with runs.exclusive("full", "cli", holder=holder) as full:
            pass
        with pytest.raises(AlreadyRunning), runs.exclusive("incremental", "scheduler"):
            pass  # the gap between the two runs is still covered
        with runs.exclusive("enrich", "cli", holder=holder) as enrich:
            assert runs.running() == runs.get(enrich.id)
    assert runs.running() is None
    assert [runs.last(k)["status"] for k in ("full", "enrich")] == ["succeeded", "succeeded"]
    assert full.id != enrich.id


def test_queueing_twice_returns_the_run_already_queued(runs: Runs) -> None:
    first = runs.queue("full", "slack:U1")
    second = runs.queue("full", "slack:U2")
    assert first.created and not second.created
    assert second.id == first.id
    assert second.run["status"] == "queued" and second.run["requested_by"] == "slack:U1"
    assert runs.next_queued("full") == first.run
    assert runs.status_document()["queued"] == first.run
    assert runs.last("full") is None  # queued runs are not finished runs


def test_queueing_while_a_full_sync_runs_returns_that_run(runs: Runs) -> None:
    with runs.exclusive("full", "scheduler") as run:
        answer = runs.queue("full", "slack:U1")
    assert not answer.created and answer.id == run.id
    assert answer.run["status"] == "running"
    assert runs.next_queued("full") is None


def test_another_kind_running_does_not_stop_queueing(runs: Runs) -> None:
    with runs.exclusive("incremental", "scheduler"):
        answer = runs.queue("full", "slack:U1")
    assert answer.created and answer.run["status"] == "queued"


def test_adopting_a_queued_run_starts_it_for_its_requester(runs: Runs, clock: Clock) -> None:
    queued = runs.queue("full", "slack:U1")
    clock.advance(seconds=5)
    with runs.exclusive("full", "scheduler", adopt=queued.id) as run:
        assert run.id == queued.id
        started = runs.get(run.id)
        assert started is not None and started["status"] == "running"
        assert started["started_at"] > queued.run["started_at"]
    done = runs.get(queued.id)
    assert done is not None and done["status"] == "succeeded"
    assert done["requested_by"] == "slack:U1"
    assert runs.next_queued("full") is None
    with pytest.raises(RunNotQueued), runs.exclusive("full", "scheduler", adopt=queued.id):
        pass
    assert runs.running() is None  # the lease was given back


def test_a_queued_run_nobody_starts_expires(store: Store, clock: Clock) -> None:
    runs = Runs(store.engine, store, clock=clock, queue_ttl=timedelta(hours=1))
    stale = runs.queue("full", "slack:U1")
    clock.advance(minutes=61)
    assert runs.next_queued("full") is None
    fresh = runs.queue("full", "slack:U2")
    assert fresh.created and fresh.id != stale.id
    expired = runs.get(stale.id)
    assert expired is not None and expired["status"] == "failed"
    assert "is a scheduler running" in expired["error"]
    clock.advance(minutes=61)
    assert runs.expire_queued() == 1
