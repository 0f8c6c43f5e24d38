"""POST /hooks/auth0/action through the real app on uvicorn: signed events from the Actions."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.web import create_app
from jobs.action_inbox import LOCK_WAIT_S, MAX_BODY_BYTES
from jobs.runs import Runs
from phoneindex.changes import AccountSeen, MfaPhone, MfaPhonesReplaced, PhoneUnlinked, mfa_key
from phoneindex.db import make_engine, open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import serving
from tests.bot.test_cli import run
from tests.bot.test_hooks_logstream import write_locked
from tests.conftest import T0, Clock

SECRET = "act-3f9a1c7e5b2d4f6a8c0e2b4d6f8a1c3e"
ACTION = "/hooks/auth0/action"
JANE = "auth0|6560a1b2c3d4e5f6a7b8c9d0"
OMAR = "auth0|6560a1b2c3d4e5f6a7b8c9e1"
SMS_USER = "sms|6560a1b2c3d4e5f6a7b8c9d1"
N1, N2, N3 = "+14155550100", "+14155550142", "+442079460958"
_ids = iter(range(10**6))


def at(minutes: float) -> str:
    """An Action's `occurred_at` (JavaScript's toISOString), `minutes` after T0."""
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def event(
    kind: str, user: dict[str, Any] | None, minutes: float = 0, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"evt-{next(_ids):06d}", "type": kind, "occurred_at": at(minutes)}
    if user is not None:
        body["user"] = user
    return body | extra


def registered(user: dict[str, Any], minutes: float = 0) -> dict[str, Any]:
    return event("user.registered", user, minutes)


def login(user: dict[str, Any], minutes: float = 0, **login: Any) -> dict[str, Any]:
    return event("user.login", user, minutes, **({"login": login} if login else {}))


def message(
    user_id: str | None, number: str, method: str, purpose: str, minutes: float = 0
) -> dict[str, Any]:
    user = {"user_id": user_id} if user_id else None
    phone = {"number": number, "method": method, "purpose": purpose}
    return event("phone.message", user, minutes, phone=phone)


def signature(body: bytes, stamp: str, secret: str = SECRET) -> str:
    return (
        "v1=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


@contextmanager
def hook(store: Store, secret: str | None = SECRET) -> Iterator[httpx.Client]:
    """The real app with the Action secret configured (or not), served by uvicorn."""
    settings = load_settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        MFA_WHOIS_ACTION_SECRET=secret,
    )
    with serving(create_app(settings, store=store)) as http:
        yield http


def post(
    http: httpx.Client,
    doc: Any,
    *,
    stamp: int | str | None = None,
    secret: str = SECRET,
    sign: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST an event (a dict, or raw bytes) signed as the Actions sign it, at T0 by default."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    stamp = str(int(T0.timestamp()) if stamp is None else stamp)
    sent = {
        "Content-Type": "application/json",
        "X-Whois-Timestamp": stamp,
        "X-Whois-Signature": signature(body, stamp, secret) if sign is None else sign,
    }
    return http.post(ACTION, content=body, headers=sent | (headers or {}))


def links(store: Store, phone: str) -> list[tuple[str, str, str | None, bool | None, str]]:
    """(user id, kind, method, confirmed, source) of every link the lookup finds for `phone`."""
    return sorted(
        (acc["user_id"], p["kind"], p["method"], p["confirmed"], p["source"])
        for acc in store.lookup(phone)["accounts"]
        for p in acc["phones"]
    )


def queued(store: Store) -> list[str]:
    return [target.user_id for target in store.refetch_queue()]


def status(store: Store) -> dict[str, Any]:
    return Runs(store.engine, store, clock=store.clock).status_document()


# ----------------------------------------------------------------- user.registered


def test_a_registration_links_the_account_and_its_numbers_before_the_200(store: Store) -> None:
    sms_user = {
        "user_id": SMS_USER, "phone_number": N1, "phone_verified": True,
        "identities": [{"provider": "sms", "connection": "sms", "user_id": SMS_USER[4:]}],
    }  # fmt: skip
    linked = {
        "user_id": JANE, "email": "jane@example.com", "name": "Jane Doe", "phone_number": N3,
        "created_at": at(0), "multifactor": [],
        "identities": [
            {"provider": "auth0", "connection": "Username-Password-Authentication",
             "user_id": JANE[6:]},
            {"provider": "sms", "connection": "sms", "user_id": "6560aaaa",
             "profileData": {"phone_number": N2, "phone_verified": True}},
        ],
    }  # fmt: skip
    with hook(store) as http:
        first = post(http, registered(sms_user))
        assert links(store, N1) == [(SMS_USER, "passwordless", None, True, "action")]
        second = post(http, registered(linked, 1))
    assert first.status_code == second.status_code == 200
    assert second.json() == {
        "type": "user.registered", "duplicate": False, "changes": 2, "withheld_numbers": 0,
        "reread": False, "ignored": None,
    }  # fmt: skip
    [jane] = store.lookup(N2)["accounts"]
    assert (jane["user_id"], jane["email"], jane["name"]) == (JANE, "jane@example.com", "Jane Doe")
    assert jane["connection"] == "Username-Password-Authentication"
    assert jane["created_at"] == "2026-11-27T09:00:00Z"
    assert jane["phones"] == [
        {"kind": "passwordless", "method": None, "confirmed": True, "source": "action",
         "updated_at": "2026-11-27T09:01:00Z", "identity": "sms|6560aaaa"},
    ]  # fmt: skip
    assert links(store, N3) == [(JANE, "profile", None, None, "action")]
    assert queued(store) == []


def test_a_registration_as_the_shipped_action_sends_it(store: Store) -> None:
    user = {
        "user_id": SMS_USER, "email": None, "name": None, "phone_number": "+1-415-555-0142",
        "identities": [{"provider": "sms", "connection": "sms", "user_id": SMS_USER[4:],
                        "isSocial": False, "profileData": {}}],
        "multifactor": [],
    }  # fmt: skip
    with hook(store) as http:
        assert post(http, registered(user, -1)).status_code == 200
    [account] = store.lookup(N2)["accounts"]
    assert account["connection"] == "sms" and account["phones"][0]["kind"] == "passwordless"
    assert account["created_at"] == "2026-11-27T08:59:00Z"  # the registration itself


def test_a_registration_with_mfa_queues_a_read_of_its_numbers(store: Store) -> None:
    with hook(store) as http:
        answer = post(http, registered({"user_id": OMAR, "multifactor": ["guardian"]}))
    assert answer.status_code == 200 and answer.json()["reread"] is True
    assert queued(store) == [OMAR]


# ---------------------------------------------------------------------- user.login


@pytest.mark.parametrize(
    "methods",
    [
        [{"name": "pwd"}, {"name": "mfa", "type": "phone"}],
        [{"name": "sms"}],
        [{"name": "voice"}],
        [{"name": "phone_number"}],
        [{"name": "mfa", "type": "SMS"}],
    ],
)
def test_a_login_with_a_phone_factor_queues_a_reread(
    store: Store, methods: list[dict[str, str]]
) -> None:
    with hook(store) as http:
        answer = post(http, login({"user_id": JANE}, methods=methods))
    assert answer.status_code == 200 and answer.json()["reread"] is True
    assert queued(store) == [JANE]


def seed_mfa_account(store: Store) -> datetime:
    """JANE as an export and an MFA read left her: guardian, one SMS number, read at T0."""
    modified = T0 - timedelta(days=30)
    store.apply([
        AccountSeen(JANE, T0, "jane@example.com", "Jane Doe", "Username-Password-Authentication",
                    False, T0 - timedelta(days=400), T0 - timedelta(days=2), 41, ("guardian",),
                    modified),
        MfaPhonesReplaced(JANE, (MfaPhone(N1, "sms", True),), T0,
                          fetched_key=mfa_key(("guardian",), modified)),
    ])  # fmt: skip
    return modified


def test_a_login_that_changes_nothing_queues_nothing_and_keeps_what_it_does_not_carry(
    store: Store,
) -> None:
    seed_mfa_account(store)
    # As the shipped Actions send it: every key, null where the trigger shows nothing.
    user = {
        "user_id": JANE, "email": "jane.doe@example.com", "name": None, "phone_number": None,
        "identities": [], "multifactor": ["guardian"],
    }  # fmt: skip
    with hook(store) as http:
        answer = post(
            http, login(user, 5, methods=[{"name": "pwd"}], enrolled_factors=["phone", "otp"])
        )
    assert answer.status_code == 200 and answer.json()["reread"] is False
    assert queued(store) == [] and store.enrich_candidates(due_at=T0) == []  # no MFA re-read
    account = store.account(JANE)
    assert account is not None
    assert account["email"] == "jane.doe@example.com"  # refreshed from the event
    assert account["name"] == "Jane Doe" and account["created_at"] == "2025-10-23T09:00:00Z"
    assert account["connection"] == "Username-Password-Authentication"
    assert account["last_login"] == "2026-11-27T09:05:00Z"  # the login itself
    assert links(store, N1) == [(JANE, "mfa", "sms", True, "authenticators")]


@pytest.mark.parametrize(
    ("user", "login_fields"),
    [
        ({"user_id": JANE, "multifactor": ["guardian"]}, {"enrolled_factors": []}),  # removed
        ({"user_id": JANE, "multifactor": ["guardian", "duo"]}, {}),
        ({"user_id": JANE}, {"enrolled_factors": ["otp"]}),  # the phone factor is gone
        ({"user_id": JANE}, {"enrolled_factors": [{"type": "otp"}]}),
    ],
)
def test_a_login_whose_factors_differ_from_the_index_queues_a_reread(
    store: Store, user: dict[str, Any], login_fields: dict[str, Any]
) -> None:
    seed_mfa_account(store)
    with hook(store) as http:
        answer = post(http, login(user, 5, **login_fields))
    assert answer.status_code == 200 and answer.json()["reread"] is True
    assert queued(store) == [JANE]


def test_a_login_with_a_phone_factor_the_index_does_not_know_queues_a_reread(
    store: Store,
) -> None:
    with hook(store) as http:
        post(http, registered({"user_id": OMAR, "email": "omar@example.com"}))
        quiet = post(http, login({"user_id": OMAR}, 1, enrolled_factors=["otp"]))
        enrolled = post(http, login({"user_id": OMAR}, 2, enrolled_factors=[{"type": "phone"}]))
    assert quiet.json()["reread"] is False and enrolled.json()["reread"] is True
    assert queued(store) == [OMAR]


# -------------------------------------------------------------------- phone.message


def test_a_message_links_the_number_at_once_unconfirmed_then_confirmed(store: Store) -> None:
    with hook(store) as http:
        enroll = post(http, message(JANE, N1, "sms", "enroll"))
        assert enroll.status_code == 200
        assert links(store, N1) == [(JANE, "mfa", "sms", False, "action")]  # the very next lookup
        challenge = post(http, message(JANE, "+1 4155550100", "voice", "challenge", 3))
    assert challenge.status_code == 200 and challenge.json()["changes"] >= 1
    assert links(store, N1) == [(JANE, "mfa", "voice", True, "action")]
    assert store.lookup(N1)["accounts"][0]["phones"][0]["updated_at"] == "2026-11-27T09:03:00Z"


def test_an_enrollment_message_never_queues_a_read_that_would_miss_it(store: Store) -> None:
    with hook(store) as http:
        assert post(http, message(OMAR, N2, "sms", "enroll")).json()["reread"] is False
        # A challenge for an account the index never saw whole: read it.
        assert post(http, message(OMAR, N2, "sms", "challenge", 1)).json()["reread"] is True
    assert queued(store) == [OMAR]


@pytest.mark.parametrize("number", ["+1 ******0100", "XXXXXXXX0100", "12", "call me"])
def test_a_masked_or_unusable_number_is_counted_not_linked(store: Store, number: str) -> None:
    with hook(store) as http:
        answer = post(http, message(JANE, number, "sms", "enroll"))
    assert answer.status_code == 200
    assert answer.json()["withheld_numbers"] == 1 and answer.json()["changes"] == 0
    assert links(store, N1) == [] and store.summary()["numbers"]["mfa"] == 0
    assert status(store)["last_action"]["withheld_numbers"] == 1


def test_a_message_without_a_user_is_answered_and_ignored(store: Store) -> None:
    with hook(store) as http:
        answer = post(http, message(None, N1, "sms", "challenge"))
    assert answer.status_code == 200
    assert answer.json()["ignored"] == 'no "user.user_id": nothing to link'
    assert links(store, N1) == [] and store.summary()["accounts"] == 0
    assert status(store)["last_action"]["ignored"] is not None


# ------------------------------------------------------------- replay and reorder


def test_the_same_event_twice_is_applied_once(store: Store) -> None:
    first_event = message(JANE, N1, "sms", "challenge")
    with hook(store) as http:
        first = post(http, first_event)
        before = (store.lookup(N1), store.summary(), status(store)["last_action"])
        again = post(http, first_event, stamp=int(T0.timestamp()) + 60)  # re-signed later
        after = (store.lookup(N1), store.summary(), status(store)["last_action"])
        other = post(http, first_event | {"id": "evt-other"})
    assert first.json()["duplicate"] is False
    assert again.status_code == 200
    assert again.json() == {"type": "phone.message", "duplicate": True, "changes": 0}
    assert after == before
    assert other.json()["duplicate"] is False


def test_a_replay_to_another_process_is_a_duplicate_too(store: Store) -> None:
    doc = registered({"user_id": JANE, "phone_number": N3})
    other = Store(open_database(store.engine.url.render_as_string(hide_password=False)),
                  clock=store.clock)  # fmt: skip
    answers: list[httpx.Response] = []
    with hook(store) as one, hook(other) as two:
        body = json.dumps(doc).encode()
        threads = [threading.Thread(target=lambda h=h: answers.append(post(h, body)))
                   for h in (one, two, one, two)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    other.engine.dispose()
    assert [a.status_code for a in answers] == [200] * 4
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True]
    assert status(store)["last_action"]["events_24h"] == {"user.registered": 1}


def test_an_old_event_never_overwrites_a_newer_fact(store: Store) -> None:
    with hook(store) as http:
        user = {"user_id": JANE, "email": "new@example.com", "name": "Jane"}
        assert post(http, login(user, -20)).status_code == 200
        late = post(http, registered({"user_id": JANE, "email": "old@example.com"}, -30))
        assert late.status_code == 200
        # The number was removed (a log event 10 minutes ago); an older message arrives after.
        store.apply([PhoneUnlinked(JANE, N1, "mfa", "logs", T0 - timedelta(minutes=10))])
        assert post(http, message(JANE, N1, "sms", "challenge", -15)).status_code == 200
        assert links(store, N1) == []
        assert post(http, message(JANE, N1, "sms", "challenge", -1)).status_code == 200
    account = store.account(JANE)
    assert account is not None and account["email"] == "new@example.com"
    assert account["last_login"] == "2026-11-27T08:40:00Z"
    assert links(store, N1) == [(JANE, "mfa", "sms", True, "action")]


# ---------------------------------------------------------------------- signatures


NOW = int(T0.timestamp())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sign": "v1=" + "0" * 64}, "does not match"),
        ({"secret": "act-another-secret"}, "does not match"),
        ({"stamp": NOW - 301}, "300 s"),
        ({"stamp": NOW + 301}, "300 s"),
        ({"sign": ""}, "missing"),
        ({"stamp": ""}, "missing"),
        ({"stamp": "2026-11-27T09:00:00Z"}, "missing"),
        ({"sign": "v0=" + "0" * 64}, "missing"),
        ({"headers": {"X-Whois-Timestamp": str(NOW + 1)}}, "does not match"),  # not what was signed
    ],
)
def test_a_forged_stale_future_or_missing_signature_is_401_and_nothing_applied(
    store: Store, changes: dict[str, Any], reason: str
) -> None:
    with hook(store) as http:
        answer = post(http, message(JANE, N1, "sms", "challenge"), **changes)
    assert answer.status_code == 401 and reason in answer.json()["error"]
    assert SECRET not in answer.text
    assert links(store, N1) == [] and status(store)["last_action"] is None


def test_an_altered_body_is_401(store: Store) -> None:
    body = json.dumps(message(JANE, N1, "sms", "challenge")).encode()
    with hook(store) as http:
        answer = post(http, body.replace(N1.encode(), N2.encode()), sign=signature(body, str(NOW)))
    assert answer.status_code == 401 and links(store, N1) == links(store, N2) == []


def test_the_window_edges_and_rotated_secrets_are_accepted(store: Store) -> None:
    with hook(store) as http:
        old = post(http, message(JANE, N1, "sms", "enroll"), stamp=NOW - 300)
        ahead = post(http, message(JANE, N2, "sms", "enroll"), stamp=NOW + 300)
        doc = json.dumps(message(JANE, N3, "sms", "enroll")).encode()
        both = f"{signature(doc, str(NOW), 'act-retired-secret')}, {signature(doc, str(NOW))}"
        rotated = post(http, doc, sign=both)
    assert [old.status_code, ahead.status_code, rotated.status_code] == [200, 200, 200]
    assert links(store, N3) == [(JANE, "mfa", "sms", False, "action")]


@pytest.mark.parametrize("configured", [None, ""])
def test_no_secret_configured_is_401_for_everyone(store: Store, configured: str | None) -> None:
    with hook(store, configured) as http:
        signed_empty = post(http, message(JANE, N1, "sms", "challenge"), secret="")
        signed = post(http, message(JANE, N1, "sms", "challenge"))
    assert signed_empty.status_code == signed.status_code == 401
    assert "MFA_WHOIS_ACTION_SECRET" in signed.json()["error"]
    assert links(store, N1) == []


# ---------------------------------------------------------------- bad bodies


def test_a_body_over_1_mb_is_413_and_nothing_applied(store: Store) -> None:
    doc = message(JANE, N1, "sms", "challenge") | {"padding": "x" * MAX_BODY_BYTES}
    body = json.dumps(doc).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    stamp = str(NOW)
    with hook(store) as http:
        declared = post(http, body)
        streamed = http.post(
            ACTION,
            content=chunks(),
            headers={"X-Whois-Timestamp": stamp, "X-Whois-Signature": signature(body, stamp)},
        )
        assert post(http, message(JANE, N2, "sms", "enroll")).status_code == 200  # it goes on
    assert declared.status_code == streamed.status_code == 413
    assert "1 MB" in declared.json()["error"]
    assert links(store, N1) == []


def _without(doc: dict[str, Any], *path: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    inner = doc
    for key in path[:-1]:
        inner = inner[key]
    del inner[path[-1]]
    return doc


_MSG = message(JANE, N1, "sms", "challenge")
_LOGIN = login({"user_id": JANE})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (_without(_MSG, "id"), '"id" is missing'),
        (_MSG | {"id": 7}, '"id" is missing'),
        (_MSG | {"id": "x" * 201}, "longer than 200"),
        (_without(_MSG, "type"), '"type" is missing or not one of'),
        (_MSG | {"type": "user.deleted"}, "not one of user.registered, user.login"),
        (_without(_MSG, "occurred_at"), '"occurred_at" is missing'),
        (_MSG | {"occurred_at": "2026-11-27T09:00:00"}, "with a time zone"),
        (_MSG | {"occurred_at": at(6)}, '"occurred_at" is in the future'),
        (_MSG | {"occurred_at": "0001-01-01T00:00:00+14:00"}, '"occurred_at" is before 2000'),
        (_LOGIN | {"user": {"user_id": JANE, "logins_count": 2**63}}, "logins_count is out of"),
        (_without(_LOGIN, "user", "user_id"), '"user.user_id" is missing'),
        (_without(_LOGIN, "user"), '"user.user_id" is missing'),
        (_LOGIN | {"user": "auth0|1"}, '"user" is not an object'),
        (_LOGIN | {"user": {"user_id": JANE, "created_at": "yesterday"}}, "created_at is not"),
        (_without(_MSG, "phone"), '"phone" is missing'),
        (_without(_MSG, "phone", "number"), '"phone.number" is missing'),
        (
            _MSG | {"phone": {"number": N1, "method": "text", "purpose": "challenge"}},
            "sms or voice",
        ),
        (
            _MSG | {"phone": {"number": N1, "method": "sms", "purpose": "otp"}},
            "enroll or challenge",
        ),
    ],
)
def test_a_malformed_event_is_400_with_its_reason_and_nothing_applied(
    store: Store, body: Any, reason: str
) -> None:
    with hook(store) as http:
        answer = post(http, body)
    assert answer.status_code == 400 and reason in answer.json()["error"], answer.text
    assert links(store, N1) == [] and store.summary()["accounts"] == 0
    assert status(store)["last_action"] is None
    assert N1 not in answer.text


# -------------------------------------------------------------- status and privacy


def test_status_shows_the_last_action_event_and_the_days_counts(store: Store, clock: Clock) -> None:
    with hook(store) as http:
        for doc in (registered({"user_id": JANE}), login({"user_id": JANE}, 1),
                    message(JANE, N1, "sms", "challenge", 2)):  # fmt: skip
            assert post(http, doc).status_code == 200
        last = status(store)["last_action"]
        clock.advance(hours=25)  # the next event prunes ids older than a day
        stamp = int(clock.now.timestamp())
        post(http, message(JANE, N2, "sms", "enroll", 25 * 60), stamp=stamp)
        later = status(store)["last_action"]
    assert last == {
        "at": "2026-11-27T09:00:00Z", "type": "phone.message",
        "occurred_at": "2026-11-27T09:02:00Z", "changes": 1, "withheld_numbers": 0,
        "reread": False, "ignored": None,
        "events_24h": {"phone.message": 1, "user.login": 1, "user.registered": 1},
    }  # fmt: skip
    assert later["at"] == "2026-11-28T10:00:00Z"
    assert later["events_24h"] == {"phone.message": 1}


def test_ids_older_than_a_day_are_forgotten(store: Store, clock: Clock) -> None:
    doc = message(JANE, N1, "sms", "challenge")
    with hook(store) as http:
        assert post(http, doc).json()["duplicate"] is False
        clock.advance(hours=25)
        stamp = int(clock.now.timestamp())
        post(http, message(OMAR, N2, "sms", "enroll"), stamp=stamp)  # prunes
        again = post(http, doc, stamp=stamp)
    assert again.json()["duplicate"] is False  # forgotten, applied again: harmless (LWW)
    assert links(store, N1) == [(JANE, "mfa", "sms", True, "action")]


def test_mfa_whois_status_prints_the_last_action_event(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    store = Store(open_database(url), clock=lambda: T0)
    before = run(["status"], tmp_path, DATABASE_URL=url)
    with hook(store) as http:
        assert post(http, message(JANE, N1, "sms", "challenge")).status_code == 200
    after = run(["status"], tmp_path, DATABASE_URL=url)
    as_json = json.loads(run(["status", "--json"], tmp_path, DATABASE_URL=url).stdout)
    store.engine.dispose()
    assert "last Action event: never" in before.stdout, before.stdout + before.stderr
    line = "last Action event: 2026-11-27 09:00Z: phone.message, 2 changes, account re-read queued"
    assert line in after.stdout, after.stdout + after.stderr
    assert as_json["last_action"]["type"] == "phone.message"


def test_no_number_secret_or_signature_in_logs_or_error_bodies(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    good = json.dumps(message(JANE, N1, "sms", "challenge")).encode()
    masked = message(JANE, "+1 ******0142", "sms", "enroll")
    bad_phone = message(JANE, N1, "sms", "otp")
    with hook(store) as http:
        answers = [
            post(http, good),
            post(http, masked),
            post(http, bad_phone),
            post(http, good.replace(b"challenge", b"enroll"), sign=signature(good, str(NOW))),
            post(http, good, secret="wrong-" + SECRET),
        ]
    assert [a.status_code for a in answers] == [200, 200, 400, 401, 401]
    seen = caplog.text + "".join(a.text for a in answers)
    assert "action event" in caplog.text and "refused" in caplog.text  # it did log
    forbidden = [SECRET, N1, N1[2:], N1[-7:], "4155550100", "******0142"]
    forbidden += [signature(good, str(NOW))[3:], signature(good, str(NOW), "wrong-" + SECRET)[3:]]
    for secret in forbidden:
        assert secret not in seen


# ------------------------------------------------------------------- busy database


def test_an_event_while_an_import_holds_the_database_is_503_then_applied_on_retry(
    store: Store,
) -> None:
    doc = message(JANE, N1, "sms", "challenge")
    with hook(store) as http:
        assert post(http, message(OMAR, N3, "sms", "enroll")).status_code == 200
        with write_locked(store):
            started = time.monotonic()
            refused = post(http, doc)
            waited = time.monotonic() - started
        assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
        assert LOCK_WAIT_S - 0.5 < waited < LOCK_WAIT_S + 3
        assert "busy" in refused.json()["error"] and "Nothing is lost" in refused.json()["error"]
        assert links(store, N1) == []
        retried = post(http, doc)  # not remembered: the retry is applied
    assert retried.status_code == 200 and retried.json()["duplicate"] is False
    assert links(store, N1) == [(JANE, "mfa", "sms", True, "action")]


def test_an_unreachable_database_is_503() -> None:
    store = Store(make_engine("postgresql://postgres@127.0.0.1:1/mfa_whois"), clock=lambda: T0)
    with hook(store) as http:
        answer = post(http, message(JANE, N1, "sms", "challenge"))
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert "not applied" in answer.json()["error"]
