"""What every Slack listener gets: settings, the index, runs, alerts, the audit trail."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import OperationalError

from bot.slack.notifier import SlackNotifier, sync_client
from bot.slack.reindex import RunReporter
from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client
from jobs.runs import Runs
from phoneindex.audit import Audit
from phoneindex.settings import Settings
from phoneindex.store import Store, utcnow

log = logging.getLogger(__name__)

LOCKED_ATTEMPTS = 10  # times SQLite's busy timeout (30 s each) a deferred write waits


class Deferred:
    """Writes that need not hold up an answer (audit rows, alerts): one thread, in order.

    On SQLite a full import holds the write lock for its whole transaction; a lookup answered
    from the index must not wait behind it for its audit row. Failures are logged.
    """

    def __init__(self, *, attempts: int = LOCKED_ATTEMPTS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack-writes")
        self._attempts = attempts

    def submit(self, what: str, work: Callable[[], object]) -> None:
        """Run `work` after what was submitted before it."""

        def done(future: Future[object]) -> None:
            exc = future.exception()
            if exc is not None:
                log.error("deferred %s failed: %s", what, type(exc).__name__, exc_info=exc)

        def patiently() -> object:
            # A SQLite import holds the write lock for its whole transaction, which can outlast
            # one busy timeout (30 s): wait for it again rather than lose the write.
            for attempt in range(1, self._attempts + 1):
                try:
                    return work()
                except OperationalError as exc:
                    if attempt == self._attempts or "locked" not in str(exc.orig):
                        raise
                    log.info("deferred %s: database locked, waiting again (%d)", what, attempt)
            raise AssertionError("unreachable")

        try:
            self._pool.submit(patiently).add_done_callback(done)
        except RuntimeError:  # shutting down: do it now rather than lose it
            work()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is done."""
        self._pool.submit(lambda: None).result(timeout)

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._pool.shutdown(wait=True)


class SharedClient:
    """One Management API client for the process, made on first use (one token, one pacer)."""

    def __init__(self, factory: Callable[[], Auth0Client]) -> None:
        self._factory = factory
        self._client: Auth0Client | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Auth0Client:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def close(self) -> None:
        """Close the client if it was made."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


@dataclass
class SlackContext:
    """The pieces the Slack surfaces share; built once per process."""

    settings: Settings
    store: Store
    runs: Runs
    alerts: Alerts
    audit: Audit
    reporter: RunReporter
    auth0: Callable[[], Auth0Client] | None = None  # the shared client; None: not configured
    clock: Callable[[], datetime] = utcnow
    writes: Deferred = field(default_factory=Deferred)
    _owned: SharedClient | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        runs: Runs | None = None,
        alerts: Alerts | None = None,
        auth0: Callable[[], Auth0Client] | None = None,
        scheduler_embedded: bool = False,
        poll_seconds: float = 5.0,
        max_watch: timedelta = timedelta(hours=26),
    ) -> SlackContext:
        """Wire the Slack pieces around an open index (see RunReporter for `scheduler_embedded`)."""
        runs = runs or Runs(store.engine, store, clock=store.clock)
        alerts = alerts or Alerts(store, SlackNotifier.from_settings(settings), clock=store.clock)
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        owned = None
        if auth0 is None and _auth0_configured(settings):
            owned = SharedClient(lambda: Auth0Client.from_settings(settings))
            auth0 = owned
        reporter = RunReporter(
            runs,
            store,
            sync_client(settings),
            polling=not scheduler_embedded,
            poll_seconds=poll_seconds,
            max_watch=max_watch,
        )
        return cls(
            settings=settings,
            store=store,
            runs=runs,
            alerts=alerts,
            audit=Audit(store.engine, secret_key=key, clock=store.clock),
            reporter=reporter,
            auth0=auth0,
            clock=store.clock,
            _owned=owned,
        )

    async def aclose(self) -> None:
        """Stop watching runs, finish deferred writes, close the Auth0 client we made."""
        await self.reporter.aclose()
        await asyncio.to_thread(self.writes.close)
        if self._owned is not None:
            self._owned.close()


def _auth0_configured(settings: Settings) -> bool:
    return bool(settings.auth0_domain and settings.auth0_client_id and settings.auth0_client_secret)
