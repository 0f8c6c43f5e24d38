"""The scheduler: which jobs it registers, and what each job does when it runs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from jobs.auth0 import Auth0Client
from jobs.enrich import EnrichResult
from jobs.runs import RunHandle
from jobs.schedule import (
    Deps,
    build_scheduler,
    cron_trigger,
    enrich_in_slices,
    enrich_job,
    full_sync_job,
    log_sync_job,
    queued_runs_job,
    run_clock,
    run_full_sync,
    stale_check_job,
)
from phoneindex.changes import RefetchRequested
from phoneindex.db import open_database
from phoneindex.errors import ConfigError
from phoneindex.store import Store
from tests.conftest import Clock, write_locked
from tests.fake_auth0 import FakeAuth0, make_phone_method, make_user
from tests.jobs.test_reindex import SMS_NUMBER, Env, client_for, tenant_users

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with FakeAuth0(users=tenant_users(), rate=1000, burst=1000, export_polls_to_complete=1) as f:
        yield f


@pytest.fixture
def env(fake: FakeAuth0, store: Store, clock: Clock) -> Env:
    return Env(fake, store, clock)


@pytest.fixture
def deps(env: Env) -> Iterator[Deps]:
    enriched: list[int] = []

    def enricher(store: Store, client: Auth0Client, run: RunHandle, **kw: Any) -> None:
        enriched.append(run.id)

    made = Deps(env.settings, env.store, env.runs, env.alerts, env.client, enricher=enricher)
    made.export_poll_seconds = 0.01
    yield made
    made.close()


def test_every_job_is_registered_with_its_trigger(deps: Deps) -> None:
    settings = deps.settings.model_copy(update={"full_sync_cron": "30 2 * * *"})
    scheduler = build_scheduler(settings, deps, blocking=False)
    assert isinstance(scheduler, BackgroundScheduler)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {
        "full-sync",
        "log-sync",
        "enrich",
        "stale-check",
        "queued-runs",
        "limit-recovery",
        "audit-retention",
    }

    cron = jobs["full-sync"].trigger
    assert isinstance(cron, CronTrigger) and cron.timezone == UTC
    fire = cron.get_next_fire_time(None, datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    assert fire == datetime(2026, 11, 28, 2, 30, tzinfo=UTC)
    intervals = {
        job_id: job.trigger.interval
        for job_id, job in jobs.items()
        if isinstance(job.trigger, IntervalTrigger)
    }
    assert intervals == {
        "log-sync": timedelta(seconds=60),
        "enrich": timedelta(seconds=30),
        "stale-check": timedelta(minutes=15),
        "queued-runs": timedelta(seconds=5),
        "limit-recovery": timedelta(minutes=1),
        "audit-retention": timedelta(days=1),
    }
    # Audit retention also runs once as soon as the scheduler starts, then daily.
    first = jobs["audit-retention"].next_run_time
    assert abs(first - datetime.now(UTC)) < timedelta(minutes=1)
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
        assert job.args == (deps,)
    assert jobs["full-sync"].misfire_grace_time == 3600


def test_log_sync_is_not_scheduled_when_polling_is_off(deps: Deps) -> None:
    settings = deps.settings.model_copy(update={"log_poll_seconds": 0})
    scheduler = build_scheduler(settings, deps, blocking=True)
    assert isinstance(scheduler, BlockingScheduler)
    assert "log-sync" not in {job.id for job in scheduler.get_jobs()}


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 3 * *", "expected 5 fields"),
        ("61 3 * * *", "higher than the maximum"),
        ("0 3 * * 9", "'9' is not a day-of-week range within 0-7"),
    ],
)
def test_an_invalid_cron_names_the_variable(deps: Deps, cron: str, message: str) -> None:
    settings = deps.settings.model_copy(update={"full_sync_cron": cron})
    with pytest.raises(ConfigError) as bad:
        build_scheduler(settings, deps, blocking=False)
    assert str(bad.value).startswith("MFA_WHOIS_FULL_SYNC_CRON: ")
    assert message in str(bad.value)


@pytest.mark.parametrize(
    ("weekday", "expected"),
    [("1", "Mon"), ("0", "Sun"), ("7", "Sun"), ("mon-fri", "Mon"), ("6-7", "Sat")],
)
def test_cron_weekdays_mean_what_crontab_means(weekday: str, expected: str) -> None:
    trigger = cron_trigger(f"0 3 * * {weekday}")
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, friday).strftime("%a %H:%M") == f"{expected} 03:00"


def test_the_queued_runs_job_runs_a_queued_full_sync(deps: Deps, env: Env) -> None:
    ended: list[dict[str, Any]] = []
    deps.on_full_sync_end = ended.append
    queued_runs_job(deps)  # nothing queued: nothing happens
    assert env.fake.count("/api/v2/") == 0 and env.runs.last("full") is None

    queued = env.runs.queue("full", "slack:U1")
    queued_runs_job(deps)

    run = env.runs.get(queued.id)
    assert run is not None and run["status"] == "succeeded"
    assert run["requested_by"] == "slack:U1" and run["counts"]["users"] == 3
    assert env.accounts(SMS_NUMBER) == ["sms|5f0c1a2b3c4d5e6f7a8b9c0d"]
    assert ended == [run]
    assert env.runs.next_queued("full") is None
    # MFA numbers are read afterwards by the enrich job, in slices.
    assert env.runs.last("enrich") is None
    enrich_job(deps)
    enrich = env.runs.last("enrich")
    assert enrich is not None and enrich["status"] == "succeeded"
    assert env.fake.requests_for("/api/v2/users/auth0|mfa000000000000000000001/authentication")


def test_the_enrich_job_gives_the_lease_back_after_its_slice(deps: Deps, env: Env) -> None:
    env.full_sync()
    due = env.store.count_enrich_candidates()
    assert due >= 1
    deps.enrich_slice = timedelta(0)  # over at once: the next slice resumes
    enrich_job(deps)
    first = env.runs.last("enrich")
    assert first is not None and first["status"] == "succeeded"
    assert env.runs.running() is None  # the lease is free for a log sync
    assert env.store.count_enrich_candidates() == due

    deps.enrich_slice = timedelta(minutes=5)
    enrich_job(deps)
    assert env.store.count_enrich_candidates() == 0


def test_a_queued_run_waits_while_another_writer_runs(deps: Deps, env: Env) -> None:
    queued = env.runs.queue("full", "slack:U1")
    with env.runs.exclusive("incremental", "scheduler"):
        queued_runs_job(deps)  # skipped, not failed
    assert env.runs.next_queued("full") == env.runs.get(queued.id)
    queued_runs_job(deps)
    done = env.runs.get(queued.id)
    assert done is not None and done["status"] == "succeeded"
    assert env.inbox.sent == []


def test_the_nightly_full_sync_is_queued_while_enrichment_holds_the_lease(
    deps: Deps, env: Env
) -> None:
    env.full_sync()
    assert env.store.count_enrich_candidates() >= 1  # an enrichment backlog
    with env.runs.exclusive("enrich", "scheduler") as slice_:
        full_sync_job(deps)  # the cron fires during a slice
        full_sync_job(deps)  # a second scheduler by mistake, or a coalesced misfire
    queued = env.runs.next_queued("full")
    assert queued is not None and queued["requested_by"] == "scheduler"
    assert env.runs.queue("full", "slack:U1").id == queued["id"]  # one queued at a time

    enrich_job(deps)  # the queued full sync goes ahead of the next slice
    last_enrich = env.runs.last("enrich")
    assert last_enrich is not None and last_enrich["id"] == slice_.id
    queued_runs_job(deps)  # within seconds of the lease freeing
    done = env.runs.get(queued["id"])
    assert done is not None and done["status"] == "succeeded"
    assert env.runs.next_queued("full") is None
    assert env.inbox.sent == []


def test_a_queued_full_sync_waits_while_the_lease_is_held_past_the_queue_ttl(
    deps: Deps, env: Env, clock: Clock
) -> None:
    with env.runs.exclusive("enrich", "cli") as long_run:
        full_sync_job(deps)
        clock.advance(hours=3)  # `mfa-whois enrich --all` can hold the lease for hours
        queued_runs_job(deps)
        queued = env.runs.next_queued("full")
        assert queued is not None and queued["status"] == "queued"
        long_run.heartbeat()
    queued_runs_job(deps)
    done = env.runs.last("full")
    assert done is not None and done["id"] == queued["id"] and done["status"] == "succeeded"


def test_jobs_are_skipped_not_failed_while_an_import_holds_the_write_lock(
    fake: FakeAuth0, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "index.db"
    engine = open_database(f"sqlite:///{db}", busy_timeout_ms=200)
    env = Env(fake, Store(engine, clock=clock), clock)
    deps = Deps(env.settings, env.store, env.runs, env.alerts, env.client)
    env.full_sync()
    runs_before = [env.runs.last(kind) for kind in ("full", "enrich", "incremental")]

    with write_locked(db), caplog.at_level(logging.INFO, logger="jobs.schedule"):
        for job in (log_sync_job, enrich_job, queued_runs_job, log_sync_job, stale_check_job):
            job(deps)
    assert env.inbox.sent == []  # no "Log sync failed" while the database is busy
    assert [env.runs.last(kind) for kind in ("full", "enrich", "incremental")] == runs_before
    assert "log-sync skipped: busy" in caplog.text
    assert "enrich skipped: busy" in caplog.text

    # A real failure afterwards (two runs, three attempts each): one alert, one recovery.
    env.fake.fail_next(6, status=503, path_prefix="/api/v2/logs")
    log_sync_job(deps)
    log_sync_job(deps)
    log_sync_job(deps)
    log_sync_job(deps)
    assert env.inbox.seen() == [
        ("sync.incremental", "failure", "Log sync failed"),
        ("sync.incremental", "recovery", "Log sync works again"),
    ]
    deps.close()
    engine.dispose()


def test_a_failing_full_sync_job_alerts_once_and_never_raises(deps: Deps, env: Env) -> None:
    env.fake.export_outcome = "failed"
    full_sync_job(deps)
    full_sync_job(deps)
    failed = env.runs.last("full")
    assert failed is not None and failed["status"] == "failed"
    assert failed["requested_by"] == "scheduler"
    assert env.inbox.seen() == [("sync.full", "failure", "Full sync failed")]

    env.fake.export_outcome = "completed"
    full_sync_job(deps)
    assert env.inbox.seen()[-1] == ("sync.full", "recovery", "Full sync works again")


def test_the_cron_run_starts_a_queued_request_instead_of_a_new_run(deps: Deps, env: Env) -> None:
    queued = env.runs.queue("full", "slack:U1")
    full_sync_job(deps)
    run = env.runs.last("full")
    assert run is not None and run["id"] == queued.id and run["status"] == "succeeded"


def test_stopping_the_process_ends_a_waiting_full_sync(deps: Deps, env: Env) -> None:
    env.fake.export_outcome = "never"
    queued = env.runs.queue("full", "slack:U1")
    worker = threading.Thread(target=queued_runs_job, args=(deps,))
    worker.start()
    deadline = time.monotonic() + 10
    while not env.fake.requests_for("/api/v2/jobs/") and time.monotonic() < deadline:
        time.sleep(0.01)
    deps.stopping.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    run = env.runs.get(queued.id)
    assert run is not None and run["status"] == "failed"
    assert run["error"] == "stopped: the process is shutting down"
    assert env.runs.running() is None
    assert env.inbox.sent == []  # a shutdown is not an incident


def test_the_stale_check_alerts_once_and_recovers(deps: Deps, env: Env) -> None:
    stale_check_job(deps)
    stale_check_job(deps)
    assert env.inbox.seen() == [("index.stale", "warning", "Phone index is stale")]
    assert "(last: never)" in env.inbox.sent[0].text

    env.full_sync()
    stale_check_job(deps)
    assert env.inbox.seen()[-1] == ("index.stale", "recovery", "Phone index is fresh again")


def test_the_enrich_job_does_nothing_when_nothing_is_due(deps: Deps, env: Env) -> None:
    enrich_job(deps)
    assert env.runs.last("enrich") is None and env.fake.count("/api/v2/") == 0


MFA_USER = "auth0|mfa000000000000000000001"
BAD = ("auth0|bad-a", "auth0|bad-b", "auth0|bad-c")


def refused_rereads(env: Env, *user_ids: str) -> None:
    """Accounts in the index with a queued re-read that Auth0 answers 400, every time."""
    for uid in user_ids:
        env.fake.add_user(make_user(uid))
    env.full_sync()
    env.clock.advance(minutes=1)
    env.store.apply([RefetchRequested(uid, env.clock()) for uid in user_ids])
    for uid in user_ids:
        env.fake.fail_next(1000, 400, f"/api/v2/users/{uid}")


def test_accounts_auth0_refuses_neither_fail_the_enrich_job_nor_block_the_rest(
    deps: Deps, env: Env
) -> None:
    refused_rereads(env, *BAD)

    enrich_job(deps)

    run = env.runs.last("enrich")
    assert run is not None and run["status"] == "succeeded"
    assert (run["counts"]["errors"], run["counts"]["accounts"]) == (3, 1)
    assert env.fake.requests_for(f"/api/v2/users/{MFA_USER}/authentication-methods")
    assert env.inbox.sent == []  # no "MFA enrichment failed"


def test_an_account_that_keeps_failing_starts_no_run_until_its_retry_time(
    deps: Deps, env: Env
) -> None:
    refused_rereads(env, BAD[0])
    enrich_job(deps)  # reads the MFA account, and fails on the refused one
    first = env.runs.last("enrich")
    assert first is not None and first["counts"]["errors"] == 1
    env.fake.clear_requests()

    for _tick in range(29):  # every 30 s for the next 14.5 minutes
        env.clock.advance(seconds=30)
        enrich_job(deps)

    assert env.runs.last("enrich") == first  # no run record, no lease
    assert env.fake.count("/api/v2/") == 0
    env.clock.advance(seconds=30)  # 15 minutes after the failed read: its turn again
    enrich_job(deps)
    again = env.runs.last("enrich")
    assert again is not None and again["id"] != first["id"]
    assert (again["counts"]["errors"], again["counts"]["queued"]) == (1, 1)


def test_the_log_sync_job_records_an_incremental_run(deps: Deps, env: Env) -> None:
    log_sync_job(deps)
    run = env.runs.last("incremental")
    assert run is not None and run["status"] == "succeeded"

    env.fake.fail_next(100, status=503)
    log_sync_job(deps)
    log_sync_job(deps)
    failed = env.runs.last("incremental")
    assert failed is not None and failed["status"] == "failed"
    assert failed["error"].startswith("Auth0 answered 503 for GET /api/v2/logs")
    assert env.inbox.seen() == [("sync.incremental", "failure", "Log sync failed")]


def test_run_clock_returns_when_asked_to_stop(deps: Deps) -> None:
    clock = threading.Thread(target=run_clock, args=(deps.settings, deps))
    clock.start()
    time.sleep(0.2)
    assert clock.is_alive()
    deps.stopping.set()
    clock.join(timeout=10)
    assert not clock.is_alive()


def test_the_clock_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MFA_WHOIS", "AUTH0"))}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'index.db'}",
        "AUTH0_DOMAIN": "http://127.0.0.1:9",  # never called within this test
        "AUTH0_CLIENT_ID": "id",
        "AUTH0_CLIENT_SECRET": "secret",
        "MFA_WHOIS_LOG_POLL_SECONDS": "0",
    }
    code = (
        "import logging, sys\n"
        "from jobs.schedule import Deps, run_clock\n"
        "from phoneindex.settings import load_settings\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "settings = load_settings()\n"
        "run_clock(settings, Deps.from_settings(settings))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "scheduler started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=20)[1]
    assert proc.returncode == 0, "".join(lines) + rest
    assert "scheduler stopped" in rest and "Traceback" not in rest


def test_a_reindex_enriches_in_slices_and_log_syncs_take_turns(store: Store, clock: Clock) -> None:
    users = [make_user(f"auth0|slice{i:03d}", multifactor=["guardian"]) for i in range(40)]
    methods = {u["user_id"]: [make_phone_method(f"+1415555{i:04d}")] for i, u in enumerate(users)}
    with FakeAuth0(users=users, auth_methods=methods, export_polls_to_complete=1) as fake:
        env = Env(fake, store, clock)
        reindexing = Deps(
            env.settings,
            store,
            env.runs,
            env.alerts,
            lambda: client_for(fake, max_rps=20),  # 40 reads take 2 s
            export_poll_seconds=0.01,
            enrich_slice=timedelta(milliseconds=300),
            slice_pause=timedelta(milliseconds=200),
        )
        scheduler = Deps(env.settings, store, env.runs, env.alerts, env.client, turn_poll=0.02)
        full = run_full_sync(reindexing, "cli", enrich=False)  # what `mfa-whois reindex` does
        seen: list[tuple[int, int]] = []
        outcome: list[tuple[EnrichResult, int]] = []
        worker = threading.Thread(
            target=lambda: outcome.append(
                enrich_in_slices(reindexing, "cli", progress=lambda d, t: seen.append((d, t)))
            )
        )
        worker.start()
        while worker.is_alive():
            log_sync_job(scheduler)  # the scheduler's log pulls, one after another
            time.sleep(0.05)
        reindexing.close()
        scheduler.close()

    enriched, slices = outcome[0]
    assert enriched.complete and enriched.accounts == 40 and slices >= 2
    assert full.imported.users == 40
    with store.engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(text("SELECT kind FROM sync_run ORDER BY id"))]
    enrich_at = [i for i, kind in enumerate(kinds) if kind == "enrich"]
    between = kinds[enrich_at[0] : enrich_at[-1]]
    assert "incremental" in between  # a log sync held the lease between two slices
    assert all(k in ("enrich", "incremental") for k in between)
    assert seen[-1][0] == 40 and all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert env.inbox.sent == []
