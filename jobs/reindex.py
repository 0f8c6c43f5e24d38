"""Full sync: an Auth0 users-export job, downloaded and imported atomically, then enrichment."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client, Auth0Error, DownloadExpired, ExportJob
from jobs.enrich import enrich as read_mfa_numbers
from jobs.exports import EXPORT_FIELDS, ImportResult, import_export
from jobs.runs import (
    IMPORT_PREFIX,
    AlreadyRunning,
    Busy,
    RunHandle,
    RunNotQueued,
    Runs,
    ShuttingDown,
)
from jobs.sync import LogPosition, hand_off, note_log_position
from phoneindex.errors import WhoisError
from phoneindex.settings import Settings
from phoneindex.store import Store, iso, utcnow

log = logging.getLogger(__name__)

# progress(phase, done, total): "export" in percent of 100, "download" in bytes (total 0:
# unknown), "import" in bytes of the file, "enrich" in accounts.
Progress = Callable[[str, int, int], None]
FRESH_URLS = 3  # signed download links asked for in a row before giving up
MAX_POLL_INTERVAL = 30.0
HEARTBEAT_EVERY = timedelta(seconds=20)
FULL_ALERT = "sync.full"
ENRICH_ALERT = "sync.enrich"


class ExportFailed(WhoisError):
    """Auth0 gave up on the export job, or no longer offers its file."""

    def __init__(self, job_id: str, what: str = "failed") -> None:
        super().__init__(f"Auth0 export job {job_id} {what}")
        self.job_id = job_id


class ExportTimeout(WhoisError):
    """The export job did not complete within the bound."""

    def __init__(self, job_id: str, waited: timedelta) -> None:
        super().__init__(f"export job {job_id} did not complete within {_span(waited)}")
        self.job_id = job_id


class Enricher(Protocol):
    """The enrichment step run after a full import (jobs.enrich.enrich has this shape)."""

    def __call__(
        self,
        store: Store,
        client: Auth0Client,
        run: RunHandle,
        *,
        alerts: Alerts | None = ...,
        progress: Callable[[int, int], None] | None = ...,
        should_stop: Callable[[], bool] | None = ...,
    ) -> Any: ...


class _Beat:
    """Calls run.heartbeat() at most every HEARTBEAT_EVERY (progress callbacks come often).

    Paced on the monotonic clock: the lease it keeps lives in real (database) time.
    """

    def __init__(self, run: RunHandle) -> None:
        self.run = run
        self.every = min(HEARTBEAT_EVERY, run.runs.lease_ttl / 4).total_seconds()
        self.last: float | None = None

    def __call__(self) -> None:
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every:
            self.run.heartbeat()
            self.last = now


def reindex(
    store: Store,
    client: Auth0Client,
    run: RunHandle,
    *,
    connection_id: str | None = None,
    default_region: str | None = None,
    progress: Progress | None = None,
    poll_interval: float = 2.0,
    max_wait: timedelta = timedelta(hours=2),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utcnow,
    workdir: str | Path | None = None,
) -> ImportResult:
    """Export every user from Auth0 and replace the index's export part with them, atomically."""
    report = progress or _silent
    # Anything another source observes after this moment survives the import's sweep; the
    # index's freshness is this moment too, not the end of the import.
    observed_at = run.observed_at = clock()
    # Where the log stands before the job exists: the first log pull after the import starts
    # there, so nothing between the export's snapshot and that pull is lost.
    position = _log_position(store, client, clock)
    job = client.create_users_export(
        list(EXPORT_FIELDS), format="json", connection_id=connection_id
    )
    log.info("Auth0 export job %s created (run %s)", job.id, run.id)
    run.counts["export_job"] = job.id
    job = _wait_for(client, run, job, report, poll_interval, max_wait, sleep, clock)
    with tempfile.TemporaryDirectory(prefix="mfa-whois-", dir=workdir) as tmp:
        path = Path(tmp) / f"{job.id}.json.gz"
        size = _download(client, run, job, path, report)
        run.counts["download_bytes"] = size
        run.heartbeat()  # a full lease term for the import
        beat = _Beat(run)

        def on_import(done: int, total: int) -> None:
            # SQLite: the import's own transaction carries the heartbeat (see Runs.renew), so
            # the lease is fresh the moment the import commits, however long it took.
            report("import", done, total)
            beat()

        result = import_export(
            store, path, default_region=default_region, observed_at=observed_at, progress=on_import
        )
    run.counts.update(result.counts())
    if position is not None:
        run.counts["log_checkpoint"] = hand_off(store, position, clock)
    log.info("run %s: %s", run.id, result.summary())
    return result


def _log_position(
    store: Store, client: Auth0Client, clock: Callable[[], datetime]
) -> LogPosition | None:
    """The log position for the hand-off; None (logged) when Auth0 would not tell it."""
    try:
        return note_log_position(store, client, clock)
    except Auth0Error as exc:
        # The export is still worth having; the log pull then starts as it would without one.
        log.warning("could not read the newest Auth0 log before the export (%s): no hand-off", exc)
        return None


def import_file(
    store: Store,
    runs: Runs,
    path: str | Path,
    *,
    observed_at: datetime,
    default_region: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """`mfa-whois import FILE`: a full sync from a file, under the writer lease kept alive.

    The lease is renewed as the import goes (PostgreSQL: another process would otherwise take
    it over after its term and write at the same time; SQLite: see Runs.renew).
    """
    name = Path(path).name
    with runs.exclusive("full", f"{IMPORT_PREFIX}{name}") as run:
        beat = _Beat(run)

        def on_import(done: int, total: int) -> None:
            beat()
            if progress is not None:
                progress(done, total)

        result = import_export(
            store, path, default_region=default_region, observed_at=observed_at,
            progress=on_import,
        )  # fmt: skip
        run.counts = result.counts() | {"as_of": iso(observed_at)}
        run.observed_at = observed_at  # the index is as fresh as the export, not as now
    return result


def _wait_for(
    client: Auth0Client,
    run: RunHandle,
    job: ExportJob,
    report: Progress,
    poll_interval: float,
    max_wait: timedelta,
    sleep: Callable[[float], None],
    clock: Callable[[], datetime],
) -> ExportJob:
    """Poll the job until its file is ready; ExportFailed or ExportTimeout otherwise."""
    deadline = clock() + max_wait
    delay = poll_interval
    while True:
        if job.failed:
            raise ExportFailed(job.id)
        if job.completed and job.location:
            report("export", 100, 100)
            return job
        report("export", min(job.percentage_done or 0, 99), 100)
        if clock() >= deadline:
            raise ExportTimeout(job.id, max_wait)
        sleep(delay)
        delay = min(delay * 1.5, max(poll_interval, MAX_POLL_INTERVAL))
        run.heartbeat()
        job = client.get_job(job.id)


def _download(
    client: Auth0Client,
    run: RunHandle,
    job: ExportJob,
    dest: Path,
    report: Progress,
) -> int:
    """Stream the export file to `dest`, asking for a fresh signed link when one expires."""
    beat = _Beat(run)

    def on_bytes(written: int) -> None:
        beat()
        report("download", written, 0)

    for attempt in range(1, FRESH_URLS + 1):
        assert job.location is not None  # only completed jobs with a link get here
        try:
            return client.download(job.location, dest, on_bytes)
        except DownloadExpired:
            if attempt == FRESH_URLS:
                raise ExportFailed(
                    job.id, f"download link expired {FRESH_URLS} times in a row"
                ) from None
            log.info("export download link of %s expired; asking for a fresh one", job.id)
        job = client.get_job(job.id)
        if not job.completed or not job.location:
            raise ExportFailed(job.id, f"no longer offers its file (status {job.status})")
    raise AssertionError("unreachable")


def _silent(_phase: str, _done: int, _total: int) -> None:
    """The progress callback when nobody watches."""


def _span(value: timedelta) -> str:
    """A duration as people write it: `2 h`, `90 min`, `0.5 s`."""
    seconds = value.total_seconds()
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


# --------------------------------------------------------------------------- orchestration


@dataclass
class FullSyncResult:
    """What a full sync did: the full run, and the enrichment run after it (if any)."""

    run_id: int
    imported: ImportResult
    enrich_run_id: int | None = None
    enriched: Any = None

    def summary(self) -> str:
        """One line for people."""
        line = f"run {self.run_id}: {self.imported.summary()}"
        if self.enrich_run_id is None:
            return line
        done = _summary_of(self.enriched) or "done"
        return f"{line}; MFA enrichment (run {self.enrich_run_id}): {done}"


def full_sync(
    *,
    store: Store,
    runs: Runs,
    client_factory: Callable[[], Auth0Client],
    alerts: Alerts,
    settings: Settings,
    requested_by: str,
    enrich: bool = True,
    adopt: int | None = None,
    enricher: Enricher | None = None,
    progress: Progress | None = None,
    poll_interval: float = 2.0,
    max_wait: timedelta = timedelta(hours=2),
    sleep: Callable[[float], None] = time.sleep,
    should_stop: Callable[[], bool] | None = None,
) -> FullSyncResult:
    """Reindex under the writer lease, then enrich; alert once on failure, recover on success.

    `adopt` starts that queued run instead of recording a new one. The caller owns the client
    (the factory is called inside the run, so a configuration error is recorded on it).
    Raises AlreadyRunning when another writer holds the lease (no run is recorded then).
    `should_stop` lets enrichment end early when the process is stopping.
    """
    with runs.lease() as holder:
        with alerting(alerts, FULL_ALERT, "Full sync", requested_by, unchanged=True) as outcome:
            outcome.run_id = adopt
            with runs.exclusive("full", requested_by, adopt=adopt, holder=holder) as run:
                outcome.run_id = run.id
                client = client_factory()
                imported = reindex(
                    store,
                    client,
                    run,
                    connection_id=settings.auth0_connection_id,
                    default_region=settings.default_region,
                    progress=progress,
                    poll_interval=poll_interval,
                    max_wait=max_wait,
                    sleep=sleep,
                    clock=runs.clock,
                )
            outcome.summary = imported.summary()
        result = FullSyncResult(run.id, imported)
        step = (enricher or read_mfa_numbers) if enrich else None
        if step is not None:
            report = (lambda d, t: progress("enrich", d, t)) if progress is not None else None
            with alerting(alerts, ENRICH_ALERT, "MFA enrichment", requested_by) as outcome:
                with runs.exclusive("enrich", requested_by, holder=holder) as erun:
                    outcome.run_id = result.enrich_run_id = erun.id
                    result.enriched = step(
                        store, client, erun, alerts=alerts, progress=report, should_stop=should_stop
                    )
                outcome.summary = _summary_of(result.enriched)
    return result


@dataclass
class Outcome:
    """Filled in by the block under `alerting`: which run, and its one-line summary."""

    run_id: int | None = None
    summary: str = ""


@contextmanager
def alerting(
    alerts: Alerts, key: str, what: str, requested_by: str, *, unchanged: bool = False
) -> Iterator[Outcome]:
    """Open incident `key` if the block fails (not if stopped or refused); recover if it works."""
    outcome = Outcome()
    try:
        yield outcome
    except (AlreadyRunning, Busy, RunNotQueued, ShuttingDown):
        raise  # not started, or stopped: not an incident
    except Exception as exc:
        text = _failure_text(exc, outcome.run_id, requested_by)
        alerts.open(key, f"{what} failed", text + (" The index is unchanged." if unchanged else ""))
        raise
    which = f"Run {outcome.run_id}" if outcome.run_id is not None else "A run"
    done = f": {outcome.summary}" if outcome.summary else ""
    alerts.close(
        key, f"{what} works again", f"{which} requested by {requested_by} succeeded{done}."
    )


def _summary_of(result: Any) -> str:
    told = getattr(result, "summary", None)
    return str(told()) if callable(told) else ""


def _failure_text(exc: BaseException, run_id: int | None, requested_by: str) -> str:
    """One alert line: what failed and for whom; error texts never carry phone numbers."""
    reason = str(exc) if isinstance(exc, WhoisError) else f"internal error ({type(exc).__name__})"
    which = f"Run {run_id}" if run_id is not None else "A run"
    return f"{which} requested by {requested_by} failed: {reason}."
