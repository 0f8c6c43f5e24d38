"""Rate-limit policy for the Auth0 Management API: a priority-aware pacer and retry timing."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from phoneindex.budget import Budget

Priority = Literal["interactive", "bulk"]
Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RateLimitSnapshot:
    """The last `x-ratelimit-*` values Auth0 sent; None until seen."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    """A numeric header value, or None when absent or malformed."""
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value == value and value >= 0 else None  # drops NaN and negatives


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitSnapshot:
    """Read `x-ratelimit-limit`, `-remaining` and `-reset` (unix seconds) from a response."""
    limit = _header_number(headers, "x-ratelimit-limit")
    remaining = _header_number(headers, "x-ratelimit-remaining")
    return RateLimitSnapshot(
        limit=None if limit is None else int(limit),
        remaining=None if remaining is None else int(remaining),
        reset=_header_number(headers, "x-ratelimit-reset"),
    )


def retry_after_seconds(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds asked for by a `Retry-After` header (delta seconds or an HTTP date)."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _header_number(headers, "retry-after")
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - wall_now)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry what can succeed later (429, 5xx, timeouts)."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Capped exponential backoff with jitter for the `attempt`-th failure (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def rate_limited_delay(
        self, headers: Mapping[str, str], wall_now: float, attempt: int, rng: random.Random
    ) -> float:
        """How long to wait after a 429: until the reset time or Retry-After, else backoff."""
        waits = [retry_after_seconds(headers, wall_now) or 0.0]
        reset = parse_rate_limit(headers).reset
        if reset is not None:
            waits.append(reset - wall_now)
        delay = max(waits)
        if delay <= 0:
            delay = self.backoff(attempt, rng)
        return min(delay, self.max_wait)


class Pacer:
    """A thread-safe token bucket at `rate`/s that serves interactive callers before bulk ones.

    With a shared `budget` (phoneindex/budget.py), each call also reserves a slot in the budget
    every process sharing the database draws from, so together they stay under `rate` too.
    """

    # Auth0's headers tighten the bucket: with no tokens left at Auth0 everybody waits for the
    # reset time; with `bulk_reserve` or fewer, bulk callers wait so the last tokens stay free
    # for live checks. While an interactive caller waits, bulk callers never take a token.

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        bulk_reserve: int = 1,
        max_hold: float = 120.0,
        clock: Clock,
        wall_clock: Clock,
        sleep: Sleep,
        budget: Budget | None = None,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = burst
        self._bulk_reserve = bulk_reserve
        self._max_hold = max_hold
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._tokens = burst
        self._stamp = clock()
        self._hold_all = float("-inf")
        self._hold_bulk = float("-inf")
        self._interactive_waiting = 0
        self._last = RateLimitSnapshot()
        self._budget = budget
        self.waited_seconds = 0.0

    @property
    def rate(self) -> float:
        """Sustained tokens per second."""
        return self._rate

    @property
    def last_seen(self) -> RateLimitSnapshot:
        """The rate-limit headers of the most recent response."""
        with self._cond:
            return self._last

    def acquire(self, priority: Priority = "bulk") -> float:
        """Block until this caller may send one request; returns the seconds spent waiting."""
        waited = 0.0
        with self._cond:
            if priority == "interactive":
                self._interactive_waiting += 1
        try:
            while True:
                with self._cond:
                    while priority == "bulk" and self._interactive_waiting:
                        self._cond.wait()
                    delay = self._delay(priority)
                    if delay <= 1e-9:  # float dust after sleeping exactly the computed delay
                        self._tokens -= 1
                        break
                self._sleep(delay)  # outside the lock: other callers keep their place
                waited += delay
        finally:
            if priority == "interactive":
                with self._cond:
                    self._interactive_waiting -= 1
                    self._cond.notify_all()
        waited += self._reserve_shared(priority)
        with self._cond:
            self.waited_seconds += waited
        return waited

    def _reserve_shared(self, priority: Priority) -> float:
        """Wait for this call's slot in the shared budget; the seconds waited."""
        if self._budget is None:
            return 0.0
        interval = 1.0 / self._rate
        waited = 0.0
        while True:
            # The slot is counted from when the store read its clock: the time it took to
            # answer after that (a commit) is part of the wait, not added to it.
            slot = self._budget.reserve(interval, priority == "bulk", max_ahead=interval)
            delay = slot.delay - slot.spent
            if delay > 0:
                self._sleep(delay)
                waited += delay
            if slot.granted:
                return waited

    def _delay(self, priority: Priority) -> float:
        """Seconds until `priority` may take a token; refills the bucket. Call with the lock."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        hold = self._hold_all if priority == "interactive" else max(self._hold_all, self._hold_bulk)
        return max(hold - now, (1 - self._tokens) / self._rate)

    def observe(self, headers: Mapping[str, str]) -> RateLimitSnapshot:
        """Record a response's rate-limit headers and hold callers when the budget runs out."""
        seen = parse_rate_limit(headers)
        if seen.remaining is None and seen.limit is None and seen.reset is None:
            return seen
        with self._cond:
            self._last = seen
            if seen.remaining is None or seen.reset is None:
                return seen
            wait = min(self._max_hold, seen.reset - self._wall_clock())
            until = self._clock() + wait
            if seen.remaining <= 0:
                self._hold_all = max(self._hold_all, until)
            if seen.remaining <= self._reserve_for(seen.limit):
                self._hold_bulk = max(self._hold_bulk, until)
        if self._budget is not None and seen.remaining <= self._reserve_for(seen.limit):
            self._budget.hold(max(0.0, wait), bulk_only=seen.remaining > 0)
        return seen

    def _reserve_for(self, limit: int | None) -> int:
        """The bulk reserve, dropped when the tenant's whole budget is too small to share."""
        return self._bulk_reserve if limit is None or limit > 4 * self._bulk_reserve else 0

    def hold(self, seconds: float) -> None:
        """Let nobody send for `seconds` (after a 429: the tenant's bucket is empty)."""
        with self._cond:
            until = self._clock() + min(seconds, self._max_hold)
            self._hold_all = max(self._hold_all, until)
        if self._budget is not None:
            self._budget.hold(min(seconds, self._max_hold), bulk_only=False)
