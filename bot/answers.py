"""What any chat surface asks, as plain functions of plain values: who may, the hourly limit,
the index lookup, live checks, the audit trail, the overview and the reindex queue.

A surface (bot/slack today; bot/teams and the HTTP API share this) turns its request into an
`Asker` and the text or button value, calls `Answers`, and renders what comes back. Refusals
are raised (`Refused` and its subclasses) and each surface words them. Nothing here knows a
Slack or Teams type. Every read of the index by a person is a lookup: limited, then audited.
Audit rows are written behind the answer (phoneindex.audit_trail), alerts on a side thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.dashboard import user_link
from bot.shared import Deferred, SharedClient, TimedCache
from jobs import limits
from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client
from jobs.live import LiveChecks, live_lookup, live_search
from jobs.runs import Runs
from jobs.schedule import cron_trigger
from jobs.telemetry import LOOKUP_SECONDS, LOOKUPS
from phoneindex.audit import Allowance, Audit
from phoneindex.audit_spool import default_spool_dir
from phoneindex.audit_trail import AuditTrail
from phoneindex.errors import ConfigError, DatabaseError, UnusableNumber, WhoisError
from phoneindex.numbers import to_e164
from phoneindex.settings import Settings
from phoneindex.store import Store, iso

log = logging.getLogger(__name__)

HELP_WORDS = frozenset({"", "help", "?", "-h", "--help"})
T = TypeVar("T")
WAITING_WORKERS = 32  # live checks in flight at once, across every surface of the process
# Threads that read the index for lookups. Few on purpose: a lookup is a fraction of a
# millisecond of work that holds the GIL, and each more thread taking turns at it costs context
# switches (with the event loop's 6 default threads, 8 concurrent API clients caused ~45 switches
# per lookup and a p99 twice today's: benchmarks/RESULTS.md). Two, so one slow read (a cold
# page, a PostgreSQL round trip) never holds up every other lookup.
INDEX_READERS = 2
OVERVIEW_SECONDS = 5.0  # the App Home overview is counted at most this often
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# live_lookup or live_search: (store, client, phone, *, default_region) -> lookup document
LiveCheck = Callable[..., dict[str, Any]]


@contextmanager
def _counted(asker: Asker) -> Iterator[None]:
    """Count a lookup that ends before the index answers (metrics: lookups by outcome)."""
    try:
        yield
    except (UnusableNumber, BadButton):
        LOOKUPS.labels(asker.roles.surface, "unusable").inc()
        raise
    except OverLimit:
        LOOKUPS.labels(asker.roles.surface, "over_limit").inc()
        raise
    except Refused:
        LOOKUPS.labels(asker.roles.surface, "refused").inc()
        raise
    except (DatabaseError, SQLAlchemyError):
        LOOKUPS.labels(asker.roles.surface, "unavailable").inc()
        raise


# ---------------------------------------------------------------------------- who asks


@dataclass(frozen=True)
class Roles:
    """Who may do what on one surface: empty `agents` = everyone may look up; admins as listed."""

    surface: str  # "slack", "teams", "api": the audit's via, and the prefix of requesters
    agents: frozenset[str]
    admins: frozenset[str]
    agents_variable: str  # the setting that lists agents, named in refusals
    admins_variable: str

    def may_look_up(self, user_id: str) -> bool:
        """Whether the user is an agent."""
        return not self.agents or user_id in self.agents

    def is_admin(self, user_id: str) -> bool:
        """Whether the user is an admin."""
        return user_id in self.admins

    def may_see_overview(self, user_id: str) -> bool:
        """Agents and admins see the index at a glance (runs, errors); others do not."""
        return self.may_look_up(user_id) or self.is_admin(user_id)


@dataclass(frozen=True)
class Asker:
    """A person (or an API key) on a surface, with their hourly lookup limit (0: none)."""

    roles: Roles
    user_id: str
    lookups_per_hour: int

    @property
    def requester(self) -> str:
        """How runs and alerts name them: `slack:U123`."""
        return limits.who(self.roles.surface, self.user_id)

    def via(self, what: str | None = None) -> str:
        """The audit's via: `slack`, `slack-live`, `slack-page`."""
        return self.roles.surface + (f"-{what}" if what else "")


# ---------------------------------------------------------------------------- refusals


class Refused(WhoisError):
    """A request refused before any account data was read; carries no data itself."""


class NotAnAgent(Refused):
    """The user is not on the surface's list of agents."""

    def __init__(self, asker: Asker) -> None:
        super().__init__(f"{asker.user_id} is not in {asker.roles.agents_variable}")
        self.user_id = asker.user_id


class NotAnAdmin(Refused):
    """The user is not on the surface's list of admins."""

    def __init__(self, asker: Asker) -> None:
        super().__init__(f"{asker.user_id} is not in {asker.roles.admins_variable}")
        self.user_id = asker.user_id


class OverLimit(Refused):
    """The user made more lookups in the last hour than their limit."""

    def __init__(self, user_id: str, allowance: Allowance) -> None:
        super().__init__(f"{user_id} is over the hourly lookup limit ({allowance.limit})")
        self.user_id = user_id
        self.allowance = allowance


class BadButton(Refused):
    """A button value that is not what this app puts there."""

    def __init__(self) -> None:
        super().__init__("unexpected button value")


class HelpAsked(WhoisError):
    """A lookup with no number, or `help`: the answer is the usage hint."""

    def __init__(self) -> None:
        super().__init__("usage")


# ---------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class WhoisAnswer:
    """A lookup document to show, with the dashboard link of each account."""

    doc: dict[str, Any]
    links: dict[str, str] = field(default_factory=dict)
    page: int = 0
    live: str | None = None  # "verify" or "search" when the answer comes from a live check


@dataclass(frozen=True)
class Queued:
    """The full sync that will do the work, and whether this request queued it."""

    run: dict[str, Any]
    created: bool


def button_phone(value: str) -> str:
    """The E.164 number a button carries; BadButton for anything else."""
    if not _E164.fullmatch(value):
        raise BadButton()
    return value


def next_full_sync(settings: Settings, now: datetime) -> str | None:
    """When MFA_WHOIS_FULL_SYNC_CRON fires next (None if it is malformed)."""
    try:
        trigger = cron_trigger(settings.full_sync_cron)
    except ConfigError:
        return None
    return iso(trigger.get_next_fire_time(None, now))


class Answers:
    """The shared rules; built once per process, used by every surface."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        runs: Runs,
        alerts: Alerts,
        trail: AuditTrail,
        *,
        auth0: Callable[[], Auth0Client] | None = None,
        owned: SharedClient | None = None,
        overview_seconds: float = OVERVIEW_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runs = runs
        self.alerts = alerts
        self.trail = trail
        self.auth0 = auth0
        self.clock = store.clock
        self._owned = owned  # the client this object made and closes
        self.alert_writes = Deferred()
        self._overview = TimedCache(self._fresh_overview, overview_seconds, monotonic)
        self._alerting: set[str] = set()  # actors with an over-limit alert queued
        self._lock = threading.Lock()
        self.live_checks = LiveChecks()
        # Work that may wait on Auth0 (live checks: seconds) runs on threads of its own, so the
        # event loop's default pool stays free for lookups, health checks and webhooks.
        self._waiting = ThreadPoolExecutor(WAITING_WORKERS, thread_name_prefix="answers-live")
        self._reading = ThreadPoolExecutor(INDEX_READERS, thread_name_prefix="answers-index")

    async def waiting_on_auth0(self, work: Callable[[], T]) -> T:
        """Run `work`, which may wait on the Management API, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._waiting, work)

    async def reading_index(self, work: Callable[[], T]) -> T:
        """Run `work`, a lookup in the index (no Auth0), off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._reading, work)

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        alerts: Alerts,
        *,
        runs: Runs | None = None,
        auth0: Callable[[], Auth0Client] | None = None,
        spool_dir: Path | None = None,
        overview_seconds: float = OVERVIEW_SECONDS,
    ) -> Answers:
        """Wire the audit trail (spooled next to the database by default) around an open index."""
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        audit = Audit(store.engine, secret_key=key, clock=store.clock)
        trail = AuditTrail(audit, spool_dir=spool_dir or default_spool_dir(store.engine))
        owned = None
        if auth0 is None and _auth0_configured(settings):
            owned = auth0 = SharedClient(lambda: Auth0Client.from_settings(settings))
        return cls(
            settings,
            store,
            runs or Runs(store.engine, store, clock=store.clock),
            alerts,
            trail,
            auth0=auth0,
            owned=owned,
            overview_seconds=overview_seconds,
        )

    # ------------------------------------------------------------------ lookups

    def whois(self, asker: Asker, text: str) -> WhoisAnswer:
        """Every account linked to the number typed in `text`, from the index."""
        if text.strip().lower() in HELP_WORDS and asker.roles.may_look_up(asker.user_id):
            raise HelpAsked()
        with _counted(asker):
            self.require_agent(asker)
            phone = to_e164(text, self.settings.default_region)
            read = lambda: self.store.lookup(phone, query=text.strip())  # noqa: E731
            return self._looked_up(asker, phone, asker.via(), read)

    def look_up(self, asker: Asker, text: str, *, live_until: float | None = None) -> WhoisAnswer:
        """A system's lookup of `text` (no help words); with `live_until` (monotonic), checked
        live until then, past it the index's answer saying so. Limited and audited alike."""
        with _counted(asker):
            self.require_agent(asker)
            phone = to_e164(text, self.settings.default_region)
            query = text.strip()
            if live_until is None:
                read = lambda: self.store.lookup(phone, query=query)  # noqa: E731
                return self._looked_up(asker, phone, asker.via(), read)
            client = self.auth0_client()
            checks, region = self.live_checks, self.settings.default_region
            read = lambda: checks.lookup_within(  # noqa: E731
                self.store, client, phone, live_until, query=query, default_region=region
            )
            return self._looked_up(asker, phone, asker.via("live"), read, live="verify")

    def page(self, asker: Asker, phone: str, page: int) -> WhoisAnswer:
        """Another page of an answer: a lookup like the first one (limited, audited)."""
        with _counted(asker):
            self.require_agent(asker)
            phone = button_phone(phone)
            if page < 0:
                raise BadButton()
            read = lambda: self.store.lookup(phone)  # noqa: E731
            return self._looked_up(asker, phone, asker.via("page"), read, page=page)

    def verify_live(self, asker: Asker, phone: str) -> WhoisAnswer:
        """Re-read every account linked to the number from the Management API (interactive)."""
        return self._live(asker, phone, live_lookup, "verify")

    def search_live(self, asker: Asker, phone: str) -> WhoisAnswer:
        """Search Auth0 users by the number (passwordless and profile numbers only)."""
        return self._live(asker, phone, live_search, "search")

    def _live(self, asker: Asker, phone: str, check: LiveCheck, kind: str) -> WhoisAnswer:
        with _counted(asker):
            self.require_agent(asker)
            phone = button_phone(phone)
            client = self.auth0_client()
            region = self.settings.default_region
            read = lambda: check(self.store, client, phone, default_region=region)  # noqa: E731
            return self._looked_up(asker, phone, asker.via("live"), read, live=kind)

    def _looked_up(
        self,
        asker: Asker,
        phone: str,
        via: str,
        read: Callable[[], dict[str, Any]],
        *,
        page: int = 0,
        live: str | None = None,
    ) -> WhoisAnswer:
        """Admit under the hourly limit, read, and queue the audit row (or refuse and alert)."""
        started = time.perf_counter()
        admission = self.trail.admit(asker.user_id, via, phone, asker.lookups_per_hour)
        if admission.ticket is None:
            self._over_limit(asker, admission.allowance, admission.first_refusal)
            raise OverLimit(asker.user_id, admission.allowance)
        try:
            doc = read()
        except BaseException:
            self.trail.cancel(admission.ticket)
            raise
        self.trail.record(admission.ticket, len(doc["accounts"]))
        surface = asker.roles.surface
        LOOKUPS.labels(surface, "found" if doc["accounts"] else "none").inc()
        if live is None:  # the index's own answer time; live checks wait on Auth0
            LOOKUP_SECONDS.labels(surface).observe(time.perf_counter() - started)
        domain = self.settings.auth0_domain
        links = {
            acc["user_id"]: link
            for acc in doc["accounts"]
            if (link := user_link(domain, acc["user_id"])) is not None
        }
        return WhoisAnswer(doc, links, page, live)

    def _over_limit(self, asker: Asker, allowance: Allowance, first: bool) -> None:
        """Tell supervisors once per incident, off the answer's path."""
        actor, surface = asker.user_id, asker.roles.surface
        with self._lock:
            if not first and actor in self._alerting:
                return  # one is on its way; the incident is open or about to be
            self._alerting.add(actor)

        def alert() -> None:
            with self._lock:
                self._alerting.discard(actor)
            limits.over_limit(
                self.alerts, surface=surface, actor=actor, allowance=allowance, first=first
            )

        self.alert_writes.submit("over-limit alert", alert)

    # ------------------------------------------------------------------ roles

    def require_agent(self, asker: Asker) -> None:
        """NotAnAgent unless the surface's agents include the user (or the list is empty)."""
        if not asker.roles.may_look_up(asker.user_id):
            raise NotAnAgent(asker)

    def require_admin(self, asker: Asker) -> None:
        """NotAnAdmin unless the user is one of the surface's admins."""
        if not asker.roles.is_admin(asker.user_id):
            raise NotAnAdmin(asker)

    def auth0_client(self) -> Auth0Client:
        """The shared Management API client; ConfigError naming the missing variable."""
        if self.auth0 is None:
            self.settings.require("auth0_domain", "auth0_client_id", "auth0_client_secret")
            raise ConfigError("live checks have no Auth0 client in this process")
        return self.auth0()

    # ------------------------------------------------------------------ overview, reindex

    def overview(self, asker: Asker) -> dict[str, Any]:
        """The index at a glance for agents and admins, counted at most every few seconds."""
        if not asker.roles.may_see_overview(asker.user_id):
            raise NotAnAgent(asker)
        return self._overview()

    def run_status(self, asker: Asker) -> dict[str, Any]:
        """`reindex status` for admins: the overview, counted now."""
        self.require_admin(asker)
        return self._fresh_overview()

    def queue_full_sync(self, asker: Asker) -> Queued:
        """Queue a full sync for the scheduler (or find the one already queued or running)."""
        self.require_admin(asker)
        queued = self.runs.queue("full", asker.requester)
        return Queued(queued.run, queued.created)

    def _fresh_overview(self) -> dict[str, Any]:
        """The status document plus freshness and when the next full sync is due."""
        doc = self.runs.status_document()
        doc["freshness"] = self.store.freshness()
        doc["next_full_sync"] = next_full_sync(self.settings, self.clock())
        doc["log_poll_seconds"] = self.settings.log_poll_seconds
        return doc

    # ------------------------------------------------------------------ waiting, closing

    def settle(self, timeout: float | None = None) -> None:
        """Wait for the audit rows and alerts queued so far."""
        self.trail.flush(timeout)
        self.alert_writes.flush(timeout)

    def close(self) -> None:
        """Finish the queued alerts, write (or spool) the audit rows, close our Auth0 client."""
        self.live_checks.close()
        # Live checks running now finish (each within its own time budget) and record their
        # audit rows before the trail closes; the ones not started are dropped.
        self._waiting.shutdown(wait=True, cancel_futures=True)
        self._reading.shutdown(wait=True, cancel_futures=True)  # their rows go in the trail
        self.alert_writes.close()
        self.trail.close()
        if self._owned is not None:
            self._owned.close()


def _auth0_configured(settings: Settings) -> bool:
    return bool(settings.auth0_domain and settings.auth0_client_id and settings.auth0_client_secret)
