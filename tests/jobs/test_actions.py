"""Action events -> changes: which logins are worth a re-read, what a login keeps."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from jobs.actions import (
    BadActionEvent,
    enrolled_phone,
    event_changes,
    parse_event,
    phone_factor_used,
)
from phoneindex.changes import (
    AccountSeen,
    PhoneLinked,
    ProfilePhonesReplaced,
    RefetchRequested,
)
from phoneindex.models import EPOCH
from phoneindex.store import AccountState
from tests.conftest import T0

JANE = "auth0|6560a1b2c3d4e5f6a7b8c9d0"
MODIFIED = T0 - timedelta(days=30)
KNOWN = AccountState(
    AccountSeen(JANE, T0 - timedelta(days=1), "jane@example.com", "Jane Doe", "db", False,
                T0 - timedelta(days=400), T0 - timedelta(days=2), 41, ("guardian",), MODIFIED),
    mfa_numbers=1,
    mfa_masked=0,
)  # fmt: skip


def parsed(kind: str, user: dict[str, Any], **extra: Any) -> Any:
    body = {"id": "evt-1", "type": kind, "occurred_at": "2026-11-27T08:59:00Z", "user": user}
    return parse_event(json.dumps(body | extra).encode(), now=T0)


@pytest.mark.parametrize(
    ("login", "used"),
    [
        ({"methods": [{"name": "mfa", "type": "phone"}]}, True),
        ({"methods": [{"name": "mfa", "type": "voice"}]}, True),
        ({"methods": [{"name": "SMS"}]}, True),
        ({"methods": [{"name": "phone_number"}]}, True),
        ({"methods": [{"name": "pwd"}, {"name": "mfa", "type": "otp"}]}, False),
        ({"methods": [{"name": "mfa", "type": "webauthn-roaming"}]}, False),
        ({"methods": ["sms", None, 3]}, False),  # not method objects
        ({"methods": "sms"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_which_logins_used_a_phone_factor(login: dict[str, Any] | None, used: bool) -> None:
    assert phone_factor_used(login) is used


@pytest.mark.parametrize(
    ("login", "phone"),
    [
        ({"enrolled_factors": ["phone", "otp"]}, True),
        ({"enrolled_factors": [{"type": "phone", "options": {}}]}, True),
        ({"enrolled_factors": ["otp", "webauthn-platform"]}, False),
        ({"enrolled_factors": []}, False),
        ({}, None),  # the event does not say: nothing to compare
        (None, None),
    ],
)
def test_enrolled_phone_factors(login: dict[str, Any] | None, phone: bool | None) -> None:
    assert enrolled_phone(login) is phone


def test_a_login_keeps_what_it_does_not_carry_and_the_mfa_fingerprint() -> None:
    event = parsed("user.login", {"user_id": JANE, "name": "Jane D.", "multifactor": ["guardian"]})
    mapped = event_changes(event, KNOWN)
    [account] = mapped.changes
    assert isinstance(account, AccountSeen) and mapped.reread is None
    assert account.name == "Jane D." and account.email == "jane@example.com"
    assert account.logins_count == 41 and account.created_at == KNOWN.seen.created_at
    assert account.multifactor == ("guardian",) and account.multifactor_last_modified == MODIFIED
    assert account.last_login == event.occurred_at and account.observed_at == event.occurred_at


def test_a_login_to_an_account_known_only_by_mention_takes_the_event_as_it_is() -> None:
    mentioned = AccountState(AccountSeen(JANE, EPOCH), mfa_numbers=0, mfa_masked=0)
    mapped = event_changes(parsed("user.login", {"user_id": JANE, "email": "j@x.org"}), mentioned)
    [account] = mapped.changes
    assert isinstance(account, AccountSeen)
    assert (account.email, account.name, account.logins_count) == ("j@x.org", None, None)


def test_a_masked_mfa_read_counts_as_a_known_phone_factor() -> None:
    masked = AccountState(KNOWN.seen, mfa_numbers=0, mfa_masked=1)
    event = parsed("user.login", {"user_id": JANE}, login={"enrolled_factors": ["phone"]})
    assert event_changes(event, masked).reread is None  # no re-read at every login


def test_a_registration_with_an_unusable_number_unlinks_nothing() -> None:
    user = {"user_id": JANE, "phone_number": "555-0100", "identities": [
        {"provider": "sms", "connection": "sms", "user_id": "abc",
         "profileData": {"phone_number": "+14155550142"}},
    ]}  # fmt: skip
    mapped = event_changes(parsed("user.registered", user), None)  # no default region
    assert mapped.withheld_numbers == 1
    assert not any(isinstance(c, ProfilePhonesReplaced) for c in mapped.changes)
    assert [c.phone for c in mapped.changes if isinstance(c, PhoneLinked)] == ["+14155550142"]


def test_a_challenge_with_a_masked_number_queues_a_reread_and_links_nothing() -> None:
    phone = {"number": "+1 XXX-XXX-0100", "method": "sms", "purpose": "challenge"}
    mapped = event_changes(parsed("phone.message", {"user_id": JANE}, phone=phone), KNOWN)
    assert mapped.withheld_numbers == 1
    assert mapped.changes == [RefetchRequested(JANE, T0 - timedelta(minutes=1))]


def test_the_id_and_occurred_at_are_checked() -> None:
    with pytest.raises(BadActionEvent, match="in the future"):
        parsed("user.login", {"user_id": JANE}, occurred_at="2026-11-27T09:05:01Z")
    assert parsed("user.login", {"user_id": JANE}, occurred_at="2026-11-27T09:05:00Z")


def test_an_empty_multifactor_list_is_not_taken_as_mfa_removed() -> None:
    user = {"user_id": JANE, "email": None, "identities": [], "multifactor": []}
    mapped = event_changes(parsed("user.login", user), KNOWN)
    [account] = mapped.changes
    assert mapped.reread is None and isinstance(account, AccountSeen)
    assert account.multifactor == ("guardian",) and account.email == "jane@example.com"
    assert account.connection == "db"
