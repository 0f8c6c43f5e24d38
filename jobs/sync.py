"""`mfa-whois sync`: one incremental pass over Auth0's logs from the stored checkpoint.

Pages are read in checkpoint mode (log_id order, following the `Link` header) and each page's
changes are applied before its checkpoint is stored: a crash in between re-applies that page on
the next run, which is harmless because the mapping is deterministic and the store idempotent.

A first run only records the newest log: history is a full reindex's job. A checkpoint Auth0
refuses, or one that has not been confirmed caught up for longer than Auth0 keeps logs (30 days
at most, by plan), means events may have been lost: supervisors are alerted, the checkpoint
restarts at the newest log, and the result asks the caller (CLI, scheduler) for a full reindex.

A full sync hands its export's place in the log over (note_log_position() before the export job
is created, hand_off() once its import succeeded), so the first pull after it applies every event
after the export's snapshot. A tenant log that is empty when a position is taken is recorded as
LOG_START: the next pull then reads from the oldest event on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from jobs.alerts import Alerts
from jobs.auth0 import Auth0RequestError, LogPage
from jobs.logs import count_type, event_date, events_changes
from jobs.runs import RunHandle
from phoneindex.db import writer
from phoneindex.store import Store, iso, utcnow

log = logging.getLogger(__name__)

CHECKPOINT = "auth0.log_checkpoint"
# When the checkpoint was last known good: the date of the last event read, or the time a read
# found nothing newer. Older than the log retention = events after it may be gone.
CHECKPOINT_AT = "auth0.log_checkpoint_at"
CHECKPOINT_EXPIRED_ALERT = "logs.checkpoint_expired"
MAX_LOG_RETENTION = timedelta(days=30)
# The checkpoint "before the first event": the tenant log was empty when it was taken.
LOG_START = ""
SUMMARY_TYPES = 4  # unmapped types named in the summary line, most frequent first
# What Auth0 (and our fake) answer when `from` names a log outside the retention period.
_REFUSED_CHECKPOINT = "invalid_query_string"


class LogReader(Protocol):
    """What the sync needs of the Management API client."""

    def get_logs(self, from_id: str | None, take: int = 100) -> LogPage: ...

    def get_oldest_log(self) -> LogPage: ...


@dataclass
class SyncResult:
    """What one pass did; `needs_full_sync` asks the caller for a full reindex."""

    pages: int = 0
    events: int = 0
    changes: int = 0
    ignored: int = 0
    bad: int = 0
    withheld_numbers: int = 0
    enrollments_removed: int = 0
    unknown_enrollments: int = 0  # enrollment deletes whose owner the index does not know
    unmapped_types: dict[str, int] = field(default_factory=dict)
    checkpoint: str | None = None
    first_run: bool = False
    needs_full_sync: bool = False

    def counts(self) -> dict[str, Any]:
        """Counts for the run record."""
        counts: dict[str, Any] = {
            "pages": self.pages,
            "events": self.events,
            "changes": self.changes,
            "ignored": self.ignored,
            "bad_events": self.bad,
            "withheld_numbers": self.withheld_numbers,
            "enrollments_removed": self.enrollments_removed,
            "unmapped_types": dict(self.unmapped_types),
        }
        if self.unknown_enrollments:
            counts["unknown_enrollments"] = self.unknown_enrollments
        if self.first_run:
            counts["first_run"] = True
        if self.needs_full_sync:
            counts["needs_full_sync"] = True
        return counts

    def summary(self) -> str:
        """One line for people."""
        if self.first_run:
            return "first log sync: starting from the newest Auth0 log (history comes from reindex)"
        if self.needs_full_sync:
            return "the Auth0 log checkpoint expired: restarted from the newest log; reindex needed"
        return (
            f"read {self.events:,} log events in {self.pages:,} pages, "
            f"applied {self.changes:,} changes"
            + (
                f"; {self.unknown_enrollments:,} enrollment deletes of an unknown owner "
                "(applied at the owner's next MFA read)"
                if self.unknown_enrollments
                else ""
            )
            + (f"; {self.bad:,} malformed events skipped" if self.bad else "")
            + (f"; not mapped: {self.unmapped_line()}" if self.unmapped_types else "")
        )

    def unmapped_line(self) -> str:
        """The most frequent unmapped types with their counts: `s 120, fp 3, +2 more types`."""
        ranked = sorted(self.unmapped_types.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{name} {n:,}" for name, n in ranked[:SUMMARY_TYPES])
        rest = len(ranked) - SUMMARY_TYPES
        return shown + (f", +{rest} more type{'s' if rest > 1 else ''}" if rest > 0 else "")


def sync_logs(
    store: Store,
    client: LogReader,
    *,
    run: RunHandle | None = None,
    alerts: Alerts | None = None,
    take: int = 100,
    max_pages: int | None = None,
    default_region: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    retention: timedelta = MAX_LOG_RETENTION,
) -> SyncResult:
    """Apply every Auth0 log event after the stored checkpoint, page by page."""
    result = SyncResult(checkpoint=store.get_checkpoint(CHECKPOINT))
    if result.checkpoint is None:
        result.first_run = True
        _restart_at_newest(store, client, clock, result)
        log.info("first log sync: checkpoint set to the newest Auth0 log")
    else:
        age = _checkpoint_age(store, clock)
        if age is not None and age > retention:
            why = f"was last confirmed {age.days} days ago, longer than Auth0 keeps logs"
            _expired(store, client, alerts, clock, result, why)
        else:
            _read_pages(store, client, run, alerts, take, max_pages, default_region, clock, result)
            _log_outcome(result)
    if run is not None:
        run.counts.update(result.counts())
    return result


def _read_pages(
    store: Store,
    client: LogReader,
    run: RunHandle | None,
    alerts: Alerts | None,
    take: int,
    max_pages: int | None,
    default_region: str | None,
    clock: Callable[[], datetime],
    result: SyncResult,
) -> None:
    """Follow the checkpoint until a page comes back empty (or `max_pages` were read)."""
    while max_pages is None or result.pages < max_pages:
        try:
            page = _next_page(client, result.checkpoint, take)
        except Auth0RequestError as exc:
            if exc.status != 400 or exc.code != _REFUSED_CHECKPOINT:
                raise
            why = f"was refused by Auth0 ({exc.status} {exc.code}): it is older than the retention"
            _expired(store, client, alerts, clock, result, why)
            return
        if not page.events:
            _save_checkpoint(store, result.checkpoint, clock())  # caught up as of now
            break
        previous = result.checkpoint
        _apply_page(store, page, result, default_region, clock)
        if run is not None:
            run.counts.update(result.counts())
            run.heartbeat()
        if result.checkpoint == previous:
            break  # the Link header did not move on: nothing more to follow


def _next_page(client: LogReader, checkpoint: str | None, take: int) -> LogPage:
    """The events after the checkpoint; from LOG_START, the oldest event (checkpoint mode then)."""
    if checkpoint == LOG_START:
        return client.get_oldest_log()
    return client.get_logs(checkpoint, take)


def _apply_page(
    store: Store,
    page: LogPage,
    result: SyncResult,
    default_region: str | None,
    clock: Callable[[], datetime],
) -> None:
    """Apply one page, then store its checkpoint (in that order: at-least-once)."""
    mapped = events_changes(page.events, default_region=default_region)
    if mapped.changes:
        stats = store.apply(mapped.changes)
        result.unknown_enrollments += stats.unknown_enrollments
    last = page.events[-1]
    checkpoint = page.next_from or _text(last.get("log_id")) or result.checkpoint
    _save_checkpoint(store, checkpoint, event_date(last) or clock())
    result.checkpoint = checkpoint
    result.pages += 1
    result.events += mapped.events
    result.changes += len(mapped.changes)
    result.ignored += mapped.ignored
    result.bad += mapped.bad
    result.withheld_numbers += mapped.withheld_numbers
    result.enrollments_removed += mapped.enrollments_removed
    for event_type, n in mapped.unmapped_types.items():
        count_type(result.unmapped_types, event_type, n)


def _expired(
    store: Store,
    client: LogReader,
    alerts: Alerts | None,
    clock: Callable[[], datetime],
    result: SyncResult,
    why: str,
) -> None:
    """Alert, restart from the newest log and ask for a full reindex."""
    log.warning("the Auth0 log checkpoint %s; restarting from the newest log", why)
    if alerts is not None:
        alerts.open(
            CHECKPOINT_EXPIRED_ALERT,
            "Auth0 log checkpoint expired",
            f"The stored Auth0 log checkpoint {why}. Log events after it may be lost, so phone "
            "number changes from that time can be missing from the index. Log sync restarted "
            "from the newest log; a full reindex (mfa-whois reindex) brings the index up to date.",
            severity="warning",
        )
    _restart_at_newest(store, client, clock, result)
    result.needs_full_sync = True


def _restart_at_newest(
    store: Store, client: LogReader, clock: Callable[[], datetime], result: SyncResult
) -> None:
    """Point the checkpoint at the newest log (an empty log: at its start)."""
    newest = _newest(client)
    _save_checkpoint(store, newest, clock())
    result.checkpoint = newest


def _newest(client: LogReader) -> str:
    """The newest log_id now, or LOG_START when the tenant log is empty."""
    newest = client.get_logs(None).next_from
    return LOG_START if newest is None else newest


# ----------------------------------------------------------------------------- hand-off


@dataclass(frozen=True)
class LogPosition:
    """Where the Auth0 log stood when an export job was created, and the checkpoint then."""

    newest: str  # the newest log_id, or LOG_START for an empty tenant log
    at: datetime  # the export holds the tenant as of this moment or later
    stored: str | None  # the log checkpoint stored at that moment


def note_log_position(
    store: Store, client: LogReader, clock: Callable[[], datetime] = utcnow
) -> LogPosition:
    """Record the newest log_id; call it before the export job is created, never after."""
    at = clock()
    return LogPosition(_newest(client), at, store.get_checkpoint(CHECKPOINT))


def hand_off(
    store: Store,
    position: LogPosition,
    clock: Callable[[], datetime] = utcnow,
    retention: timedelta = MAX_LOG_RETENTION,
) -> str:
    """After the export's import succeeded: make the log pull resume at or before its snapshot.

    The safe rule: the pull must resume at or before the export's snapshot. Resuming earlier
    only replays events (harmless: the mapping is deterministic and the store idempotent), and
    it keeps MFA changes the export cannot hold (exports carry no MFA numbers). Resuming later
    would lose every event in between. So a stored checkpoint that is still the one stored when
    the position was taken (it was the newest log or older then, hence at or before the
    snapshot) and still within the log retention is kept; otherwise (none yet, expired, or moved
    by another writer meanwhile, in a direction nobody can tell) the export's own position is
    stored. Returns which of the two happened, for the run record.
    """
    current = store.get_checkpoint(CHECKPOINT)
    age = _checkpoint_age(store, clock)
    fresh = age is None or age <= retention
    if current is not None and current == position.stored and fresh:
        log.info("log checkpoint kept: it is at or before the export's snapshot")
        return "kept"
    _save_checkpoint(store, position.newest, position.at)
    log.info("log checkpoint set to where the log stood when the export job was created")
    return "export snapshot"


def _save_checkpoint(store: Store, checkpoint: str | None, at: datetime) -> None:
    """Store the checkpoint and when it was last known good, in one transaction."""
    with store.engine.connect() as conn:
        with writer(conn).begin():
            store.set_checkpoint(CHECKPOINT, checkpoint, conn)
            store.set_checkpoint(CHECKPOINT_AT, iso(at), conn)


def _checkpoint_age(store: Store, clock: Callable[[], datetime]) -> timedelta | None:
    """How long ago the checkpoint was last known good; None when that is not recorded."""
    stamp = event_date({"date": store.get_checkpoint(CHECKPOINT_AT)})
    return None if stamp is None else clock() - stamp


def _log_outcome(result: SyncResult) -> None:
    log.info(
        "log sync: %d pages, %d events, %d changes, %d ignored",
        result.pages,
        result.events,
        result.changes,
        result.ignored,
    )
    if result.bad:
        log.warning("log sync skipped %d malformed events (no user_id or date)", result.bad)
    if result.withheld_numbers:
        log.warning(
            "log sync: %d phone numbers in log events were masked or unusable and not indexed "
            "(the accounts of MFA events among them are queued for a re-read)",
            result.withheld_numbers,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
