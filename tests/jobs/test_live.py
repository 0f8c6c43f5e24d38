"""Live checks against a fake Auth0 tenant: a lookup re-checked, a number searched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobs.auth0 import Auth0AuthError, Auth0Client
from jobs.exports import UserMapper
from jobs.live import live_lookup, live_search
from jobs.ratelimit import RetryPolicy
from phoneindex.changes import MfaPhone, MfaPhonesReplaced
from phoneindex.store import Store
from tests.conftest import Clock
from tests.fake_auth0 import FakeAuth0, make_method, make_phone_method, make_user
from tests.jobs.test_enrich import SEEN_AT, client_for, mfa_user, seed

PHONE = "+14155550100"
OTHER = "+14155550199"


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with FakeAuth0(rate=500, burst=500) as tenant:
        yield tenant


@pytest.fixture
def client(fake: FakeAuth0) -> Iterator[Auth0Client]:
    with client_for(fake) as c:
        yield c


def with_mfa(store: Store, user_id: str, phone: str, method: str = "sms") -> None:
    """The index knows `phone` as the account's MFA number (as an earlier enrichment read it)."""
    mfa = MfaPhone(phone, "voice" if method == "voice" else "sms", True)
    store.apply([MfaPhonesReplaced(user_id, (mfa,), SEEN_AT)])


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["user_id"]: a for a in doc["accounts"]}


def test_live_lookup_follows_a_changed_mfa_number_and_marks_what_it_confirmed(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    alice = mfa_user("auth0|alice", email="alice@example.com")
    dave = mfa_user("auth0|dave", email="dave@example.com")
    seed(store, fake, [alice, dave])
    with_mfa(store, "auth0|alice", PHONE)
    with_mfa(store, "auth0|dave", PHONE)
    # In Auth0 now: Alice moved her MFA to another phone and a new address; Dave did not.
    alice["email"] = "alice@new.example.com"
    fake.auth_methods["auth0|alice"] = [make_phone_method(OTHER, "voice")]
    fake.auth_methods["auth0|dave"] = [make_phone_method(PHONE), make_method("totp")]
    clock.advance(minutes=1)

    doc = live_lookup(store, client, PHONE, query="(415) 555-0100", clock=clock)

    assert (doc["query"], doc["phone"]) == ("(415) 555-0100", PHONE)
    assert list(by_id(doc)) == ["auth0|dave"]
    assert by_id(doc)["auth0|dave"]["phones"] == [
        {"kind": "mfa", "method": "sms", "confirmed": True, "source": "live",
         "updated_at": "2026-11-27T09:01:00Z", "identity": None},
    ]  # fmt: skip
    assert doc["live"] == {
        "checked_at": "2026-11-27T09:01:00Z", "checked": 2, "errors": 0, "deleted": 0,
        "error": None,
    }  # fmt: skip
    assert set(doc) == {"query", "phone", "accounts", "freshness", "live"}
    moved = by_id(store.lookup(OTHER))["auth0|alice"]
    assert moved["email"] == "alice@new.example.com"
    assert moved["phones"][0] | {"updated_at": None} == {
        "kind": "mfa", "method": "voice", "confirmed": True, "source": "live", "updated_at": None,
        "identity": None,
    }  # fmt: skip
    assert sorted(r.path for r in fake.requests_for("/api/v2/users/")) == [
        "/api/v2/users/auth0|alice", "/api/v2/users/auth0|alice/authentication-methods",
        "/api/v2/users/auth0|dave", "/api/v2/users/auth0|dave/authentication-methods",
    ]  # fmt: skip


def test_live_lookup_unlinks_a_passwordless_number_that_moved(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    sms = make_user("sms|abc123", phone_number=PHONE)
    seed(store, fake, [sms])
    sms["phone_number"] = OTHER
    clock.advance(minutes=1)

    doc = live_lookup(store, client, PHONE, clock=clock)

    assert doc["accounts"] == []
    assert doc["live"]["checked"] == 1
    [account] = store.lookup(OTHER)["accounts"]
    assert [(p["kind"], p["source"]) for p in account["phones"]] == [("passwordless", "live")]


def test_live_lookup_removes_an_account_deleted_in_auth0(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    seed(store, fake, [make_user("auth0|gone", phone_number=PHONE)])
    fake.remove_user("auth0|gone")

    doc = live_lookup(store, client, PHONE, clock=clock)

    assert doc["accounts"] == []
    assert (doc["live"]["checked"], doc["live"]["deleted"]) == (1, 1)
    assert store.account("auth0|gone") is None


def test_live_lookup_keeps_a_known_number_auth0_shows_masked(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    seed(store, fake, [mfa_user("auth0|alice")])
    with_mfa(store, "auth0|alice", PHONE)
    fake.auth_methods["auth0|alice"] = [make_phone_method(PHONE), make_phone_method(OTHER)]
    fake.mask_mfa_numbers = True
    clock.advance(minutes=1)

    doc = live_lookup(store, client, PHONE, clock=clock)

    # Auth0 hid the numbers: the known one stays as it was learnt, the other is never indexed.
    [phone] = by_id(doc)["auth0|alice"]["phones"]
    assert (phone["kind"], phone["source"]) == ("mfa", "authenticators")
    assert doc["live"]["checked"] == 1
    assert store.lookup(OTHER)["accounts"] == []
    assert store.summary()["masked_mfa_numbers"] == 2


def test_live_lookup_reports_auth0_trouble_and_leaves_the_index_as_it_was(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    seed(store, fake, [mfa_user("auth0|alice"), mfa_user("auth0|bob")])
    with_mfa(store, "auth0|alice", PHONE)
    with_mfa(store, "auth0|bob", PHONE)
    before = store.lookup(PHONE)
    fake.fail_next(10, 503)

    with client_for(fake, retry=RetryPolicy(max_attempts=1)) as client:
        doc = live_lookup(store, client, PHONE, clock=clock)

    assert doc["accounts"] == before["accounts"]
    assert (doc["live"]["checked"], doc["live"]["errors"]) == (0, 2)
    assert doc["live"]["error"].startswith("Auth0 answered 503 for GET /api/v2/users/")
    assert PHONE not in doc["live"]["error"]
    assert fake.count("/api/v2/", status=503) == 1  # after Auth0 gave up, nobody else was tried


def test_live_checks_with_refused_credentials_raise(
    store: Store, fake: FakeAuth0, clock: Clock
) -> None:
    seed(store, fake, [make_user("auth0|alice", phone_number=PHONE)])
    with client_for(fake) as client:
        fake.client_secret = "rotated"
        with pytest.raises(Auth0AuthError):
            live_lookup(store, client, PHONE, clock=clock)
        with pytest.raises(Auth0AuthError):
            live_search(store, client, OTHER, clock=clock)


def test_live_search_finds_passwordless_and_profile_numbers(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    fake.add_user(make_user("sms|xyz789", phone_number=PHONE))
    fake.add_user(make_user("auth0|frank", phone_number=PHONE, phone_verified=False))
    fake.add_user(make_user("auth0|other", phone_number=OTHER))
    assert store.lookup(PHONE)["accounts"] == []

    doc = live_search(store, client, PHONE, clock=clock)

    found = {a["user_id"]: a["phones"] for a in doc["accounts"]}
    assert found == {
        "sms|xyz789": [{"kind": "passwordless", "method": None, "confirmed": True,
                        "source": "live", "updated_at": "2026-11-27T09:00:00Z",
                        "identity": None}],
        "auth0|frank": [{"kind": "profile", "method": None, "confirmed": False,
                         "source": "live", "updated_at": "2026-11-27T09:00:00Z",
                         "identity": None}],
    }  # fmt: skip
    assert (doc["live"]["checked"], doc["live"]["errors"]) == (2, 0)
    [search] = fake.requests_for("/api/v2/users", method="GET")
    assert search.query["q"] == f'phone_number:"{PHONE}"'
    assert store.account("sms|xyz789") is not None


def test_live_search_without_a_hit_answers_an_empty_lookup(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    doc = live_search(store, client, PHONE, query="415-555-0100", clock=clock)

    assert (doc["query"], doc["accounts"], doc["live"]["checked"]) == ("415-555-0100", [], 0)
    assert doc["freshness"]["stale"] is True


# --------------------------------------------------------------------------- linked identities

THIRD = "+14155550177"
SMS_ID = "560ebaeef609ee1adaa7c551"


def links(store: Store, phone: str) -> dict[str, list[tuple[str, str, str | None]]]:
    """user_id -> (kind, source, identity) of each link of `phone`."""
    return {
        a["user_id"]: [(p["kind"], p["source"], p["identity"]) for p in a["phones"]]
        for a in store.lookup(phone)["accounts"]
    }


def test_a_live_check_finds_a_linked_sms_identity_beside_the_root_number(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    maria = make_user("auth0|maria", email="maria@example.com", phone_number=OTHER)
    seed(store, fake, [maria])  # the export before Maria linked her SMS login
    fake.add_user(make_user(f"sms|{SMS_ID}", phone_number=PHONE))
    ident = fake.link_accounts("auth0|maria", f"sms|{SMS_ID}")
    assert ident["profileData"]["phone_number"] == PHONE
    clock.advance(minutes=1)

    doc = live_lookup(store, client, OTHER, clock=clock)

    assert links(store, OTHER) == {"auth0|maria": [("profile", "live", None)]}
    assert links(store, PHONE) == {"auth0|maria": [("passwordless", "live", f"sms|{SMS_ID}")]}
    assert doc["live"]["checked"] == 1
    # Maria has no MFA: the user object says so, and no authentication-methods call is made.
    assert [r.path for r in fake.requests_for("/api/v2/users/")] == ["/api/v2/users/auth0|maria"]


def test_a_live_check_drops_an_unlinked_identity_and_a_changed_root_number(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    fake.add_user(make_user(f"sms|{SMS_ID}", phone_number=PHONE))
    maria = make_user("auth0|maria", phone_number=OTHER)
    fake.add_user(maria)
    fake.link_accounts("auth0|maria", f"sms|{SMS_ID}")
    seed(store, fake, [maria])  # the export after linking: both numbers on Maria
    assert links(store, PHONE) == {"auth0|maria": [("passwordless", "export", f"sms|{SMS_ID}")]}
    # In Auth0 since: the SMS identity unlinked (a user of its own again), a new root number.
    fake.unlink_account("auth0|maria", "sms", SMS_ID)
    maria["phone_number"] = THIRD
    clock.advance(minutes=1)

    doc = live_lookup(store, client, PHONE, clock=clock)

    assert doc["accounts"] == []
    assert links(store, OTHER) == {}
    assert links(store, THIRD) == {"auth0|maria": [("profile", "live", None)]}


def test_live_search_takes_a_hit_whole_with_its_linked_identities(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    fake.add_user(make_user(f"sms|{SMS_ID}", phone_number=THIRD))
    frank = make_user("auth0|frank", phone_number=OTHER)
    seed(store, fake, [frank])
    frank["phone_number"] = PHONE  # changed since the export
    fake.link_accounts("auth0|frank", f"sms|{SMS_ID}")

    doc = live_search(store, client, PHONE, clock=clock)

    assert links(store, PHONE) == {"auth0|frank": [("profile", "live", None)]}
    assert links(store, THIRD) == {"auth0|frank": [("passwordless", "live", f"sms|{SMS_ID}")]}
    assert links(store, OTHER) == {}
    assert doc["live"]["checked"] == 1


def test_a_number_the_check_cannot_read_is_not_taken_for_gone(
    store: Store, fake: FakeAuth0, client: Auth0Client, clock: Clock
) -> None:
    # A profile number kept in national format; the import read it with its default region.
    frank = make_user("auth0|frank", phone_number="(415) 555-0100")
    fake.add_user(frank)
    store.apply(UserMapper(SEEN_AT, "US").changes(frank))
    fake.add_user(make_user(f"sms|{SMS_ID}", phone_number=THIRD))
    fake.link_accounts("auth0|frank", f"sms|{SMS_ID}")
    clock.advance(minutes=1)

    live_lookup(store, client, PHONE, clock=clock)  # no default region here

    assert links(store, PHONE) == {"auth0|frank": [("profile", "export", None)]}
    assert links(store, THIRD) == {"auth0|frank": [("passwordless", "live", f"sms|{SMS_ID}")]}
