"""What one process's surfaces share besides the rules: one Auth0 client, a thread for
deferred writes, and a short-lived cache."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.exc import OperationalError

from jobs.auth0 import Auth0Client

log = logging.getLogger(__name__)

LOCKED_ATTEMPTS = 10  # times SQLite's busy timeout (30 s each) a deferred write waits


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


class TimedCache:
    """One value, recomputed when older than `seconds` (concurrent callers share one count)."""

    def __init__(
        self,
        compute: Callable[[], dict[str, Any]],
        seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._seconds = seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._at = 0.0

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            now = self._monotonic()
            if self._value is None or now - self._at >= self._seconds:
                self._value, self._at = self._compute(), now
            return dict(self._value)


class Deferred:
    """Writes that need not hold up an answer (alerts): one thread, in order.

    On SQLite a full import holds the write lock for its whole transaction; a refusal must not
    wait behind it for its alert. Failures are logged.
    """

    def __init__(self, *, attempts: int = LOCKED_ATTEMPTS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deferred-writes")
        self._attempts = attempts

    def submit(self, what: str, work: Callable[[], object]) -> None:
        """Run `work` after what was submitted before it."""

        def done(future: Future[object]) -> None:
            exc = future.exception()
            if exc is not None:
                log.error("deferred %s failed: %s", what, type(exc).__name__, exc_info=exc)

        def patiently() -> object:
            # The lock can outlast one busy timeout (30 s): wait for it again.
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
