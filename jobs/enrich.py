"""Accounts read per account -> changes: paced, resumable, ordered.

Two kinds of read. An account whose `multifactor` changed (the walk) needs only its MFA numbers:
one authentication-methods call (its profile came with the export or event that showed the
change). An account queued for a re-read (`RefetchRequested`: an event said something changed
without saying what) is read whole: `GET /api/v2/users/{id}` (profile, root number, linked
identities, `multifactor`) and, when it has MFA, its authentication methods; a 404 deletes it.
A read is stamped before its first call, so an event that happens while Auth0 answers wins.
One account whose reads keep failing is skipped (and queued again), never a wall for the rest.

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
from jobs.auth0 import (
    Auth0Client,
    Auth0Error,
    Auth0NotFound,
    Auth0RequestError,
    Auth0ResponseError,
    Auth0Unavailable,
    AuthenticationMethod,
    Priority,
)
from jobs.exports import UserMapper
from jobs.runs import RunHandle
from phoneindex.changes import (
    AccountDeleted,
    Change,
    Method,
    MfaPhone,
    MfaPhonesReplaced,
    PhoneLinked,
    ProfilePhone,
    ProfilePhonesReplaced,
    RefetchRequested,
    Source,
    mfa_key,
)
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
# Failures of one account (its data, or Auth0 failing on it); others stop the run at once.
ACCOUNT_FAILURES = (Auth0RequestError, Auth0ResponseError, Auth0Unavailable, ValueError)
# This many failed reads in a row is Auth0 in trouble, not one account: stop the run.
FAILURES_IN_A_ROW = 3

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
        mfa = MfaPhone(phone, _method_of(item), item.confirmed, item.id or None)
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


# --------------------------------------------------------------------------- one account whole


@dataclass(frozen=True, slots=True)
class AccountRead:
    """One account read whole: its changes (or its deletion) and what could not be used."""

    changes: tuple[Change, ...]
    deleted: bool = False
    mfa: MfaPhonesReplaced | None = None
    unusable: int = 0


def read_account(
    client: Auth0Client,
    user_id: str,
    observed_at: datetime,
    *,
    had_mfa: bool,
    priority: Priority,
    source: Source,
    mfa_source: Source = "authenticators",
    default_region: str | None = None,
) -> AccountRead:
    """`GET /api/v2/users/{id}` and, with MFA, its authentication methods, as changes.

    The user object gives the profile, the root number and linked SMS identities (all of the
    account's passwordless/profile numbers: the rest are unlinked). Authentication methods are
    read when the user object names MFA providers or the index `had_mfa`; otherwise there are
    no MFA numbers to read. A 404 is the account deleted. `observed_at` must be taken before
    the first call. `source` marks the passwordless/profile numbers, `mfa_source` the MFA ones.
    Raises ValueError for a user object with an unreadable field.
    """
    try:
        user = client.get_user(user_id, priority=priority)
        mapper = UserMapper(observed_at, default_region)
        seen, phones = mapper.read(user)
        if seen.user_id != user_id:
            raise ValueError("user_id differs from the one asked for")
        profile = profile_changes(
            user_id, phones, observed_at, source, complete=not mapper.unusable_numbers
        )
        if not (seen.multifactor or had_mfa):
            return AccountRead((seen, *profile), unusable=mapper.unusable_numbers)
        methods = client.get_authentication_methods(user_id, priority=priority)
    except Auth0NotFound:
        return AccountRead((AccountDeleted(user_id, observed_at),), deleted=True)
    read = read_phones(methods)
    key = mfa_key(seen.multifactor, seen.multifactor_last_modified)
    mfa = _replaced(user_id, read, observed_at, key, mfa_source)
    return AccountRead(
        (seen, *profile, mfa), mfa=mfa, unusable=mapper.unusable_numbers + read.unusable
    )


def profile_changes(
    user_id: str, phones: list[ProfilePhone], at: datetime, source: Source, *, complete: bool
) -> tuple[Change, ...]:
    """The user object's numbers: the complete set, or (one was unusable) only those we read.

    A number we could not read (e.g. national format, no default region) may be one the index
    knows: without the complete set, nothing is unlinked.
    """
    if complete:
        return (ProfilePhonesReplaced(user_id, tuple(phones), at, source),)
    return tuple(
        PhoneLinked(user_id, p.phone, p.kind, source, at, None, p.confirmed, p.identity)
        for p in phones
    )


# --------------------------------------------------------------------------- results


@dataclass
class EnrichResult:
    """What an enrichment (or a re-read pass) applied."""

    accounts: int = 0  # accounts read and applied (MFA numbers only, or whole)
    reread: int = 0  # of `accounts`, read whole (user object and MFA numbers): queued re-reads
    linked: int = 0  # MFA numbers those accounts have (linked or re-confirmed)
    unlinked: int = 0  # numbers the accounts no longer have (MFA, passwordless, profile)
    masked: int = 0  # numbers Auth0 returned masked (not indexed)
    unusable: int = 0  # numbers that are not usable phone numbers
    missing: int = 0  # accounts Auth0 no longer has (404): removed from the index
    errors: int = 0  # reads that failed (the account is queued to be read again)
    queued: int = 0  # of `accounts` + `missing` + `errors`, served from the re-read queue
    complete: bool = False  # the walk reached its end (not stopped, not failed)

    def counts(self) -> dict[str, Any]:
        """Counts for the run record."""
        return {
            "accounts": self.accounts, "reread": self.reread, "linked": self.linked,
            "unlinked": self.unlinked, "masked": self.masked, "unusable": self.unusable,
            "missing": self.missing, "errors": self.errors, "queued": self.queued,
        }  # fmt: skip

    def summary(self) -> str:
        """One line for people."""
        line = (
            f"read {self.accounts:,} accounts ({self.reread:,} re-read whole, the rest their MFA "
            f"methods): {self.linked:,} MFA numbers linked, {self.unlinked:,} numbers unlinked; "
            f"{self.missing:,} accounts gone from Auth0 removed"
        )
        if self.errors:
            line += f"; {self.errors:,} reads failed (queued to be read again)"
        if self.masked:
            line += f"; {self.masked:,} masked numbers not indexed (set {MASKED_FLAG})"
        if self.unusable:
            line += f"; {self.unusable:,} unusable numbers skipped"
        return line if self.complete else line + "; stopped before the end (run again to continue)"


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True, slots=True)
class _Read:
    target: EnrichTarget
    changes: tuple[Change, ...]
    walked: bool  # from the candidate walk (moves the --all cursor), not the re-read queue
    whole: bool = False  # the user object was read too
    deleted: bool = False
    mfa: MfaPhonesReplaced | None = None
    unusable: int = 0
    failed: Exception | None = None


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
        default_region: str | None = None,
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
        self.region = default_region
        self.result = EnrichResult()
        self.done = 0
        self.failures_in_row = 0
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
        """One account, on a worker thread: whole when a re-read is queued, else its MFA."""
        user_id = target.user_id
        at = self.clock()  # before the call: an event while Auth0 answers is newer than the read
        try:
            if target.refetch_requested_at is not None:
                got = read_account(
                    self.client, user_id, at, had_mfa=target.has_mfa, priority="bulk",
                    source="live", default_region=self.region,
                )  # fmt: skip
                return _Read(target, got.changes, walked, True, got.deleted, got.mfa, got.unusable)
            methods = self.client.get_authentication_methods(user_id, priority="bulk")
        except Auth0NotFound:
            return _Read(target, (AccountDeleted(user_id, at),), walked, deleted=True)
        except ACCOUNT_FAILURES as exc:
            log.warning("enrich: reading an account failed, queued again: %s", exc)
            return _Read(target, (RefetchRequested(user_id, at),), walked, failed=exc)
        read = read_phones(methods)
        change = _replaced(user_id, read, at, target.mfa_key, "authenticators")
        return _Read(target, (change,), walked, mfa=change, unusable=read.unusable)

    def _take(self) -> None:
        """Wait for the oldest read in flight and queue it for the next apply."""
        future = self._window[0]
        while not wait([future], timeout=_WAIT_SLICE).done:
            self._heartbeat()
        try:
            read = future.result()
        except Auth0Error:
            self.result.errors += 1
            raise
        self._ready.append(read)
        self._window.popleft()  # only now: an interruption may duplicate a read, never lose one
        self.done += 1
        self._report()
        self._trip(read.failed)
        if len(self._ready) >= self.batch_size:
            self._flush()
        self._heartbeat()

    def _trip(self, failed: Exception | None) -> None:
        """Raise after FAILURES_IN_A_ROW Auth0 failures: one bad account is skipped, not more."""
        if not isinstance(failed, Auth0Error):
            self.failures_in_row = 0
            return
        self.failures_in_row += 1
        if self.failures_in_row >= FAILURES_IN_A_ROW:
            raise failed

    def _flush(self) -> None:
        """Apply the reads taken so far in one transaction; move the cursor past them."""
        if self._ready:
            stats = self.store.apply([c for r in self._ready for c in r.changes])
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
            result.unusable += r.unusable
            if r.failed is not None:
                result.errors += 1
            elif r.deleted:
                result.missing += 1
            else:
                result.accounts += 1
                result.reread += r.whole
            if r.mfa is not None:
                result.linked += len(r.mfa.phones)
                result.masked += r.mfa.masked

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
    """Queued re-reads first (checked again every QUEUE_EVERY), then the candidate walk."""
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
    default_region: str | None = None,
) -> EnrichResult:
    """Read the MFA numbers of accounts whose MFA changed (all with MFA when `everything`).

    Queued re-reads go first, each account read whole. With `everything`, an interrupted run
    continues after the last account applied unless `restart`. A read that fails for one
    account is counted and queued again; FAILURES_IN_A_ROW of them, or an Auth0 failure that
    concerns every call (credentials, rate limit), stop the run after applying what was read.
    """
    after = None if not everything or restart else store.get_checkpoint(ALL_CURSOR)
    if after is not None:
        log.info("enrich --all continues after an interrupted run")
    pipeline = _Pipeline(
        store, client, clock=clock, batch_size=batch_size, workers=workers, run=run,
        progress=progress, total=store.count_enrich_candidates(everything=everything),
        cursor=ALL_CURSOR if everything else None, default_region=default_region,
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
