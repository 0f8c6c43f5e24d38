"""`mfa-whois sync` against the local fake Auth0 tenant: checkpoints, pages, failures, expiry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jobs.alerts import Alert, Alerts
from jobs.auth0 import Auth0Client, Auth0RequestError, Auth0Unavailable
from jobs.ratelimit import RetryPolicy
from jobs.runs import Runs
from jobs.sync import CHECKPOINT, CHECKPOINT_AT, CHECKPOINT_EXPIRED_ALERT, sync_logs
from phoneindex.store import Store, iso
from tests.conftest import Clock
from tests.fake_auth0 import FakeAuth0

LOGS = "/api/v2/logs"
ENROLLED = "Guardian - Enrollment complete (sms)"


class Inbox:
    """Where supervisors' alerts land."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


class FailAt(httpx.HTTPTransport):
    """A real transport that has the fake fail `times` logs requests from the n-th one on."""

    def __init__(self, fake: FakeAuth0, nth: int, status: int, times: int) -> None:
        super().__init__()
        self.fake, self.nth, self.status, self.times, self.seen = fake, nth, status, times, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == LOGS:
            self.seen += 1
            if self.seen == self.nth:
                self.fake.fail_next(self.times, self.status, LOGS)
        return super().handle_request(request)


def client_for(fake: FakeAuth0, transport: httpx.BaseTransport | None = None) -> Auth0Client:
    return Auth0Client(
        fake.base_url,
        fake.client_id,
        fake.client_secret,
        audience=fake.audience,
        max_rps=50,
        transport=transport,
        retry=RetryPolicy(max_attempts=2, base_delay=0.001),
        sleep=lambda _: None,
    )


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with FakeAuth0(rate=100.0, burst=100) as tenant:
        tenant.add_log("s", "auth0|65000000000000000000000a", date="2026-11-26T08:00:00.000Z")
        tenant.add_log("seccft", None, date="2026-11-26T09:00:00.000Z")
        yield tenant


def enrolled(fake: FakeAuth0, n: int, minute: int = 0) -> dict[str, Any]:
    """Account n enrolls +1415555010n for SMS MFA (a new log event in the tenant)."""
    return fake.add_log(
        "gd_enrollment_complete",
        f"auth0|6500000000000000000000{n:02d}",
        date=f"2026-11-27T08:{minute or n:02d}:00.000Z",
        top={"description": ENROLLED},
        authenticator={"phone_number": f"+1 41555501{n:02d}"},
    )


def linked(store: Store, n: int) -> list[str]:
    return [a["user_id"] for a in store.lookup(f"+141555501{n:02d}")["accounts"]]


def froms(fake: FakeAuth0) -> list[str | None]:
    return [r.query.get("from") for r in fake.requests_for(LOGS)]


def test_first_run_starts_at_the_newest_log_and_applies_nothing(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    old = enrolled(fake, 1)  # history: a full reindex's job, not the log sync's
    result = sync_logs(store, client_for(fake), clock=clock)
    assert result.first_run and not result.needs_full_sync
    assert result.checkpoint == old["log_id"] == store.get_checkpoint(CHECKPOINT)
    assert store.get_checkpoint(CHECKPOINT_AT) == iso(clock.now)
    assert linked(store, 1) == []
    assert froms(fake) == [None]  # one request, in search mode


def test_later_events_are_applied_page_by_page(store: Store, fake: FakeAuth0, clock: Clock) -> None:
    sync_logs(store, client_for(fake), clock=clock)
    start = store.get_checkpoint(CHECKPOINT)
    events = [enrolled(fake, n) for n in range(1, 6)]
    ids = [e["log_id"] for e in events]

    first = sync_logs(store, client_for(fake), take=2, max_pages=1, clock=clock)
    assert (first.pages, first.events, first.checkpoint) == (1, 2, ids[1])
    assert store.get_checkpoint(CHECKPOINT) == ids[1]
    assert store.get_checkpoint(CHECKPOINT_AT) == "2026-11-27T08:02:00Z"  # the last event read
    assert [linked(store, n) for n in range(1, 6)] == [
        ["auth0|650000000000000000000001"],
        ["auth0|650000000000000000000002"],
        [],
        [],
        [],
    ]

    rest = sync_logs(store, client_for(fake), take=2, clock=clock)
    assert (rest.pages, rest.events, rest.changes) == (2, 3, 6)
    assert rest.checkpoint == ids[4] == store.get_checkpoint(CHECKPOINT)
    assert all(linked(store, n) for n in range(1, 6))
    phones = store.lookup("+14155550103")["accounts"][0]["phones"]
    assert phones == [
        {"kind": "mfa", "method": "sms", "confirmed": True, "source": "logs",
         "updated_at": "2026-11-27T08:03:00Z", "identity": None},
    ]  # fmt: skip
    assert froms(fake)[1:] == [start, ids[1], ids[3], ids[4]]  # each page from the last one
    assert store.get_checkpoint(CHECKPOINT_AT) == iso(clock.now)  # caught up as of now


@pytest.mark.parametrize(
    "status, times, error",
    [(503, 2, Auth0Unavailable), (400, 1, Auth0RequestError)],  # retries exhausted; final
)
def test_a_failure_mid_way_keeps_the_last_applied_page(
    store: Store, fake: FakeAuth0, clock: Clock, status: int, times: int, error: type[Exception]
) -> None:
    sync_logs(store, client_for(fake), clock=clock)
    ids = [enrolled(fake, n)["log_id"] for n in range(1, 6)]

    with pytest.raises(error):
        sync_logs(store, client_for(fake, FailAt(fake, 2, status, times)), take=2, clock=clock)
    assert store.get_checkpoint(CHECKPOINT) == ids[1]
    assert [bool(linked(store, n)) for n in range(1, 6)] == [True, True, False, False, False]

    assert fake.count(LOGS, status=status) == times
    result = sync_logs(store, client_for(fake), take=2, clock=clock)
    assert not result.needs_full_sync
    assert (result.events, result.checkpoint) == (3, ids[4])
    assert froms(fake)[-3:] == [ids[1], ids[3], ids[4]]
    assert all(linked(store, n) for n in range(1, 6))


def test_a_page_applied_twice_after_a_crash_is_harmless(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    sync_logs(store, client_for(fake), clock=clock)
    start = store.get_checkpoint(CHECKPOINT)
    for n in range(1, 4):
        enrolled(fake, n)
    sync_logs(store, client_for(fake), take=2, clock=clock)
    before = [store.lookup(f"+141555501{n:02d}") for n in range(1, 4)]

    store.set_checkpoint(CHECKPOINT, start)  # as if the checkpoint write had been lost
    again = sync_logs(store, client_for(fake), take=2, clock=clock)
    assert again.events == 3
    assert [store.lookup(f"+141555501{n:02d}") for n in range(1, 4)] == before


def test_a_checkpoint_auth0_refuses_is_alerted_and_restarted(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    sync_logs(store, client_for(fake), clock=clock)
    enrolled(fake, 1)
    newest = enrolled(fake, 2)
    fake.log_retention_floor = newest["log_id"]  # the checkpoint and event 1 are gone
    inbox = Inbox()

    result = sync_logs(store, client_for(fake), alerts=Alerts(store, inbox), clock=clock)
    assert result.needs_full_sync and not result.first_run
    assert result.checkpoint == newest["log_id"] == store.get_checkpoint(CHECKPOINT)
    assert linked(store, 2) == []  # nothing applied: the reindex will cover it
    assert fake.count(LOGS, status=400) == 1
    [alert] = inbox.sent
    assert alert.key == CHECKPOINT_EXPIRED_ALERT
    assert "refused by Auth0 (400 invalid_query_string)" in alert.text
    assert "reindex" in alert.text

    enrolled(fake, 3)
    after = sync_logs(store, client_for(fake), alerts=Alerts(store, inbox), clock=clock)
    assert not after.needs_full_sync and after.events == 1
    assert linked(store, 3) and len(inbox.sent) == 1


def test_a_checkpoint_older_than_the_retention_is_expired(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    fake.expired_checkpoint = "silent"  # Auth0 might just answer from its oldest log
    sync_logs(store, client_for(fake), clock=clock)
    clock.advance(days=31)
    newest = enrolled(fake, 1)
    fake.clear_requests()
    inbox = Inbox()

    result = sync_logs(store, client_for(fake), alerts=Alerts(store, inbox), clock=clock)
    assert result.needs_full_sync
    assert store.get_checkpoint(CHECKPOINT) == newest["log_id"]
    assert froms(fake) == [None]  # no checkpoint read: straight to the newest log
    assert linked(store, 1) == []
    assert "31 days ago" in inbox.sent[0].text
    assert store.get_checkpoint(CHECKPOINT_AT) == iso(clock.now)


def test_a_quiet_tenant_is_not_expired(store: Store, fake: FakeAuth0, clock: Clock) -> None:
    sync_logs(store, client_for(fake), clock=clock)
    for _ in range(4):  # polled every ten days with nothing new
        clock.advance(days=10)
        assert not sync_logs(store, client_for(fake), clock=clock).needs_full_sync


def test_nothing_new_is_one_request_and_nothing_applied(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    sync_logs(store, client_for(fake), clock=clock)
    checkpoint = store.get_checkpoint(CHECKPOINT)
    fake.clear_requests()
    last_update = store.freshness()["last_update"]

    result = sync_logs(store, client_for(fake), clock=clock)
    assert (result.pages, result.events, result.changes) == (0, 0, 0)
    assert froms(fake) == [checkpoint]
    assert store.get_checkpoint(CHECKPOINT) == checkpoint
    assert store.freshness()["last_update"] == last_update


def test_progress_is_recorded_on_the_run(store: Store, fake: FakeAuth0, clock: Clock) -> None:
    runs = Runs(store.engine, store, clock=clock)
    sync_logs(store, client_for(fake), clock=clock)
    for n in range(1, 4):
        enrolled(fake, n)
    fake.add_log("s", "auth0|650000000000000000000001", date="2026-11-27T09:00:00.000Z")

    with runs.exclusive("incremental", "scheduler") as run:
        sync_logs(store, client_for(fake), run=run, take=2, clock=clock)
    last = runs.last("incremental")
    assert last is not None and last["status"] == "succeeded"
    assert last["counts"] == {
        "pages": 2, "events": 4, "changes": 6, "ignored": 1, "bad_events": 0,
        "withheld_numbers": 0,
    }  # fmt: skip


def test_masked_numbers_are_counted_and_queued_not_indexed(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    sync_logs(store, client_for(fake), clock=clock)
    fake.add_log(
        "gd_send_sms",
        "auth0|650000000000000000000009",
        date="2026-11-27T08:00:00.000Z",
        top={"description": "Guardian - Second factor sms sent"},
        authenticator={"phone_number": "XXXXXXXX0109"},
    )
    result = sync_logs(store, client_for(fake), clock=clock)
    assert result.withheld_numbers == 1
    assert [t.user_id for t in store.refetch_queue()] == ["auth0|650000000000000000000009"]
    assert store.summary()["numbers"]["mfa"] == 0
