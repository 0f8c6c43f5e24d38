"""`mfa-whois sync` against the local fake Auth0 tenant: checkpoints, pages, failures, expiry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.cli_render import checkpoint_line
from jobs.alerts import Alert, Alerts
from jobs.auth0 import Auth0Client, Auth0RequestError, Auth0Unavailable
from jobs.enrich import enrich
from jobs.ratelimit import RetryPolicy
from jobs.reindex import reindex
from jobs.runs import Runs
from jobs.sync import (
    CHECKPOINT,
    CHECKPOINT_AT,
    CHECKPOINT_EXPIRED_ALERT,
    LOG_START,
    SyncResult,
    sync_logs,
)
from phoneindex.store import Store, iso
from tests.bot.test_cli import run as cli
from tests.conftest import Clock
from tests.fake_auth0 import FakeAuth0, make_phone_method, make_user

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
        "withheld_numbers": 0, "enrollments_removed": 0, "unmapped_types": {"s": 1},
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


def test_unmapped_types_and_enrollment_deletes_are_counted_and_summarised(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    runs = Runs(store.engine, store, clock=clock)
    sync_logs(store, client_for(fake), clock=clock)
    for n in range(1, 121):
        fake.add_log("s", f"auth0|6500000000000000000{n:05d}", date="2026-11-27T08:00:00.000Z")
    for _ in range(3):
        fake.add_log("fp", "auth0|650000000000000000000001", date="2026-11-27T08:01:00.000Z")
    for kind in ("seccft", "gd_recovery_succeed", "slo", "sv"):
        fake.add_log(kind, "auth0|650000000000000000000001", date="2026-11-27T08:02:00.000Z")
    fake.add_log(
        "sapi",
        "google-oauth2|105261262156475850461",
        date="2026-11-27T08:03:00.000Z",
        top={"description": "Delete an enrollment"},
        request={"method": "delete", "path": "/api/v2/guardian/enrollments/dev_Ab12Cd34Ef56Gh78"},
        response={"statusCode": 204, "body": {}},
    )

    with runs.exclusive("incremental", "cli") as run:
        result = sync_logs(store, client_for(fake), run=run, clock=clock)
    assert result.summary() == (
        "read 128 log events in 2 pages, applied 1 changes; "
        "1 enrollment deletes of an unknown owner (applied at the owner's next MFA read); "
        "not mapped: s 120, fp 3, gd_recovery_succeed 1, seccft 1, +2 more types"
    )
    last = runs.last("incremental")
    assert last is not None
    assert last["counts"]["unmapped_types"] == {
        "s": 120, "fp": 3, "seccft": 1, "gd_recovery_succeed": 1, "slo": 1, "sv": 1,
    }  # fmt: skip
    assert last["counts"]["enrollments_removed"] == 1
    assert last["counts"]["unknown_enrollments"] == 1  # no MFA read ever named dev_Ab12Cd34...


def test_a_first_run_on_an_empty_log_misses_nothing_after_it(store: Store, clock: Clock) -> None:
    with FakeAuth0(rate=100.0, burst=100) as empty:
        first = sync_logs(store, client_for(empty), clock=clock)
        assert first.first_run and store.get_checkpoint(CHECKPOINT) == LOG_START
        events = [enrolled(empty, n) for n in (1, 2)]

        result = sync_logs(store, client_for(empty), clock=clock)
        assert (result.events, result.checkpoint) == (2, events[1]["log_id"])
        assert linked(store, 1) and linked(store, 2)
        oldest = [r.query for r in empty.requests_for(LOGS) if r.query.get("sort") == "date:1"]
        assert len(oldest) == 1  # the start of the log read once, then checkpoint mode


# --------------------------------------------------------------------------- export hand-off

A = "auth0|6500000000000000000000a1"  # enrolls an SMS factor after the export
B = "auth0|6500000000000000000000b2"  # has MFA (+14155550102), unenrolls it after the export
P = "auth0|6500000000000000000000c3"  # profile number +14155550103, changed to +14155550106
D = "auth0|6500000000000000000000d4"  # profile number +14155550104, deleted after the export
S = "sms|6500000000000000000000e5"  # signs up passwordless (+14155550105) during the export


def tenant(fake: FakeAuth0) -> None:
    """Accounts of a small tenant, in the fake's users (and so in its exports)."""
    fake.add_user(make_user(A, email="a@example.com"))
    fake.add_user(
        make_user(B, email="b@example.com", multifactor=["guardian"]),
        [make_phone_method("+14155550102", device_id="dev_B2")],
    )
    fake.add_user(make_user(P, email="p@example.com", phone_number="+14155550103"))
    fake.add_user(make_user(D, email="d@example.com", phone_number="+14155550104"))


def stamp(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DuringExport(httpx.HTTPTransport):
    """A real transport; S signs up just as the export job is being created."""

    def __init__(self, fake: FakeAuth0, clock: Clock) -> None:
        super().__init__()
        self.fake, self.clock = fake, clock

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v2/jobs/users-exports":
            self.fake.add_user(make_user(S, phone_number="+14155550105"))
            when = stamp(self.clock.advance(seconds=1))
            body = {"connection": "sms", "phone_number": "+14155550105", "phone_verified": True}
            self.fake.add_log("ss", S, date=when, top={"connection": "sms"}, body=body)
        return super().handle_request(request)


def full_export(
    store: Store, fake: FakeAuth0, clock: Clock, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """A full sync's export and import (the reindex step), recorded as a run; its counts."""
    runs = Runs(store.engine, store, clock=clock)
    with runs.exclusive("full", "cli") as run:
        reindex(
            store,
            client_for(fake, transport),
            run,
            poll_interval=0.01,
            sleep=lambda seconds: clock.advance(seconds=seconds),
            clock=clock,
        )
        counts = dict(run.counts)
    return counts


def changes_after_the_export(fake: FakeAuth0, clock: Clock) -> None:
    """What the tenant does once the export is taken (item 5 of issue 7)."""
    at = [stamp(clock.advance(minutes=1)) for _ in range(4)]
    enrolled_a = {"id": "sms|dev_A1", "type": "sms", "phone_number": "+1 4155550101"}
    fake.add_log("gd_enrollment_complete", A, date=at[0], top={"description": ENROLLED},
                 authenticator=enrolled_a)  # fmt: skip
    fake.add_log("gd_unenroll", B, date=at[1], top={"description": "Unenroll device account"},
                 authenticator={"id": "sms|dev_B2", "phone_number": "+14155550102"})  # fmt: skip
    fake.add_log("sdu", D, date=at[2], top={"description": f"user_id: {D}"})
    body = {"old_phone_number": "+14155550103", "new_phone_number": "+14155550106"}
    fake.add_log("scpn", P, date=at[3], body=body)


def index_view(store: Store) -> dict[str, list[tuple[str, str]]]:
    """Who each number of the scenario leads to, and how."""
    return {
        f"+1415555010{n}": [
            (a["user_id"], p["kind"])
            for a in store.lookup(f"+1415555010{n}")["accounts"]
            for p in a["phones"]
        ]
        for n in range(1, 7)
    }


AFTER = {
    "+14155550101": [(A, "mfa")],
    "+14155550102": [],
    "+14155550103": [],
    "+14155550104": [],
    "+14155550105": [(S, "passwordless")],
    "+14155550106": [(P, "profile")],
}


def test_the_first_sync_after_a_reindex_applies_every_event_after_the_export(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    tenant(fake)
    newest = fake.logs[-1]["log_id"]
    counts = full_export(store, fake, clock, DuringExport(fake, clock))
    assert counts["log_checkpoint"] == "export snapshot"
    assert store.get_checkpoint(CHECKPOINT) == newest  # where the log stood before the job
    assert store.get_checkpoint(CHECKPOINT_AT) == "2026-11-27T09:00:00Z"
    enrich(store, client_for(fake), None, clock=clock)
    assert index_view(store)["+14155550102"] == [(B, "mfa")]
    changes_after_the_export(fake, clock)

    result = sync_logs(store, client_for(fake), clock=clock)
    assert not result.first_run and not result.needs_full_sync
    assert result.events == 5  # S's signup (also in the export: harmless) and the four changes
    assert index_view(store) == AFTER
    status = Runs(store.engine, store, clock=clock).status_document()
    assert status["log_checkpoint"] == fake.logs[-1]["log_id"]
    assert status["log_checkpoint_at"] == iso(clock.now)  # caught up as of now
    assert status["log_checkpoint_age_seconds"] == 0


def test_the_checkpoint_age_is_shown_in_the_status(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    full_export(store, fake, clock)
    clock.advance(minutes=7)
    status = Runs(store.engine, store, clock=clock).status_document()
    assert status["log_checkpoint_at"] == "2026-11-27T09:00:00Z"  # the export job's creation
    assert status["log_checkpoint_age_seconds"] == 7 * 60


def test_a_running_log_pull_keeps_its_checkpoint_through_a_reindex(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    tenant(fake)
    sync_logs(store, client_for(fake), clock=clock)
    checkpoint = store.get_checkpoint(CHECKPOINT)
    # B enrolls a second number just before the nightly export: exports hold no MFA numbers.
    when = stamp(clock.now - timedelta(minutes=1))
    fake.add_log("gd_enrollment_complete", B, date=when, top={"description": ENROLLED},
                 authenticator={"phone_number": "+14155550107"})  # fmt: skip

    counts = full_export(store, fake, clock)
    assert counts["log_checkpoint"] == "kept"
    assert store.get_checkpoint(CHECKPOINT) == checkpoint
    assert linked(store, 7) == []  # not in the export

    sync_logs(store, client_for(fake), clock=clock)
    assert [a["user_id"] for a in store.lookup("+14155550107")["accounts"]] == [B]


def test_an_expired_checkpoint_hands_over_through_the_full_sync_it_asks_for(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    tenant(fake)
    fake.expired_checkpoint = "silent"
    sync_logs(store, client_for(fake), clock=clock)
    clock.advance(days=31)
    assert sync_logs(store, client_for(fake), clock=clock).needs_full_sync
    restarted = store.get_checkpoint(CHECKPOINT)
    # Between the restart and the export the full sync asked for: an MFA enrollment.
    fake.add_log("gd_enrollment_complete", A, date=stamp(clock.now), top={"description": ENROLLED},
                 authenticator={"phone_number": "+14155550101"})  # fmt: skip

    assert full_export(store, fake, clock)["log_checkpoint"] == "kept"
    assert store.get_checkpoint(CHECKPOINT) == restarted
    enrich(store, client_for(fake), None, clock=clock)
    changes_after_the_export(fake, clock)

    result = sync_logs(store, client_for(fake), clock=clock)
    assert not result.needs_full_sync
    assert index_view(store) == AFTER | {"+14155550105": []}  # S never signed up here


def test_a_checkpoint_expired_before_the_reindex_is_replaced_by_the_exports(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    tenant(fake)
    sync_logs(store, client_for(fake), clock=clock)
    clock.advance(days=31)  # nobody pulled logs meanwhile (MFA_WHOIS_LOG_POLL_SECONDS=0)
    newest = enrolled(fake, 9)["log_id"]

    assert full_export(store, fake, clock)["log_checkpoint"] == "export snapshot"
    assert store.get_checkpoint(CHECKPOINT) == newest
    changes_after_the_export(fake, clock)
    result = sync_logs(store, client_for(fake), clock=clock)
    assert not result.needs_full_sync and result.events == 4


def test_a_reindex_of_a_tenant_without_logs_hands_over_the_start_of_the_log(
    store: Store, clock: Clock
) -> None:
    with FakeAuth0(rate=100.0, burst=100) as empty:
        tenant(empty)
        assert full_export(store, empty, clock)["log_checkpoint"] == "export snapshot"
        assert store.get_checkpoint(CHECKPOINT) == LOG_START
        status = Runs(store.engine, store, clock=clock).status_document()
        assert checkpoint_line(status) == (
            "the start of the Auth0 log (log events applied up to 0 s ago)"
        )
        enrich(store, client_for(empty), None, clock=clock)
        changes_after_the_export(empty, clock)

        result = sync_logs(store, client_for(empty), clock=clock)
        assert not result.first_run and result.events == 4
        assert index_view(store) == AFTER | {"+14155550105": []}


def test_no_hand_off_when_auth0_will_not_say_where_the_log_stands(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    tenant(fake)
    fake.fail_next(2, status=503, path_prefix=LOGS)  # both attempts of the newest-log read
    counts = full_export(store, fake, clock)
    assert "log_checkpoint" not in counts
    assert counts["users"] == 4  # the export is imported all the same
    assert store.get_checkpoint(CHECKPOINT) is None


def test_the_summary_names_the_most_frequent_unmapped_types_only() -> None:
    result = SyncResult(events=9, pages=1, changes=0, unmapped_types={"s": 5, "fp": 3, "w": 1})
    assert result.summary().endswith("not mapped: s 5, fp 3, w 1")
    assert "not mapped" not in SyncResult(events=1, pages=1).summary()


def test_reindex_then_sync_through_the_cli_misses_no_change(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    tenant(fake)
    env = {
        "DATABASE_URL": db_url,
        "AUTH0_DOMAIN": fake.base_url,
        "AUTH0_CLIENT_ID": fake.client_id,
        "AUTH0_CLIENT_SECRET": fake.client_secret,
        "AUTH0_AUDIENCE": fake.audience,
        "MFA_WHOIS_AUTH0_MAX_RPS": "20",
    }
    fake.export_polls_to_complete = 1
    done = cli(["reindex"], tmp_path, **env)
    assert done.returncode == 0, done.stderr
    clock = Clock(datetime.now(UTC))  # events happen after the export, in real time
    fake.add_user(make_user(S, phone_number="+14155550105"))
    body = {"connection": "sms", "phone_number": "+14155550105", "phone_verified": True}
    fake.add_log("ss", S, date=stamp(clock.now), top={"connection": "sms"}, body=body)
    changes_after_the_export(fake, clock)

    synced = cli(["sync"], tmp_path, **env)
    assert synced.returncode == 0, synced.stderr
    # Not "starting from the newest Auth0 log": the five events after the export, no older one.
    assert synced.stdout.strip() == "read 5 log events in 1 pages, applied 9 changes"
    for number, expected in AFTER.items():
        found = cli(["lookup", number, "--json"], tmp_path, **env)
        doc = json.loads(found.stdout)
        assert [(a["user_id"], p["kind"]) for a in doc["accounts"] for p in a["phones"]] == (
            expected
        ), number
    status = json.loads(cli(["status", "--json"], tmp_path, **env).stdout)
    assert status["log_checkpoint"] == fake.logs[-1]["log_id"]
    assert 0 <= status["log_checkpoint_age_seconds"] < 60
    text = cli(["status"], tmp_path, **env).stdout
    assert f"log checkpoint: {fake.logs[-1]['log_id']} (log events applied up to" in text
