"""The one scheduler (APScheduler 3.x): full sync on a cron, log pulls, re-fetches, staleness.

Jobs are module-level functions taking the small `Deps` container; every job catches its own
errors (an exception never reaches APScheduler), and the database lease makes sure only one
writer runs even if two schedulers are started by mistake.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from jobs.alerts import Alerts, Notifier
from jobs.auth0 import Auth0Client
from jobs.enrich import EnrichResult, enrich
from jobs.limits import JOB_LIMITS, LIMITS_EVERY, limit_recovery_job
from jobs.reindex import (
    ENRICH_ALERT,
    FULL_ALERT,
    Enricher,
    FullSyncResult,
    Progress,
    alerting,
    full_sync,
)
from jobs.retention import JOB_RETENTION, RETENTION_EVERY, audit_retention_job
from jobs.runs import AlreadyRunning, Busy, Queued, RunNotQueued, Runs, ShuttingDown
from jobs.sync import SyncResult, sync_logs
from phoneindex.db import is_busy, open_database
from phoneindex.errors import ConfigError, WhoisError
from phoneindex.settings import Settings
from phoneindex.store import Store

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
JOB_FULL = "full-sync"
JOB_LOGS = "log-sync"
JOB_ENRICH = "enrich"
JOB_STALE = "stale-check"
JOB_QUEUE = "queued-runs"
ENRICH_EVERY = timedelta(seconds=30)
# A scheduled enrichment gives the writer lease back this often, so log syncs take turns
# (reading a large tenant's MFA numbers takes hours); the next slice resumes the walk.
ENRICH_SLICE = timedelta(minutes=5)
STALE_EVERY = timedelta(minutes=15)
QUEUE_EVERY = timedelta(seconds=5)
FULL_SYNC_GRACE = timedelta(hours=1)  # a late cron run still runs (APScheduler's default: 1 s)
# Between two enrichment slices outside the scheduler (CLI), the lease stays free this long so
# a waiting writer gets its turn; a scheduled log sync waits up to LOG_TURN_WAIT for a slice
# to end (polling every TURN_POLL seconds) instead of skipping its pull.
SLICE_PAUSE = timedelta(seconds=2)
LOG_TURN_WAIT = timedelta(seconds=45)
TURN_POLL = 0.5
FIRST_SYNC = "scheduler (first sync)"
LOGS_ALERT = "sync.incremental"
STALE_ALERT = "index.stale"
_CRON_VARIABLE = "MFA_WHOIS_FULL_SYNC_CRON"
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass
class Deps:
    """What the scheduled jobs need; one per process, shared by every job."""

    settings: Settings
    store: Store
    runs: Runs
    alerts: Alerts
    client_factory: Callable[[], Auth0Client]
    enricher: Enricher | None = None  # None: jobs.enrich.enrich (tests pass a stand-in)
    export_poll_seconds: float = 2.0
    enrich_slice: timedelta = ENRICH_SLICE
    slice_pause: timedelta = SLICE_PAUSE
    turn_poll: float = TURN_POLL
    # Called with the run document after each full sync the scheduler ran (Slack reports it).
    on_full_sync_end: Callable[[dict[str, Any]], None] | None = None
    # This process's latest refusal of an actor, audit row written or not (the lookup surfaces
    # set it when they run in the scheduler's process): see jobs.limits.close_finished.
    recent_refusal: Callable[[str], datetime | None] | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    _client: Auth0Client | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, notifier: Notifier | None = None) -> Deps:
        """Open the index database and wire the runs, alerts and the Auth0 client factory."""
        engine = open_database(settings.database_url)
        store = Store(engine, stale_after=timedelta(hours=settings.stale_after_hours))
        return cls(
            settings=settings,
            store=store,
            runs=Runs(engine, store),
            alerts=Alerts(store, notifier),
            client_factory=lambda: Auth0Client.from_settings(settings),
        )

    def client(self) -> Auth0Client:
        """One shared Management API client for every job: one token cache, one pacer."""
        with self._lock:
            if self._client is None:
                self._client = self.client_factory()
            return self._client

    def sleep(self, seconds: float) -> None:
        """Sleep, or raise ShuttingDown as soon as the process is asked to stop."""
        if self.stopping.wait(seconds):
            raise ShuttingDown()

    def should_stop(self) -> bool:
        """Whether the process is stopping."""
        return self.stopping.is_set()

    def log_turn_wait(self) -> timedelta:
        """How long a scheduled log sync waits for an enrichment slice to give the lease back."""
        poll = timedelta(seconds=self.settings.log_poll_seconds)
        return min(LOG_TURN_WAIT, poll * 0.75)

    def close(self) -> None:
        """Close the shared client."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


# --------------------------------------------------------------------------- the jobs


def full_sync_job(deps: Deps) -> None:
    """Cron: queue a full sync (one at a time) and start it now, or once the lease is free.

    A run already queued (e.g. by /reindex) is the one started, so its requester hears back.
    """
    with _guard(deps, JOB_FULL, FULL_ALERT, "Full sync"):
        queued = deps.runs.queue("full", SCHEDULER)
        if queued.run["status"] != "queued":
            log.info("%s: a full sync is already running (run %s)", JOB_FULL, queued.id)
            return
        try:
            _run_full(deps, queued.run)
        except AlreadyRunning as exc:  # the queued-runs job starts it when the lease frees
            log.info(
                "%s: queued as run %s, to start when the lease frees: %s", JOB_FULL, queued.id, exc
            )


def queue_first_full_sync(deps: Deps) -> Queued | None:
    """A fresh install (no full sync from Auth0 ever succeeded): queue one to start at once."""
    try:
        if deps.runs.ever_synced_from_auth0():
            return None
        queued = deps.runs.queue("full", FIRST_SYNC)
    except (WhoisError, SQLAlchemyError) as exc:
        log.warning("could not queue the first full sync: %s", exc)
        return None
    if queued.created:
        log.info("no full sync from Auth0 yet: run %s queued to start now", queued.id)
    return queued


def queued_runs_job(deps: Deps) -> None:
    """Start a queued full sync (from /reindex or an expired log checkpoint), if any."""
    with _guard(deps, JOB_QUEUE, FULL_ALERT, "Full sync"):
        deps.runs.expire_queued()
        queued = deps.runs.next_queued("full")
        if queued is not None:
            _run_full(deps, queued)


def _run_full(deps: Deps, queued: dict[str, Any] | None) -> None:
    adopt = int(queued["id"]) if queued else None
    who = str(queued["requested_by"]) if queued else SCHEDULER
    try:  # enrichment follows in slices (enrich_job), so log syncs are not held up for hours
        result = run_full_sync(deps, who, adopt=adopt, enrich=False)
        log.info("full sync %s", result.summary())
        _report_end(deps, result.run_id)
    except (AlreadyRunning, RunNotQueued):
        raise
    except BaseException:
        _report_end(deps, adopt)
        raise


def run_full_sync(
    deps: Deps,
    requested_by: str,
    *,
    adopt: int | None = None,
    enrich: bool = True,
    progress: Progress | None = None,
) -> FullSyncResult:
    """A full sync (then enrichment) with this process's shared pieces."""
    return full_sync(
        store=deps.store,
        runs=deps.runs,
        client_factory=deps.client,
        alerts=deps.alerts,
        settings=deps.settings,
        requested_by=requested_by,
        enrich=enrich,
        adopt=adopt,
        enricher=deps.enricher,
        progress=progress,
        poll_interval=deps.export_poll_seconds,
        sleep=deps.sleep,
        should_stop=deps.should_stop,
    )


def _report_end(deps: Deps, run_id: int | None) -> None:
    """Tell the on_full_sync_end hook how the run ended; its failure is only logged."""
    if deps.on_full_sync_end is None:
        return
    try:
        run = deps.runs.get(run_id) if run_id is not None else deps.runs.last("full")
        if run is not None:
            deps.on_full_sync_end(run)
    except Exception:
        log.exception("could not report the end of a full sync")


def log_sync_job(deps: Deps) -> None:
    """One incremental pass over Auth0 logs; an expired checkpoint queues a full sync.

    While an enrichment slice holds the lease, it waits a while for the slice to end.
    """
    with _guard(deps, JOB_LOGS, LOGS_ALERT, "Log sync"):
        deadline = time.monotonic() + deps.log_turn_wait().total_seconds()
        while True:
            try:
                incremental_sync(deps, SCHEDULER)
                return
            except AlreadyRunning as exc:
                holder = exc.run["kind"] if exc.run else None
                if holder != "enrich" or time.monotonic() >= deadline:
                    raise
            deps.sleep(deps.turn_poll)


def incremental_sync(deps: Deps, requested_by: str) -> SyncResult:
    """A log sync under the writer lease, alerting once on failure; queues a full sync if due."""
    with alerting(deps.alerts, LOGS_ALERT, "Log sync", requested_by) as outcome:
        with deps.runs.exclusive("incremental", requested_by) as run:
            outcome.run_id = run.id
            result = sync_logs(
                deps.store,
                deps.client(),
                run=run,
                alerts=deps.alerts,
                default_region=deps.settings.default_region,
            )
            run.counts.update(result.counts())
        outcome.summary = result.summary()
    if result.needs_full_sync:
        queued = deps.runs.queue("full", f"{requested_by} (log checkpoint expired)")
        log.warning("log checkpoint expired: full sync queued (run %s)", queued.id)
    return result


def enrich_now(
    deps: Deps,
    requested_by: str,
    *,
    everything: bool = False,
    progress: Callable[[int, int], None] | None = None,
    budget: timedelta | None = None,
) -> EnrichResult:
    """An enrichment run under the writer lease, alerting once on failure.

    With a `budget` the run ends (resumably) once that much time has passed.
    """
    deadline = time.monotonic() + budget.total_seconds() if budget is not None else None

    def should_stop() -> bool:
        return deps.should_stop() or (deadline is not None and time.monotonic() >= deadline)

    with alerting(deps.alerts, ENRICH_ALERT, "MFA enrichment", requested_by) as outcome:
        with deps.runs.exclusive("enrich", requested_by) as run:
            outcome.run_id = run.id
            result = enrich(
                deps.store,
                deps.client(),
                run,
                everything=everything,
                alerts=deps.alerts,
                progress=progress,
                should_stop=should_stop,
                default_region=deps.settings.default_region,
                clock=deps.store.clock,
            )
            run.counts.update(result.counts())
        outcome.summary = result.summary()
    return result


def enrich_job(deps: Deps) -> None:
    """Read MFA numbers that are due (queued re-fetches first), one time slice at a time.

    A queued full sync goes ahead of the next slice.
    """
    with _guard(deps, JOB_ENRICH, ENRICH_ALERT, "MFA enrichment"):
        queued = deps.runs.next_queued("full")
        if queued is not None:
            log.info("%s: waiting for queued full sync run %s", JOB_ENRICH, queued["id"])
            return
        # Nothing due (accounts waiting out a failed read's backoff are not): no lease, no run.
        if not deps.store.enrich_candidates(limit=1, due_at=deps.store.clock()):
            return
        enrich_now(deps, SCHEDULER, budget=deps.enrich_slice)


def enrich_in_slices(
    deps: Deps,
    requested_by: str,
    *,
    everything: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[EnrichResult, int]:
    """Enrichment in the scheduler's slices, the lease given back between them.

    Another writer (a log sync) takes its turn between two slices; while one holds the lease,
    this waits. Returns the combined result and how many slices (enrich runs) it took.
    """
    results: list[EnrichResult] = []
    waiting_for: str | None = None
    while True:
        before = sum(r.accounts + r.missing for r in results)
        report = _offset(progress, before) if progress is not None else None
        try:
            result = enrich_now(
                deps, requested_by, everything=everything, progress=report, budget=deps.enrich_slice
            )
        except AlreadyRunning as exc:
            if str(exc) != waiting_for:  # once per writer waited for, not every poll
                waiting_for = str(exc)
                log.info("MFA enrichment waits for its turn: %s", exc)
            deps.sleep(deps.turn_poll)
            continue
        waiting_for = None
        results.append(result)
        if result.complete:
            return _combined(results), len(results)
        deps.sleep(deps.slice_pause.total_seconds())  # the lease is free: another's turn


def _offset(progress: Callable[[int, int], None], before: int) -> Callable[[int, int], None]:
    """A slice's progress as progress of the whole walk."""
    return lambda done, total: progress(before + done, before + total)


def _combined(results: list[EnrichResult]) -> EnrichResult:
    """Several slices' results as one."""
    merged = EnrichResult()
    for f in fields(EnrichResult):
        if f.name != "complete":
            setattr(merged, f.name, sum(getattr(r, f.name) for r in results))
    merged.complete = bool(results) and results[-1].complete
    return merged


def stale_check_job(deps: Deps) -> None:
    """Alert once while the index has had no successful full sync for too long."""
    with _guard(deps, JOB_STALE, f"{SCHEDULER}.{JOB_STALE}", "Staleness check"):
        fresh = deps.store.freshness()
        last = fresh["last_full_sync"] or "never"
        if fresh["stale"]:
            hours = deps.settings.stale_after_hours
            text = (
                f"No successful full sync for more than {hours:g} h (last: {last}). Lookups "
                "still answer from the index as it is; `mfa-whois status` shows the last error."
            )
            deps.alerts.open(STALE_ALERT, "Phone index is stale", text, severity="warning")
        else:
            deps.alerts.close(STALE_ALERT, "Phone index is fresh again", f"Last full sync: {last}.")
        deps.alerts.close(
            f"{SCHEDULER}.{JOB_STALE}", "Staleness check works again", "It ran successfully."
        )


@contextmanager
def _guard(deps: Deps, job_id: str, key: str, what: str) -> Iterator[None]:
    """Nothing a job raises reaches APScheduler: skips are logged, failures logged and alerted."""
    try:
        yield
    except AlreadyRunning as exc:
        log.info("%s skipped: %s", job_id, exc)
    except Busy:
        log.info("%s skipped: busy (another writer holds the database)", job_id)
    except (RunNotQueued, ShuttingDown) as exc:
        log.info("%s: %s", job_id, exc)
    except Exception as exc:
        if is_busy(exc):  # not an incident: the database is busy with a long write
            log.info("%s skipped: busy (another writer holds the database)", job_id)
            return
        if isinstance(exc, WhoisError):
            log.warning("%s failed: %s", job_id, exc)
            reason = str(exc)
        else:
            log.exception("%s failed", job_id)
            reason = f"internal error ({type(exc).__name__}); see the logs"
        try:  # once per incident: a no-op when the job already opened `key` itself
            deps.alerts.open(key, f"{what} failed", f"Scheduled job {job_id} failed: {reason}.")
        except Exception:
            log.exception("could not record the alert for %s", job_id)


# --------------------------------------------------------------------------- the scheduler


def cron_trigger(expression: str) -> CronTrigger:
    """A UTC CronTrigger from a standard 5-field crontab line; ConfigError names the variable."""
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(
            f"{_CRON_VARIABLE}: expected 5 fields (minute hour day month weekday), "
            f"got {len(fields)} in {expression!r}"
        )
    # APScheduler 3.x numbers weekdays from Monday (0); crontab from Sunday (0 and 7).
    fields[4] = _crontab_weekdays(fields[4])
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=UTC)
    except ValueError as exc:
        raise ConfigError(f"{_CRON_VARIABLE}: {exc} in {expression!r}") from None


def _crontab_weekdays(text: str) -> str:
    """Crontab's day-of-week field with every number spelled as a weekday name."""
    if text in ("*", "?"):
        return "*"
    names: list[str] = []
    for part in text.split(","):
        if any(c.isalpha() for c in part):
            names.append(part.lower())  # names mean the same to both
            continue
        for day in _expand_weekdays(part):
            if _WEEKDAYS[day % 7] not in names:
                names.append(_WEEKDAYS[day % 7])
    return ",".join(names)


def _expand_weekdays(part: str) -> list[int]:
    """`3`, `1-5`, `*/2`, `1-5/2` -> crontab day numbers (0-7, Sunday is 0 and 7)."""
    span, _, step_text = part.partition("/")
    try:
        step = int(step_text) if step_text else 1
        if span == "*":
            low, high = 0, 6
        else:
            first, _, last = span.partition("-")
            low = int(first)
            high = int(last) if last else (6 if step_text else low)
    except ValueError:
        raise ConfigError(f"{_CRON_VARIABLE}: {part!r} is not a day of the week") from None
    if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high and step >= 1):
        raise ConfigError(f"{_CRON_VARIABLE}: {part!r} is not a day-of-week range within 0-7")
    return list(range(low, high + 1, step))


def build_scheduler(settings: Settings, deps: Deps, *, blocking: bool) -> BaseScheduler:
    """A scheduler with every job registered (ids fixed, replace_existing), not yet started."""
    settings.require("auth0_domain", "auth0_client_id", "auth0_client_secret")
    full = cron_trigger(settings.full_sync_cron)
    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = kind(timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=5)})

    def add(
        func: Callable[[Deps], None],
        job_id: str,
        trigger: Any,
        grace: timedelta,
        **first: datetime,  # next_run_time: also run once at start
    ) -> None:
        scheduler.add_job(
            func,
            trigger,
            args=(deps,),
            id=job_id,
            name=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(grace.total_seconds()),
            **first,
        )

    add(full_sync_job, JOB_FULL, full, FULL_SYNC_GRACE)
    if settings.log_poll_seconds > 0:
        every = timedelta(seconds=settings.log_poll_seconds)
        add(log_sync_job, JOB_LOGS, _every(every), every)
    add(enrich_job, JOB_ENRICH, _every(ENRICH_EVERY), ENRICH_EVERY)
    add(stale_check_job, JOB_STALE, _every(STALE_EVERY), STALE_EVERY)
    add(queued_runs_job, JOB_QUEUE, _every(QUEUE_EVERY), QUEUE_EVERY)
    add(limit_recovery_job, JOB_LIMITS, _every(LIMITS_EVERY), LIMITS_EVERY)
    retention = _every(RETENTION_EVERY)
    now = datetime.now(UTC)
    add(audit_retention_job, JOB_RETENTION, retention, RETENTION_EVERY, next_run_time=now)
    return scheduler


def _every(interval: timedelta) -> IntervalTrigger:
    return IntervalTrigger(seconds=int(interval.total_seconds()), timezone=UTC)


def run_clock(settings: Settings, deps: Deps) -> None:
    """Run the scheduler until SIGTERM/SIGINT (or deps.stopping is set); stop cleanly."""
    scheduler = build_scheduler(settings, deps, blocking=False)
    restore = _stop_on_signals(deps.stopping)
    queue_first_full_sync(deps)
    scheduler.start()
    jobs = ", ".join(job.id for job in scheduler.get_jobs())
    log.info("scheduler started (%s); full sync on %r UTC", jobs, settings.full_sync_cron)
    try:
        while not deps.stopping.wait(1.0):
            pass
    finally:
        deps.stopping.set()  # running jobs end at their next wait and close their runs
        log.info("scheduler stopping; waiting for running jobs to end")
        scheduler.shutdown(wait=True)
        restore()
        deps.close()
        log.info("scheduler stopped")


def _stop_on_signals(stopping: threading.Event) -> Callable[[], None]:
    """Set `stopping` on SIGTERM/SIGINT (main thread only); returns what restores the handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
