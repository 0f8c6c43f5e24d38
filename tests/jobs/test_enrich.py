"""MFA enrichment against a fake Auth0 tenant: numbers, unlinks, masking, resuming, pacing."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from jobs.alerts import Alert, Alerts
from jobs.auth0 import Auth0Client, Auth0Unavailable, AuthenticationMethod
from jobs.enrich import (
    ALL_CURSOR,
    FAILURES_IN_A_ROW,
    MASKED_ALERT,
    MASKED_FLAG,
    enrich,
    methods_to_change,
)
from jobs.exports import UserMapper
from jobs.ratelimit import RetryPolicy
from jobs.runs import Runs
from phoneindex.changes import EnrollmentRemoved, MfaPhone, PhoneUnlinked, RefetchRequested
from phoneindex.store import Store
from tests.conftest import T0, Clock
from tests.fake_auth0 import FakeAuth0, make_method, make_phone_method, make_user

TLS = ssl.create_default_context()  # one TLS context for every client: building one is slow
METHODS_PATH = "/api/v2/users/"
SEEN_AT = T0 - timedelta(hours=1)
ONE_S = timedelta(seconds=1)


class Inbox:
    """A notifier that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with FakeAuth0(rate=500, burst=500) as tenant:
        yield tenant


def client_for(fake: FakeAuth0, **kw: Any) -> Auth0Client:
    """A real client against the fake, fast enough for tests."""
    kw.setdefault("max_rps", 50)
    return Auth0Client(
        fake.base_url, fake.client_id, fake.client_secret, audience=fake.audience,
        transport=httpx.HTTPTransport(verify=TLS), **kw,
    )  # fmt: skip


@pytest.fixture
def client(fake: FakeAuth0) -> Iterator[Auth0Client]:
    with client_for(fake) as c:
        yield c


def mfa_user(uid: str, **kw: Any) -> dict[str, Any]:
    """A database user whose export shows Guardian MFA."""
    kw.setdefault("multifactor_last_modified", "2026-01-01T00:00:00.000Z")
    return make_user(uid, multifactor=["guardian"], **kw)


def seed(
    store: Store, fake: FakeAuth0, users: list[dict[str, Any]], at: datetime = SEEN_AT
) -> None:
    """Put users in the tenant and, as an export import would, in the index."""
    mapper = UserMapper(at, None)
    for user in users:
        if user not in fake.users:
            fake.add_user(user)
    store.apply([c for u in users for c in mapper.changes(u)])


def method_reads(fake: FakeAuth0) -> list[str]:
    """User ids whose authentication methods were requested, in arrival order."""
    return [
        r.path.split("/")[4]
        for r in fake.requests_for(METHODS_PATH)
        if r.path.endswith("/authentication-methods")
    ]


def mfa_phones(store: Store, phone: str) -> dict[str, dict[str, Any]]:
    """user_id -> the MFA link of `phone`, from the lookup document."""
    return {
        a["user_id"]: p
        for a in store.lookup(phone)["accounts"]
        for p in a["phones"]
        if p["kind"] == "mfa"
    }


def stop_after(n: int) -> Callable[[], bool]:
    """A should_stop that lets exactly `n` accounts start."""
    asked = 0

    def should_stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > n

    return should_stop


def ten_accounts(store: Store, fake: FakeAuth0) -> list[str]:
    uids = [f"auth0|u{i:02d}" for i in range(10)]
    for i, uid in enumerate(uids):
        fake.auth_methods[uid] = [make_phone_method(f"+1415555{i:04d}")]
    seed(store, fake, [mfa_user(uid) for uid in uids])
    return uids


# --------------------------------------------------------------------------- methods -> change


def method(type: str, number: str | None = None, **kw: Any) -> AuthenticationMethod:
    dev = f"dev_{number[-4:]}" if number else "dev_1"
    return AuthenticationMethod(id=f"{type}|{dev}", type=type, phone_number=number, **kw)


def test_phone_methods_become_mfa_numbers_and_masked_ones_are_only_counted() -> None:
    methods = [
        method("phone", "+14155550100", confirmed=True, preferred_method="sms"),
        method("phone", "+1 4155550101", confirmed=False, methods=("voice",)),  # Guardian spacing
        method("voice", "+14155550102"),  # a legacy shape: the type is the method
        method("phone", "XXXXXXXX0103", confirmed=True),
        method("phone", "not a number"),
        method("totp", confirmed=True),
        method("webauthn-roaming", confirmed=True),
        method("email", confirmed=True),
    ]
    change = methods_to_change("auth0|a", methods, T0, "guardian|k")
    assert change.phones == (
        MfaPhone("+14155550100", "sms", True, "phone|dev_0100"),
        MfaPhone("+14155550101", "voice", False, "phone|dev_0101"),
        MfaPhone("+14155550102", "voice", None, "voice|dev_0102"),
    )
    assert (change.masked, change.fetched_key, change.source) == (1, "guardian|k", "authenticators")


def test_one_number_on_two_authenticators_is_one_confirmed_link() -> None:
    methods = [
        method("phone", "+14155550100", confirmed=False, preferred_method="voice"),
        method("phone", "+14155550100", confirmed=True, preferred_method="sms"),
    ]
    change = methods_to_change("auth0|a", methods, T0, None, source="live")
    assert change.phones == (MfaPhone("+14155550100", "sms", True, "phone|dev_0100"),)
    assert change.source == "live"


# --------------------------------------------------------------------------- enrich


def test_enrich_links_mfa_numbers_and_skips_other_methods(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    alice = mfa_user("auth0|alice")
    bob = mfa_user("auth0|bob")
    carol = make_user("auth0|carol")  # no MFA: never read
    fake.auth_methods.update(
        {
            "auth0|alice": [make_phone_method("+14155550100"), make_method("totp")],
            "auth0|bob": [make_phone_method("+14155550101", "voice", False), make_method("email")],
            "auth0|carol": [make_phone_method("+14155550102")],
        }
    )
    seed(store, fake, [alice, bob, carol])
    seen: list[tuple[int, int]] = []

    result = enrich(store, client, None, clock=clock, progress=lambda d, t: seen.append((d, t)))

    assert (result.accounts, result.linked, result.masked, result.complete) == (2, 2, 0, True)
    assert sorted(method_reads(fake)) == ["auth0|alice", "auth0|bob"]
    assert mfa_phones(store, "+14155550100")["auth0|alice"] == {
        "kind": "mfa", "method": "sms", "confirmed": True, "source": "authenticators",
        "updated_at": "2026-11-27T09:00:00Z", "identity": None,
    }  # fmt: skip
    assert mfa_phones(store, "+14155550101")["auth0|bob"]["method"] == "voice"
    assert mfa_phones(store, "+14155550101")["auth0|bob"]["confirmed"] is False
    assert mfa_phones(store, "+14155550102") == {}
    assert seen[-1] == (2, 2)


def test_a_second_run_with_nothing_changed_makes_no_auth0_calls(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    ten_accounts(store, fake)
    assert enrich(store, client, None, clock=clock).accounts == 10
    fake.clear_requests()

    again = enrich(store, client, None, clock=clock)

    assert (again.accounts, again.complete) == (0, True)
    assert fake.requests == []  # not even a token


def test_a_changed_mfa_state_rereads_exactly_that_account_and_drops_old_numbers(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    uids = ten_accounts(store, fake)
    enrich(store, client, None, clock=clock)
    fake.clear_requests()
    # Account 3 swapped its phone: a new export shows a new multifactor_last_modified.
    fake.auth_methods[uids[3]] = [make_phone_method("+14155550999", "voice")]
    changed = mfa_user(uids[3], multifactor_last_modified="2026-11-27T08:00:00.000Z")
    seed(store, fake, [changed], at=T0)
    clock.advance(minutes=5)

    result = enrich(store, client, None, clock=clock)

    assert method_reads(fake) == [uids[3]]
    assert (result.accounts, result.linked, result.unlinked) == (1, 1, 1)
    assert mfa_phones(store, "+14155550003") == {}
    assert mfa_phones(store, "+14155550999")[uids[3]]["method"] == "voice"


def test_mfa_removed_in_auth0_unlinks_the_number(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    uids = ten_accounts(store, fake)
    enrich(store, client, None, clock=clock)
    fake.auth_methods[uids[0]] = [make_method("totp")]
    seed(store, fake, [make_user(uids[0])], at=T0)  # the export no longer shows MFA
    clock.advance(minutes=5)

    result = enrich(store, client, None, clock=clock)

    assert (result.accounts, result.unlinked) == (1, 1)
    assert mfa_phones(store, "+14155550000") == {}


def test_an_account_gone_from_auth0_is_removed(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    uids = ten_accounts(store, fake)
    fake.remove_user(uids[2])

    result = enrich(store, client, None, clock=clock)

    assert (result.accounts, result.missing) == (9, 1)
    assert store.account(uids[2]) is None
    assert store.lookup("+14155550002")["accounts"] == []
    assert store.summary()["accounts"] == 9


def test_masked_numbers_are_counted_alerted_once_and_the_flag_fixes_them(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    uids = ten_accounts(store, fake)
    fake.mask_mfa_numbers = True
    inbox = Inbox()
    alerts = Alerts(store, inbox, clock=clock)

    first = enrich(store, client, None, clock=clock, alerts=alerts)
    again = enrich(store, client, None, clock=clock, alerts=alerts, everything=True)

    assert (first.masked, first.linked, again.masked) == (10, 0, 10)
    assert store.summary()["masked_mfa_numbers"] == 10
    assert store.lookup("+14155550001")["accounts"] == []
    [alert] = inbox.sent
    assert (alert.key, alert.severity) == (MASKED_ALERT, "warning")
    assert f"`{MASKED_FLAG}` to true" in alert.text
    assert "update:tenant_settings" in alert.text and "mfa-whois enrich --all" in alert.text
    assert not re.search(r"[0-9]{4}", alert.title + alert.text)  # never a number, not even 4 digits

    # The operator sets the flag and runs `enrich --all`.
    fake.mask_mfa_numbers = False
    clock.advance(minutes=5)
    fixed = enrich(store, client, None, clock=clock, alerts=alerts, everything=True)

    assert (fixed.masked, fixed.linked) == (0, 10)
    assert store.summary()["masked_mfa_numbers"] == 0
    assert list(mfa_phones(store, "+14155550001")) == [uids[1]]
    assert [a.severity for a in inbox.sent] == ["warning", "recovery"]


def test_an_interrupted_run_keeps_what_it_applied_and_the_next_run_continues(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock, engine: Engine
) -> None:
    uids = ten_accounts(store, fake)
    runs = Runs(engine, store, clock=clock)

    with runs.exclusive("enrich", "test") as run:
        stopped = enrich(store, client, run, clock=clock, batch_size=3, should_stop=stop_after(4))

    assert (stopped.accounts, stopped.complete) == (4, False)
    last = runs.last("enrich")
    assert last is not None and last["counts"]["accounts"] == 4
    applied = [uid for i, uid in enumerate(uids) if mfa_phones(store, f"+1415555{i:04d}")]
    assert applied == uids[:4]
    fake.clear_requests()

    rest = enrich(store, client, None, clock=clock)

    assert sorted(method_reads(fake)) == uids[4:]
    assert (rest.accounts, rest.complete) == (6, True)


def test_ctrl_c_keeps_the_reads_under_way_and_the_next_run_continues(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock, engine: Engine
) -> None:
    uids = ten_accounts(store, fake)
    runs = Runs(engine, store, clock=clock)
    asked = 0

    def ctrl_c_after_four() -> bool:
        nonlocal asked
        asked += 1
        if asked > 4:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt), runs.exclusive("enrich", "test") as run:
        enrich(store, client, run, clock=clock, should_stop=ctrl_c_after_four, workers=1,
               batch_size=2)  # fmt: skip

    last = runs.last("enrich")
    assert last is not None and (last["status"], last["error"]) == ("failed", "interrupted")
    # Two accounts were applied in a batch, the third was read and waiting for the next batch,
    # the fourth was under way unless the worker had not picked it up yet.
    kept = last["counts"]["accounts"]
    assert kept in (3, 4)
    applied = [uid for i, uid in enumerate(uids) if mfa_phones(store, f"+1415555{i:04d}")]
    assert applied == uids[:kept]
    fake.clear_requests()

    enrich(store, client, None, clock=clock)

    assert sorted(method_reads(fake)) == uids[kept:]


def test_a_long_run_keeps_its_writer_lease(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock, engine: Engine
) -> None:
    ten_accounts(store, fake)
    runs = Runs(engine, store, clock=clock, lease_ttl=timedelta(minutes=1))
    holding: list[bool] = []

    def progress(done: int, total: int) -> None:
        clock.advance(seconds=15)  # 10 accounts take 150 s here, the lease lives 60 s
        holding.append(runs.running() is not None)

    with runs.exclusive("enrich", "test") as run:
        enrich(store, client, run, clock=clock, progress=progress, batch_size=100)

    assert len(holding) >= 10 and all(holding)


def test_auth0_failing_for_every_account_stops_the_run_after_applying_what_was_read(
    store: Store, fake: FakeAuth0, clock: Clock, engine: Engine
) -> None:
    uids = ten_accounts(store, fake)
    runs = Runs(engine, store, clock=clock)
    for uid in uids[5:]:  # Auth0 goes down after the fifth account
        fake.fail_next(100, 503, f"{METHODS_PATH}{uid}/")

    with client_for(fake, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(Auth0Unavailable), runs.exclusive("enrich", "test") as run:
            enrich(store, client, run, clock=clock, batch_size=2, workers=1)
        last = runs.last("enrich")
        assert last is not None and last["status"] == "failed"
        assert "503" in last["error"] and "authentication-methods" in last["error"]
        assert (last["counts"]["accounts"], last["counts"]["errors"]) == (5, FAILURES_IN_A_ROW)
        assert all(mfa_phones(store, f"+1415555{i:04d}") for i in range(5))
        fake.clear_requests()
        fake.clear_failures()  # Auth0 is back

        rest = enrich(store, client, None, clock=clock)

    assert sorted(method_reads(fake)) == uids[5:]
    # The failed reads were queued: read again whole, ahead of the rest of the walk.
    assert (rest.accounts, rest.reread, rest.errors) == (5, FAILURES_IN_A_ROW, 0)


def test_one_account_that_keeps_failing_does_not_stall_the_others(
    store: Store, fake: FakeAuth0, clock: Clock, engine: Engine
) -> None:
    uids = ten_accounts(store, fake)
    runs = Runs(engine, store, clock=clock)
    fake.fail_next(1000, 500, f"{METHODS_PATH}{uids[2]}/")  # every read of this one fails

    with client_for(fake, retry=RetryPolicy(max_attempts=1)) as client:
        for _slice in range(2):  # the scheduler's slices, one after the other
            with runs.exclusive("enrich", "test") as run:
                result = enrich(store, client, run, clock=clock, batch_size=2)
            clock.advance(minutes=5)

    assert all(mfa_phones(store, f"+1415555{i:04d}") for i in range(10) if i != 2)
    assert (result.errors, result.complete) == (1, True)
    assert "1 reads failed (queued to be read again)" in result.summary()
    last = runs.last("enrich")
    assert last is not None and last["status"] == "succeeded"
    assert [t.user_id for t in store.refetch_queue()] == [uids[2]]


def test_a_read_is_stamped_before_its_call_so_an_unenroll_while_auth0_answers_wins(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    seed(store, fake, [mfa_user("auth0|alice")])
    fake.auth_methods["auth0|alice"] = [make_phone_method("+14155550100")]
    asked_at = clock()

    def auth0_answers(method: str, path: str) -> None:
        if path.endswith("/authentication-methods"):
            clock.advance(seconds=2)  # the answer is on its way; meanwhile the user unenrolls

    fake.on_answer = auth0_answers
    enrich(store, client, None, clock=clock, workers=1)
    assert list(mfa_phones(store, "+14155550100")) == ["auth0|alice"]
    # The gd_unenroll of one second after the call, pulled from the logs a little later.
    store.apply([PhoneUnlinked("auth0|alice", "+14155550100", "mfa", "logs", asked_at + ONE_S)])

    assert mfa_phones(store, "+14155550100") == {}


def test_enrich_all_resumes_after_the_last_account_applied(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    uids = ten_accounts(store, fake)
    enrich(store, client, None, clock=clock)
    fake.clear_requests()

    first = enrich(
        store, client, None, clock=clock, everything=True, should_stop=stop_after(4), batch_size=2
    )
    assert (first.accounts, first.complete) == (4, False)
    assert store.get_checkpoint(ALL_CURSOR) == uids[3]
    fake.clear_requests()

    rest = enrich(store, client, None, clock=clock, everything=True)
    assert sorted(method_reads(fake)) == uids[4:]
    assert (rest.accounts, rest.complete) == (6, True)
    assert store.get_checkpoint(ALL_CURSOR) is None
    fake.clear_requests()

    enrich(store, client, None, clock=clock, everything=True)
    assert sorted(method_reads(fake)) == uids  # a finished --all starts over next time


def test_queued_refetches_go_first(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    uids = ten_accounts(store, fake)
    enrich(store, client, None, clock=clock)
    # A new account without MFA in the export, and a log event asking to re-read the last one.
    newcomer = mfa_user("auth0|a-newcomer")
    fake.auth_methods[newcomer["user_id"]] = [make_phone_method("+14155550500")]
    seed(store, fake, [newcomer], at=T0)
    store.apply([RefetchRequested(uids[9], T0 + timedelta(minutes=1))])
    fake.auth_methods[uids[9]] = [make_phone_method("+14155550909")]
    clock.advance(minutes=2)
    fake.clear_requests()

    result = enrich(store, client, None, clock=clock, workers=1)

    assert method_reads(fake) == [uids[9], "auth0|a-newcomer"]  # queue first, then user_id order
    assert (result.accounts, result.queued) == (2, 1)
    assert list(mfa_phones(store, "+14155550909")) == [uids[9]]
    assert store.refetch_queue() == []


def test_enrichment_keeps_the_client_at_its_rate(store: Store, clock: Clock) -> None:
    # Auth0 answers in 50 ms here: one request at a time could not reach 40/s.
    with FakeAuth0(rate=500, burst=500, slow=0.05) as fake:
        users = [mfa_user(f"auth0|r{i:03d}") for i in range(80)]
        for u in users:
            fake.auth_methods[u["user_id"]] = [make_phone_method("+14155550100")]
        seed(store, fake, users)
        with client_for(fake, max_rps=40) as client:
            result = enrich(store, client, None, clock=clock)
            stats = client.stats()

    assert result.accounts == 80
    # Well above the 20/s one thread could reach, with room for a busy CI machine (the pacer
    # itself runs 5% under the ceiling; benchmarks/bench_sync.py measures the real rate).
    assert fake.sustained_rate(METHODS_PATH) >= 0.65 * 40
    assert stats.rate_limited == 0


# --------------------------------------------------------------------------- whole-account re-reads

SMS_ID = "560ebaeef609ee1adaa7c551"
LINKED_PHONE = "+14155550188"


def account_links(store: Store, phone: str) -> dict[str, list[tuple[str, str, str | None]]]:
    """user_id -> (kind, source, identity) of each link of `phone`."""
    return {
        a["user_id"]: [(p["kind"], p["source"], p["identity"]) for p in a["phones"]]
        for a in store.lookup(phone)["accounts"]
    }


def user_reads(fake: FakeAuth0) -> list[str]:
    """Paths of the users API called (user objects and authentication methods), in order."""
    return [r.path for r in fake.requests_for(METHODS_PATH)]


def test_a_queued_reread_follows_linking_and_unlinking_of_an_sms_identity(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    maria = make_user("auth0|maria", email="maria@example.com", phone_number="+14155550100")
    fake.add_user(make_user(f"sms|{SMS_ID}", phone_number=LINKED_PHONE))
    seed(store, fake, [maria, fake.users[-1]])  # the export: two accounts, one number each
    # Maria links her SMS login (the log shows a sapi POST .../identities: re-read her).
    fake.link_accounts("auth0|maria", f"sms|{SMS_ID}")
    store.apply([RefetchRequested("auth0|maria", T0)])
    clock.advance(minutes=1)

    linked = enrich(store, client, None, clock=clock)

    assert (linked.accounts, linked.reread, linked.queued) == (1, 1, 1)
    assert account_links(store, LINKED_PHONE) == {
        "auth0|maria": [("passwordless", "live", f"sms|{SMS_ID}")],
        f"sms|{SMS_ID}": [("passwordless", "export", None)],  # until the next export or event
    }
    assert account_links(store, "+14155550100") == {"auth0|maria": [("profile", "live", None)]}
    assert user_reads(fake) == ["/api/v2/users/auth0|maria"]  # no MFA: one call
    assert store.refetch_queue() == []

    # She unlinks it again (sapi DELETE .../identities/sms/...): the number leaves her account.
    fake.unlink_account("auth0|maria", "sms", SMS_ID)
    store.apply([RefetchRequested("auth0|maria", clock() + ONE_S)])
    clock.advance(minutes=1)

    enrich(store, client, None, clock=clock)

    assert list(account_links(store, LINKED_PHONE)) == [f"sms|{SMS_ID}"]
    assert list(account_links(store, "+14155550100")) == ["auth0|maria"]


def test_a_queued_reread_of_an_mfa_account_reads_its_methods_too(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    alice = mfa_user("auth0|alice", phone_number="+14155550100")
    fake.auth_methods["auth0|alice"] = [make_phone_method("+14155550111")]
    seed(store, fake, [alice])
    enrich(store, client, None, clock=clock)
    # A Management API write changed her profile number; the event does not say to what.
    alice["phone_number"] = "+14155550122"
    store.apply([RefetchRequested("auth0|alice", clock() + ONE_S)])
    clock.advance(minutes=1)
    fake.clear_requests()

    result = enrich(store, client, None, clock=clock)

    assert user_reads(fake) == [
        "/api/v2/users/auth0|alice", "/api/v2/users/auth0|alice/authentication-methods",
    ]  # fmt: skip
    assert (result.accounts, result.reread, result.linked) == (1, 1, 1)
    assert account_links(store, "+14155550100") == {}
    assert account_links(store, "+14155550122") == {"auth0|alice": [("profile", "live", None)]}
    assert list(mfa_phones(store, "+14155550111")) == ["auth0|alice"]


def test_a_queued_reread_of_an_account_gone_from_auth0_deletes_it(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    seed(store, fake, [make_user("auth0|gone", phone_number="+14155550100")])
    fake.remove_user("auth0|gone")
    store.apply([RefetchRequested("auth0|gone", T0)])
    clock.advance(minutes=1)

    result = enrich(store, client, None, clock=clock)

    assert (result.accounts, result.missing, result.queued) == (0, 1, 1)
    assert store.account("auth0|gone") is None
    assert store.lookup("+14155550100")["accounts"] == []


def test_an_enrollment_delete_rereads_its_owner_and_an_unknown_one_is_counted(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    fake.auth_methods["auth0|alice"] = [
        make_phone_method("+14155550111", device_id="dev_Yh3kPq0wZr8sTn2v"),
        make_phone_method("+14155550112", device_id="dev_B7uLm4xQ9cEe1FaD"),
    ]
    seed(store, fake, [mfa_user("auth0|alice"), mfa_user("auth0|bob")])
    enrich(store, client, None, clock=clock)
    assert list(mfa_phones(store, "+14155550111")) == ["auth0|alice"]
    # An admin deletes one enrollment; the log names the enrollment, not its owner.
    fake.remove_authenticator("auth0|alice", "dev_Yh3kPq0wZr8sTn2v")
    stats = store.apply([
        EnrollmentRemoved("dev_Yh3kPq0wZr8sTn2v", clock() + ONE_S),
        EnrollmentRemoved("dev_NotInTheIndex00", clock() + ONE_S),
    ])  # fmt: skip
    assert (stats.refetches, stats.unknown_enrollments) == (1, 1)
    clock.advance(minutes=1)
    fake.clear_requests()

    result = enrich(store, client, None, clock=clock)

    assert (result.accounts, result.reread) == (1, 1)
    assert "auth0|bob" not in " ".join(user_reads(fake))
    assert mfa_phones(store, "+14155550111") == {}
    assert list(mfa_phones(store, "+14155550112")) == ["auth0|alice"]
