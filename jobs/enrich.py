"""MFA phone numbers per account (authentication-methods) -> changes: paced, resumable, ordered.

Reads run on a few worker threads so enrichment keeps the client's pacer busy (Auth0 answers in
100-300 ms; one thread alone would send far below MFA_WHOIS_AUTH0_MAX_RPS). Results are applied
in the order the accounts were taken, `batch_size` at a time, so what is applied is always a
prefix of the walk: an interrupted run loses at most the reads in flight, and the `--all` cursor
(the last account applied) is exact.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client, Auth0Error, Auth0NotFound, AuthenticationMethod
from jobs.runs import RunHandle
from phoneindex.changes import AccountDeleted, Method, MfaPhone, MfaPhonesReplaced, Source
from phoneindex.numbers import is_masked, to_e164_or_none
from phoneindex.store import EnrichTarget, Store, utcnow

log = logging.getLogger(__name__)

ALL_CURSOR = "enrich.all.cursor"
MASKED_ALERT = "mfa.masked"
MASKED_FLAG = "disable_management_api_sms_obfuscation"
PHONE_TYPES = frozenset({"phone", "sms", "voice"})  # "sms"/"voice": older Guardian shapes
HEARTBEAT_EVERY = timedelta(seconds=20)
QUEUE_EVERY = timedelta(seconds=15)
_WAIT_SLICE = 5.0  # seconds; heartbeats continue while a read waits on the pacer

# User-facing words (alerts) in one place.
MASKED_TITLE = "MFA phone numbers come back masked"
UNMASKED_TITLE = "MFA phone numbers are readable again"
UNMASKED_TEXT = "A complete MFA enrichment left no masked numbers in the index."


def masked_text(count: int) -> str:
    """The masked-numbers alert: how many, and the exact tenant setting that fixes it."""
    return (
        f"Auth0 returns MFA phone numbers masked: {count:,} MFA numbers could not be indexed, "
        "so lookups cannot find those accounts by their MFA number. "
        f"Fix: set the tenant flag `{MASKED_FLAG}` to true "
        f'(PATCH /api/v2/tenants/settings {{"flags": {{"{MASKED_FLAG}": true}}}}, '
        "scope update:tenant_settings), then run `mfa-whois enrich --all`."
    )


# --------------------------------------------------------------------------- methods -> change


@dataclass(frozen=True, slots=True)
class PhoneRead:
    """The phone authenticators of one account: usable numbers, and what could not be used."""

    phones: tuple[MfaPhone, ...]
    masked: int = 0
    unusable: int = 0


def read_phones(methods: Iterable[AuthenticationMethod]) -> PhoneRead:
    """Phone authenticators as numbers; masked values are counted, never indexed."""
    found: dict[str, MfaPhone] = {}
    masked = unusable = 0
    for item in methods:
        if item.type not in PHONE_TYPES:
            continue
        raw = item.phone_number
        if raw and is_masked(raw):
            masked += 1
            continue
        phone = to_e164_or_none(raw)
        if phone is None:
            unusable += 1
            continue
        mfa = MfaPhone(phone, _method_of(item), item.confirmed)
        prior = found.get(phone)
        # One number, two authenticators (e.g. re-enrolled): keep the confirmed one.
        if prior is None or (mfa.confirmed and not prior.confirmed):
            found[phone] = mfa
    return PhoneRead(tuple(found.values()), masked, unusable)


def methods_to_change(
    user_id: str,
    methods: list[AuthenticationMethod],
    observed_at: datetime,
    fetched_key: str | None,
    *,
    source: Source = "authenticators",
) -> MfaPhonesReplaced:
    """The account's complete set of MFA numbers as one change."""
    return _replaced(user_id, read_phones(methods), observed_at, fetched_key, source)


def _replaced(
    user_id: str, read: PhoneRead, observed_at: datetime, fetched_key: str | None, source: Source
) -> MfaPhonesReplaced:
    return MfaPhonesReplaced(
        user_id, read.phones, observed_at, source=source, masked=read.masked,
        fetched_key=fetched_key,
    )  # fmt: skip


def _as_method(value: str | None) -> Method | None:
    if value == "sms":
        return "sms"
    if value == "voice":
        return "voice"
    return None


def _method_of(item: AuthenticationMethod) -> Method:
    """sms or voice: the preferred method, else the (legacy) type, else the sub-methods."""
    chosen = _as_method(item.preferred_method) or _as_method(item.type)
    if chosen is not None:
        return chosen
    if "sms" not in item.methods and "voice" in item.methods:
        return "voice"
    return "sms"


# --------------------------------------------------------------------------- results


@dataclass
class EnrichResult:
    """What an enrichment (or a refetch pass) applied."""

    accounts: int = 0  # accounts whose authentication methods were read and applied
    linked: int = 0  # MFA numbers those accounts have (linked or re-confirmed)
    unlinked: int = 0  # MFA numbers the accounts no longer have
    masked: int = 0  # numbers Auth0 returned masked (not indexed)
    unusable: int = 0  # phone authenticators without a usable number
    missing: int = 0  # accounts Auth0 no longer has (404): removed from the index
    errors: int = 0  # reads that failed and stopped the run
    queued: int = 0  # of `accounts` + `missing`, served from the re-fetch queue
    complete: bool = False  # the walk reached its end (not stopped, not failed)

    def counts(self) -> dict[str, Any]:
        """Counts for the run record."""
        return {
            "accounts": self.accounts, "linked": self.linked, "unlinked": self.unlinked,
            "masked": self.masked, "unusable": self.unusable, "missing": self.missing,
            "errors": self.errors, "queued": self.queued,
        }  # fmt: skip

    def summary(self) -> str:
        """One line for people."""
        line = (
            f"read MFA methods of {self.accounts:,} accounts: {self.linked:,} numbers linked, "
            f"{self.unlinked:,} unlinked; {self.missing:,} accounts gone from Auth0 removed"
        )
        if self.masked:
            line += f"; {self.masked:,} masked numbers not indexed (set {MASKED_FLAG})"
        if self.unusable:
            line += f"; {self.unusable:,} unusable numbers skipped"
        return line if self.complete else line + "; stopped before the end (run again to continue)"


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True, slots=True)
class _Read:
    target: EnrichTarget
    change: MfaPhonesReplaced | AccountDeleted
    unusable: int
    walked: bool  # from the candidate walk (moves the --all cursor), not the re-fetch queue


class _Pipeline:
    """Reads on worker threads, applies in the order taken, `batch_size` reads per transaction."""

    def __init__(
        self,
        store: Store,
        client: Auth0Client,
        *,
        clock: Callable[[], datetime],
        batch_size: int,
        workers: int,
        run: RunHandle | None = None,
        progress: Callable[[int, int], None] | None = None,
        total: int = 0,
        cursor: str | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.batch_size = max(1, batch_size)
        self.workers = max(1, workers)
        self.run_handle = run
        self.progress = progress
        self.total = total
        self.cursor = cursor
        self.result = EnrichResult()
        self.done = 0
        self._window: deque[Future[_Read]] = deque()
        self._ready: list[_Read] = []
        self._beat = clock()

    def run(
        self, targets: Iterable[tuple[EnrichTarget, bool]], should_stop: Callable[[], bool]
    ) -> bool:
        """Read every target unless stopped; True when the targets ran out."""
        complete = True
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="enrich")
        try:
            for target, walked in targets:
                if should_stop():
                    complete = False
                    break
                self._window.append(pool.submit(self._read, target, walked))
                while len(self._window) >= 2 * self.workers:
                    self._take()
            while self._window:
                self._take()
            self._flush()
        except Auth0Error:
            self._cancel()  # reads after the failed one are not a prefix of the walk: drop them
            self._flush()  # keep what was read before the failure
            raise
        except KeyboardInterrupt:
            self._salvage()
            self._flush()
            raise
        except BaseException:  # database trouble, a lost lease: write nothing more
            self._cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return complete

    def _read(self, target: EnrichTarget, walked: bool) -> _Read:
        """One account's authentication methods (on a worker thread)."""
        try:
            methods = self.client.get_authentication_methods(target.user_id, priority="bulk")
        except Auth0NotFound:
            return _Read(target, AccountDeleted(target.user_id, self.clock()), 0, walked)
        read = read_phones(methods)
        change = _replaced(target.user_id, read, self.clock(), target.mfa_key, "authenticators")
        return _Read(target, change, read.unusable, walked)

    def _take(self) -> None:
        """Wait for the oldest read in flight and queue it for the next apply."""
        future = self._window[0]
        while not wait([future], timeout=_WAIT_SLICE).done:
            self._heartbeat()
        try:
            self._ready.append(future.result())
        except Auth0Error:
            self.result.errors += 1
            raise
        self._window.popleft()  # only now: an interruption may duplicate a read, never lose one
        self.done += 1
        self._report()
        if len(self._ready) >= self.batch_size:
            self._flush()
        self._heartbeat()

    def _flush(self) -> None:
        """Apply the reads taken so far in one transaction; move the cursor past them."""
        if self._ready:
            stats = self.store.apply([r.change for r in self._ready])
            self._count(self._ready, stats.unlinks)
            walked = [r.target.user_id for r in self._ready if r.walked]
            self._ready = []
            if self.cursor is not None and walked:
                self.store.set_checkpoint(self.cursor, walked[-1])
        if self.run_handle is not None:
            self.run_handle.counts = self.result.counts()

    def _count(self, reads: list[_Read], unlinked: int) -> None:
        result = self.result
        result.unlinked += unlinked
        for r in reads:
            result.queued += not r.walked
            if isinstance(r.change, AccountDeleted):
                result.missing += 1
                continue
            result.accounts += 1
            result.linked += len(r.change.phones)
            result.masked += r.change.masked
            result.unusable += r.unusable

    def _salvage(self) -> None:
        """Ctrl-C: cancel reads not started; keep the finished prefix of those under way."""
        for future in self._window:
            future.cancel()
        for future in self._window:
            if future.cancelled() or future.exception() is not None:  # exception() waits
                break
            self._ready.append(future.result())
        self._window.clear()

    def _cancel(self) -> None:
        for future in self._window:
            future.cancel()
        self._window.clear()

    def _heartbeat(self) -> None:
        """Renew the writer lease when due (raises LeaseLost if another process took it)."""
        now = self.clock()
        if self.run_handle is not None and now - self._beat >= HEARTBEAT_EVERY:
            self.run_handle.heartbeat()
            self._beat = now

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


def _targets(
    store: Store,
    *,
    everything: bool,
    after: str | None,
    page_size: int,
    clock: Callable[[], datetime],
) -> Iterator[tuple[EnrichTarget, bool]]:
    """Queued re-fetches first (checked again every QUEUE_EVERY), then the candidate walk."""
    served: set[str] = set()
    due = clock()

    def queued() -> Iterator[tuple[EnrichTarget, bool]]:
        nonlocal due
        if clock() < due:
            return
        due = clock() + QUEUE_EVERY
        for target in store.refetch_queue(page_size):
            if target.user_id not in served:  # once per run, even if the request stays
                served.add(target.user_id)
                yield target, False

    while True:
        yield from queued()
        page = store.enrich_candidates(after=after, limit=page_size, everything=everything)
        for target in page:
            yield from queued()
            if target.user_id not in served:  # read from the queue already (counted there)
                yield target, True
        if len(page) < page_size:
            return
        after = page[-1].user_id


# --------------------------------------------------------------------------- entry points


def _never() -> bool:
    return False


def enrich(
    store: Store,
    client: Auth0Client,
    run: RunHandle | None,
    *,
    everything: bool = False,
    alerts: Alerts | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
    batch_size: int = 25,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 8,
    page_size: int = 500,
    restart: bool = False,
) -> EnrichResult:
    """Read the MFA numbers of accounts whose MFA changed (all with MFA when `everything`).

    Queued re-fetches go first. With `everything`, an interrupted run continues after the last
    account applied unless `restart`. An Auth0 failure other than 404 stops the run after
    applying what was read before it.
    """
    after = None if not everything or restart else store.get_checkpoint(ALL_CURSOR)
    if after is not None:
        log.info("enrich --all continues after an interrupted run")
    pipeline = _Pipeline(
        store, client, clock=clock, batch_size=batch_size, workers=workers, run=run,
        progress=progress, total=store.count_enrich_candidates(everything=everything),
        cursor=ALL_CURSOR if everything else None,
    )  # fmt: skip
    targets = _targets(store, everything=everything, after=after, page_size=page_size, clock=clock)
    result = pipeline.result
    try:
        result.complete = pipeline.run(targets, should_stop or _never)
    except Auth0Error:
        _masked_alert(store, alerts, result)
        raise
    if result.complete:
        if everything:
            store.set_checkpoint(ALL_CURSOR, None)
        if progress is not None:
            progress(pipeline.done, pipeline.done)
    _masked_alert(store, alerts, result)
    if run is not None:
        run.counts = result.counts()
    log.info("enrich: %s", result.summary())
    return result


def _masked_alert(store: Store, alerts: Alerts | None, result: EnrichResult) -> None:
    """Alert once when numbers come back masked; recover when a complete run leaves none."""
    # Database work only when this run saw masked numbers, or might close the incident.
    if result.masked:
        log.warning("%d MFA numbers came back masked; set %s", result.masked, MASKED_FLAG)
    if alerts is None:
        return
    # The index-wide count (a table scan) only when the alert's state may change.
    if result.masked and not alerts.is_open(MASKED_ALERT):
        count = max(int(store.summary()["masked_mfa_numbers"]), result.masked)
        alerts.open(MASKED_ALERT, MASKED_TITLE, masked_text(count), severity="warning")
    elif not result.masked and result.complete and alerts.is_open(MASKED_ALERT):
        if not store.summary()["masked_mfa_numbers"]:
            alerts.close(MASKED_ALERT, UNMASKED_TITLE, UNMASKED_TEXT)
