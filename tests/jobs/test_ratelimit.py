"""The rate-limit policy: token bucket, header-driven holds, priority gate, retry timing."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from jobs.ratelimit import Pacer, RetryPolicy, parse_rate_limit, retry_after_seconds
from phoneindex.budget import LocalBudget

WALL0 = 1_800_000_000.0


class FakeTime:
    """A monotonic clock, a wall clock and a sleep that only moves them forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def make_pacer(t: FakeTime, rate: float = 10.0, **kw: Any) -> Pacer:
    return Pacer(rate, clock=t.clock, wall_clock=t.wall, sleep=t.sleep, **kw)


def test_sustained_rate_is_max_rps() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=10.0)
    for _ in range(11):
        pacer.acquire()
    assert t.now == pytest.approx(1.0)
    assert pacer.waited_seconds == pytest.approx(1.0)


def test_burst_lets_the_first_calls_through() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=2.0, burst=3)
    for _ in range(3):
        pacer.acquire()
    assert t.sleeps == []
    pacer.acquire()
    assert t.now == pytest.approx(0.5)


def test_idle_time_refills_only_up_to_burst() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=1.0)
    pacer.acquire()
    t.now += 100
    pacer.acquire()
    pacer.acquire()
    assert t.sleeps == [pytest.approx(1.0)]


def test_remaining_zero_holds_everybody_until_reset() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=100.0)
    pacer.acquire()
    pacer.observe(
        {
            "x-ratelimit-limit": "50",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(int(WALL0) + 4),
        }
    )
    assert pacer.acquire("interactive") == pytest.approx(4.0)
    assert pacer.last_seen.remaining == 0


def test_low_remaining_holds_bulk_but_not_interactive() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=100.0, burst=5)
    pacer.observe(
        {
            "x-ratelimit-limit": "50",
            "x-ratelimit-remaining": "1",
            "x-ratelimit-reset": str(WALL0 + 2),
        }
    )
    assert pacer.acquire("interactive") == 0
    assert pacer.acquire("bulk") == pytest.approx(2.0)


def test_reserve_is_dropped_for_a_tiny_budget() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=100.0, burst=5)
    pacer.observe(
        {
            "x-ratelimit-limit": "2",
            "x-ratelimit-remaining": "1",
            "x-ratelimit-reset": str(WALL0 + 2),
        }
    )
    assert pacer.acquire("bulk") == 0


def test_reset_in_the_past_and_missing_headers_do_not_hold() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=100.0, burst=5)
    pacer.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(WALL0 - 30)})
    pacer.observe({"x-ratelimit-remaining": "0"})
    pacer.observe({})
    assert pacer.acquire() == 0


def test_hold_is_capped() -> None:
    t = FakeTime()
    pacer = make_pacer(t, rate=100.0, max_hold=10.0)
    pacer.hold(1_000.0)
    assert pacer.acquire("interactive") == pytest.approx(10.0)


def test_waiting_interactive_caller_goes_before_bulk() -> None:
    """A bulk caller arriving while an interactive one waits gets the token after it."""
    t = FakeTime()
    interactive_sleeping = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def sleep(seconds: float) -> None:
        if threading.current_thread().name == "interactive":
            interactive_sleeping.set()
            assert release.wait(2)
        t.sleep(seconds)

    pacer = Pacer(1.0, clock=t.clock, wall_clock=t.wall, sleep=sleep)
    pacer.acquire("bulk")  # empties the bucket

    def run(priority: str) -> None:
        pacer.acquire(priority)  # type: ignore[arg-type]
        order.append(priority)

    first = threading.Thread(target=run, args=("interactive",), name="interactive")
    first.start()
    assert interactive_sleeping.wait(2)
    t.now += 1.0  # the next token is due now: a bulk caller could take it at once
    second = threading.Thread(target=run, args=("bulk",), name="bulk")
    second.start()
    second.join(0.2)
    assert order == []  # bulk is held back while the interactive caller waits
    release.set()
    first.join(2)
    second.join(2)
    assert order == ["interactive", "bulk"]


@pytest.mark.parametrize("attempt", [1, 2, 3, 8, 20])
def test_backoff_is_jittered_and_capped(attempt: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
    delays = [policy.backoff(attempt, random.Random(seed)) for seed in range(50)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1


def test_429_waits_for_the_reset_time() -> None:
    policy = RetryPolicy()
    headers = {"x-ratelimit-reset": str(WALL0 + 7)}
    assert policy.rate_limited_delay(headers, WALL0, 1, random.Random(0)) == pytest.approx(7.0)


def test_429_honours_retry_after_seconds_and_dates() -> None:
    policy = RetryPolicy()
    assert policy.rate_limited_delay({"retry-after": "3"}, WALL0, 1, random.Random(0)) == 3.0
    when = format_datetime(datetime.fromtimestamp(WALL0 + 20, UTC), usegmt=True)
    assert retry_after_seconds({"retry-after": when}, WALL0) == pytest.approx(20.0)
    assert retry_after_seconds({"retry-after": "soon"}, WALL0) is None


def test_429_without_hints_backs_off_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_wait=30.0)
    assert 0.5 <= policy.rate_limited_delay({}, WALL0, 1, random.Random(0)) <= 1.0
    stale = {"x-ratelimit-reset": str(WALL0 - 100)}
    assert 0.5 <= policy.rate_limited_delay(stale, WALL0, 1, random.Random(0)) <= 1.0
    far = {"x-ratelimit-reset": str(WALL0 + 3600)}
    assert policy.rate_limited_delay(far, WALL0, 1, random.Random(0)) == 30.0


def test_malformed_rate_limit_headers_are_ignored() -> None:
    seen = parse_rate_limit(
        {"x-ratelimit-limit": "ten", "x-ratelimit-remaining": "-1", "x-ratelimit-reset": "nan"}
    )
    assert (seen.limit, seen.remaining, seen.reset) == (None, None, None)
    seen = parse_rate_limit({"x-ratelimit-limit": "50", "x-ratelimit-remaining": " 49 "})
    assert (seen.limit, seen.remaining) == (50, 49)


def test_two_pacers_on_one_budget_share_its_rate() -> None:
    """Two processes' pacers (each allowed 10/s) drawing from one budget send 10/s together."""
    t = FakeTime()
    budget = LocalBudget(clock=t.clock)
    web = make_pacer(t, rate=10.0, budget=budget)
    clock = make_pacer(t, rate=10.0, budget=budget)
    sent = []
    for _ in range(10):
        for pacer in (web, clock):
            pacer.acquire("interactive")
            sent.append(t.now)
    assert sent[-1] == pytest.approx(1.9)  # 20 calls, 0.1 s apart, not 10 pairs at 10/s each
    assert min(b - a for a, b in zip(sent, sent[1:], strict=False)) == pytest.approx(0.1)


def test_what_one_pacer_learns_from_auth0_holds_the_others() -> None:
    t = FakeTime()
    budget = LocalBudget(clock=t.clock)
    web = make_pacer(t, rate=10.0, budget=budget)
    clock = make_pacer(t, rate=10.0, budget=budget)
    reset = str(int(WALL0 + 5))
    web.observe(
        {"x-ratelimit-limit": "10", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}
    )
    clock.acquire("interactive")
    assert t.now == pytest.approx(5.0)  # the other process waited for Auth0's reset too
    web.hold(3.0)  # a 429 seen by one process
    before = t.now
    clock.acquire("bulk")
    assert t.now - before == pytest.approx(3.0)
