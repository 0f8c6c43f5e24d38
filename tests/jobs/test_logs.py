"""Auth0 log events -> changes: each event type, malformed events, replays and reordering."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from jobs.logs import MAX_UNMAPPED_TYPES, OTHER_TYPES, BadEvent, event_changes, events_changes
from phoneindex.changes import (
    AccountDeleted,
    AccountSeen,
    Change,
    EnrollmentRemoved,
    PhoneLinked,
    PhoneUnlinked,
    RefetchRequested,
)
from phoneindex.store import Store

T = datetime(2026, 11, 20, 14, 30, 5, 123000, tzinfo=UTC)
DATE = "2026-11-20T14:30:05.123Z"
DB_USER = "auth0|6560a1b2c3d4e5f6a7b8c9d0"
SMS_USER = "sms|6560a1b2c3d4e5f6a7b8c9d1"
ADMIN = "google-oauth2|105261262156475850461"
CLIENT = "AaiyAPdpYdesoKnqjj8HJqRn4T5titww"


def log_event(type_: str, user_id: str | None = DB_USER, **fields: Any) -> dict[str, Any]:
    """An Auth0 log event as GET /api/v2/logs returns it (or a log stream's `data`)."""
    event: dict[str, Any] = {
        "date": DATE,
        "type": type_,
        "description": "",
        "client_id": CLIENT,
        "client_name": "Call Center Portal",
        "ip": "203.0.113.7",
        "user_agent": "Chrome 131.0.0 / Mac OS X 10.15.7",
        "hostname": "acme.us.auth0.com",
        "details": {},
        "log_id": "90020261120143006123456000000000000001223372061234567890",
    }
    if user_id is not None:
        event["user_id"] = user_id
        event["user_name"] = "jane@example.com"
    event.update(fields)
    return event


def guardian(type_: str, description: str, number: Any = None, key: str = "authenticator") -> Any:
    """A Guardian (gd_*) event, with the number where Auth0 puts it when there is one."""
    details = {} if number is None else {key: {"phone_number": number}}
    return log_event(type_, description=description, details=details)


def management_api(
    method: str,
    path: str,
    status: int = 204,
    body: dict[str, Any] | None = None,
    answer: Any = None,
    description: str = "Delete a user",
) -> dict[str, Any]:
    """A `sapi` event: the user_id is the admin making the call, the target is in the path."""
    request = {
        "method": method,
        "path": path,
        "query": {},
        "body": body or {},
        "channel": "https://manage.auth0.com/",
        "ip": "198.51.100.20",
        "auth": {
            "user": {"user_id": ADMIN, "name": "Admin", "email": "admin@example.com"},
            "strategy": "jwt",
            "credentials": {"jti": "d09f5bf3b833ae9702445b9735c90a31"},
        },
    }
    details = {"request": request, "response": {"statusCode": status, "body": answer or {}}}
    return log_event("sapi", ADMIN, description=description, details=details)


ENROLLMENT = "dev_Ab12Cd34Ef56Gh78"


def challenge(
    type_: str, description: str, number: Any = None, factor: str = "sms", **more: Any
) -> dict[str, Any]:
    """A Guardian challenge event naming its authenticator (`sms|dev_...`) and its number."""
    authenticator: dict[str, Any] = {"id": f"{factor}|{ENROLLMENT}", "type": factor}
    if number is not None:
        authenticator["phone_number"] = number
    return log_event(
        type_, description=description, details={"authenticator": authenticator}, **more
    )


def signup(user_id: str, body: dict[str, Any], connection: str, strategy: str) -> Any:
    body = {"tenant": "acme", "client_id": CLIENT, "connection": connection, **body}
    fields = {"connection": connection, "strategy": strategy, "details": {"body": body}}
    return log_event("ss", user_id, connection_id="con_SmsConnection001", **fields)


def mfa(phone: str, method: Any, confirmed: bool | None, user: str = DB_USER) -> PhoneLinked:
    return PhoneLinked(user, phone, "mfa", "logs", T, method, confirmed)


REFETCH = RefetchRequested(DB_USER, T)
ENROLLED_SMS = "Guardian - Enrollment complete (sms)"
SECOND_FACTOR_SMS = "Guardian - Second factor sms sent"

CASES: list[tuple[str, dict[str, Any], list[Change]]] = [
    (
        "enrollment with a Guardian-formatted number",
        guardian("gd_enrollment_complete", ENROLLED_SMS, "+1 4155550100"),
        [mfa("+14155550100", "sms", True), REFETCH],
    ),
    (
        "voice enrollment with the number under details.enrollment",
        guardian(
            "gd_enrollment_complete",
            "Guardian - Enrollment complete (voice)",
            "+442079460958",
            key="enrollment",
        ),
        [mfa("+442079460958", "voice", True), REFETCH],
    ),
    (
        "enrollment with a masked number is never linked",
        guardian("gd_enrollment_complete", ENROLLED_SMS, "XXXXXXXX0100"),
        [REFETCH],
    ),
    (
        "enrollment of a factor without a number",
        guardian("gd_enrollment_complete", "Guardian - Enrollment complete (otp)"),
        [REFETCH],
    ),
    (
        "unenroll naming the number",
        guardian("gd_unenroll", "Unenroll device account", "+14155550100"),
        [PhoneUnlinked(DB_USER, "+14155550100", "mfa", "logs", T), REFETCH],
    ),
    (
        "unenroll without a number",
        guardian("gd_unenroll", "Unenroll device account"),
        [REFETCH],
    ),
    (
        "device account updated with a number",
        guardian("gd_update_device_account", "Update device account", "+1 4155550199"),
        [mfa("+14155550199", None, None), REFETCH],
    ),
    (
        "MFA reset by an admin",
        guardian("gd_user_delete", "Deleted multi-factor user account"),
        [REFETCH],
    ),
    (
        "an MFA SMS does not prove the enrollment is confirmed",
        guardian("gd_send_sms", SECOND_FACTOR_SMS, "+14155550100"),
        [mfa("+14155550100", "sms", None)],
    ),
    (
        "enrollment SMS: the number is not confirmed yet",
        guardian("gd_send_sms", "Guardian - Enrollment sms sent", "+14155550100"),
        [mfa("+14155550100", "sms", False), REFETCH],
    ),
    (
        "an MFA SMS with another description",
        guardian("gd_send_sms", "SMS Sent", "+14155550100"),
        [mfa("+14155550100", "sms", None)],
    ),
    (
        "an MFA voice call",
        guardian("gd_send_voice", "Guardian - Second factor voice call", "+1 4155550100"),
        [mfa("+14155550100", "voice", None)],
    ),
    (
        "voice call to a masked number",
        guardian("gd_send_voice", "Guardian - Second factor voice call", "+1 XXX-XXX-0100"),
        [REFETCH],
    ),
    (
        "SMS sent without a number in the log",
        guardian("gd_send_sms", SECOND_FACTOR_SMS),
        [REFETCH],
    ),
    (
        "signup of an SMS passwordless user",
        signup(SMS_USER, {"phone_number": "+14155550142"}, "sms", "sms"),
        [
            AccountSeen(SMS_USER, T, connection="sms", created_at=T),
            PhoneLinked(SMS_USER, "+14155550142", "passwordless", "logs", T),
        ],
    ),
    (
        "signup with phone as identifier on a database connection",
        signup(
            DB_USER,
            {"email": "jane@example.com", "phone_number": "+14155550143", "phone_verified": True},
            "Username-Password-Authentication",
            "auth0",
        ),
        [
            AccountSeen(
                DB_USER,
                T,
                email="jane@example.com",
                connection="Username-Password-Authentication",
                created_at=T,
            ),
            PhoneLinked(DB_USER, "+14155550143", "profile", "logs", T, confirmed=True),
        ],
    ),
    (
        "signup without a number",
        signup(
            DB_USER,
            {"email": "jane@example.com", "password": "*****"},
            "Username-Password-Authentication",
            "auth0",
        ),
        [
            AccountSeen(
                DB_USER,
                T,
                email="jane@example.com",
                connection="Username-Password-Authentication",
                created_at=T,
            )
        ],
    ),
    (
        "passwordless number changed",
        log_event(
            "scpn",
            SMS_USER,
            strategy="sms",
            details={
                "body": {"old_phone_number": "+14155550142", "new_phone_number": "+14155550144"}
            },
        ),
        [
            PhoneUnlinked(SMS_USER, "+14155550142", "passwordless", "logs", T),
            PhoneLinked(SMS_USER, "+14155550144", "passwordless", "logs", T),
        ],
    ),
    (
        "profile number changed",
        log_event(
            "scpn",
            details={
                "body": {
                    "old_phone_number": "+14155550143",
                    "new_phone_number": "+1 (415) 555-0145",
                }
            },
        ),
        [
            PhoneUnlinked(DB_USER, "+14155550143", "profile", "logs", T),
            PhoneLinked(DB_USER, "+14155550145", "profile", "logs", T),
        ],
    ),
    (
        "user deleted",
        log_event("sdu", description=f"user_id: {DB_USER}", strategy="auth0"),
        [AccountDeleted(DB_USER, T)],
    ),
    (
        "user deleted through the Management API: the target, not the admin",
        management_api("delete", "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0"),
        [AccountDeleted(DB_USER, T)],
    ),
    (
        "an authentication method deleted through the Management API",
        management_api(
            "delete",
            "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0/authentication-methods/phone%7Cdev_Ab12",
        ),
        [REFETCH],
    ),
    (
        "all authenticators deleted through the Management API",
        management_api("delete", "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0/authenticators"),
        [REFETCH],
    ),
    (
        "a phone method created by an admin",
        management_api(
            "post", "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0/authentication-methods", 201
        ),
        [REFETCH],
    ),
    (
        "Guardian provider removed from a user",
        management_api(
            "delete", "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0/multifactor/guardian"
        ),
        [REFETCH],
    ),
    (
        "a Guardian enrollment deleted by id: the store finds its owner",
        management_api("delete", "/api/v2/guardian/enrollments/dev_Ab12Cd34Ef56Gh78"),
        [EnrollmentRemoved(ENROLLMENT, T)],
    ),
    (
        "remember-browser invalidated: no authenticator changed",
        management_api(
            "post",
            "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0/multifactor/actions/invalidate-remember-browser",
        ),
        [],
    ),
    (
        "a user updated, the body not logged: re-read the account",
        management_api("patch", "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0", 200),
        [REFETCH],
    ),
    ("another Management API write", management_api("post", "/api/v2/log-streams", 200), []),
    (
        "a failed write",
        management_api("delete", "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0", 404),
        [],
    ),
    ("a login", log_event("s", details={"prompts": []}), []),
    ("an MFA login without a factor number", guardian("gd_auth_succeed", "MFA success"), []),
]

PRIMARY = "/api/v2/users/auth0%7C6560a1b2c3d4e5f6a7b8c9d0"

# Item 4: the other gd_* types, each decided on its own (see jobs/logs.py).
CASES += [
    (
        "MFA by SMS succeeded: the number is the account's, confirmed",
        challenge("gd_auth_succeed", "MFA Auth success", "+14155550100"),
        [mfa("+14155550100", "sms", True)],
    ),
    (
        "MFA by voice succeeded, Guardian-formatted number under the authenticator id",
        challenge("gd_auth_succeed", "MFA Auth success", "+1 4155550100", factor="voice"),
        [mfa("+14155550100", "voice", True)],
    ),
    (
        "MFA succeeded with the number under details.enrollment",
        guardian("gd_auth_succeed", "MFA Auth success", "+442079460958", key="enrollment"),
        [mfa("+442079460958", None, True)],
    ),
    (
        "MFA succeeded with a masked number: re-read the account",
        challenge("gd_auth_succeed", "MFA Auth success", "XXXXXXXX0100"),
        [REFETCH],
    ),
    (
        "MFA succeeded with a hashed number (log stream PII hashing): re-read",
        challenge("gd_auth_succeed", "MFA Auth success", "a9f0e61a137d86aa9db53465e0801612"),
        [REFETCH],
    ),
    (
        "MFA with an authenticator app succeeded: no number, nothing",
        challenge("gd_auth_succeed", "MFA Auth success", factor="totp"),
        [],
    ),
    (
        "MFA by SMS failed: a wrong code proves nothing about the enrollment",
        challenge("gd_auth_failed", "Wrong OTP.", "+14155550100"),
        [mfa("+14155550100", "sms", None)],
    ),
    (
        "MFA by SMS failed while enrolling: not confirmed, re-read",
        challenge("gd_auth_failed", "Wrong OTP during enrollment.", "+14155550100"),
        [mfa("+14155550100", "sms", False), REFETCH],
    ),
    (
        "MFA failed with a masked number",
        challenge("gd_auth_failed", "Wrong OTP.", "+1 XXX-XXX-0100"),
        [REFETCH],
    ),
    (
        "push notification rejected: no number",
        challenge("gd_auth_rejected", "MFA Auth rejected", factor="push"),
        [],
    ),
    (
        "too many wrong codes on an SMS factor",
        challenge("gd_otp_rate_limit_exceed", "Too many failures", "+14155550100"),
        [mfa("+14155550100", "sms", None)],
    ),
    (
        "too many wrong codes while enrolling a number",
        guardian(
            "gd_otp_rate_limit_exceed",
            "Too many failures during enrollment",
            "+14155550100",
            key="enrollment",
        ),
        [mfa("+14155550100", None, False), REFETCH],
    ),
    (
        "second factor started on an SMS factor",
        challenge("gd_start_auth", "Second factor started", "+14155550100"),
        [mfa("+14155550100", "sms", None)],
    ),
    (
        "enrollment started with a number: not confirmed yet, re-read",
        guardian("gd_start_enroll", "Enroll started", "+14155550100", key="enrollment"),
        [mfa("+14155550100", None, False), REFETCH],
    ),
    ("enrollment started, no number yet", guardian("gd_start_enroll", "Enroll started"), []),
    (
        "an MFA SMS that could not be delivered",
        guardian("gd_send_sms_failure", "Error sending MFA SMS", "+14155550100"),
        [mfa("+14155550100", "sms", None)],
    ),
    (
        "an MFA voice call that failed, masked number",
        guardian("gd_send_voice_failure", "Voice call failure", "XXXXXXXX0100"),
        [REFETCH],
    ),
    *[
        (f"{t}: not about phone numbers", guardian(t, "Guardian event", "+14155550100"), [])
        for t in (
            "gd_recovery_succeed",
            "gd_recovery_failed",
            "gd_recovery_rate_limit_exceed",
            "gd_send_pn",
            "gd_send_pn_failure",
            "gd_send_email",
            "gd_webauthn_challenge_failed",
            "gd_webauthn_enrollment_failed",
            "gd_tenant_update",
            "gd_module_switch",
            "gd_start_enroll_failed",
        )
    ],
]

# Item 3: Management API writes that change an account without saying how.
CASES += [
    (
        "a user's phone_number set, path not encoded",
        management_api(
            "patch",
            "/api/v2/users/auth0|6560a1b2c3d4e5f6a7b8c9d0",
            200,
            body={"phone_number": "+14155550100"},
            description="Update a user",
        ),
        [REFETCH],
    ),
    (
        "a user replaced with PUT",
        management_api("put", PRIMARY, 200, description="Update a user"),
        [REFETCH],
    ),
    (
        "the request path as a full URL",
        management_api("patch", f"https://acme.us.auth0.com{PRIMARY}?fields=user_id", 200),
        [REFETCH],
    ),
    (
        "a user created: its id is in the response",
        management_api(
            "post",
            "/api/v2/users",
            201,
            body={"connection": "sms", "phone_number": "+14155550142"},
            answer={"user_id": SMS_USER, "phone_number": "+14155550142"},
            description="Create a User",
        ),
        [RefetchRequested(SMS_USER, T)],
    ),
    (
        "a user created, response not logged",
        management_api("post", "/api/v2/users", 201, description="Create a User"),
        [],
    ),
    (
        "an SMS account linked: re-read the primary, and the secondary that ends",
        management_api(
            "post",
            f"{PRIMARY}/identities",
            201,
            body={"provider": "sms", "user_id": "6560a1b2c3d4e5f6a7b8c9d1"},
            description="Link a User Account",
        ),
        [REFETCH, RefetchRequested(SMS_USER, T)],
    ),
    (
        "an account linked with the secondary's full id",
        management_api(
            "post", f"{PRIMARY}/identities", 201, body={"provider": "sms", "user_id": SMS_USER}
        ),
        [REFETCH, RefetchRequested(SMS_USER, T)],
    ),
    (
        "an account linked with a link_with token names no secondary",
        management_api("post", f"{PRIMARY}/identities", 201, body={"link_with": "eyJhbGci..."}),
        [REFETCH],
    ),
    (
        "an SMS identity unlinked: both accounts re-read",
        management_api(
            "delete",
            f"{PRIMARY}/identities/sms/6560a1b2c3d4e5f6a7b8c9d1",
            200,
            description="Unlink a User Identity",
        ),
        [REFETCH, RefetchRequested(SMS_USER, T)],
    ),
    (
        "an identity unlinked, path not encoded",
        management_api(
            "delete", f"/api/v2/users/{DB_USER}/identities/sms/6560a1b2c3d4e5f6a7b8c9d1", 200
        ),
        [REFETCH, RefetchRequested(SMS_USER, T)],
    ),
    (
        "a Guardian enrollment deleted, id URL-encoded",
        management_api("delete", "/api/v2/guardian/enrollments/dev%5FAb12Cd34Ef56Gh78"),
        [EnrollmentRemoved(ENROLLMENT, T)],
    ),
    (
        "an enrollment ticket created: nothing enrolled yet",
        management_api(
            "post", "/api/v2/guardian/enrollments/ticket", 200, body={"user_id": DB_USER}
        ),
        [],
    ),
    (
        "a failed enrollment delete",
        management_api("delete", "/api/v2/guardian/enrollments/dev_Ab12Cd34Ef56Gh78", 404),
        [],
    ),
    (
        "a failed user update",
        management_api("patch", PRIMARY, 400, description="Update a user"),
        [],
    ),
    ("roles assigned to a user", management_api("post", f"{PRIMARY}/roles", 204), []),
    ("a user's sessions revoked", management_api("delete", f"{PRIMARY}/sessions", 202), []),
]


@pytest.mark.parametrize("event, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_event_maps_to_changes(event: dict[str, Any], expected: list[Change]) -> None:
    changes = event_changes(event)
    assert sorted(map(repr, changes)) == sorted(map(repr, expected))


def test_mapping_is_the_same_every_time() -> None:
    event = guardian("gd_enrollment_complete", ENROLLED_SMS, "+1 4155550100")
    before = copy.deepcopy(event)
    assert event_changes(event) == event_changes(event)
    assert event == before  # the event is not modified


def test_a_national_number_uses_the_default_region() -> None:
    event = guardian("gd_send_sms", SECOND_FACTOR_SMS, "020 7946 0958")
    assert event_changes(event) == [REFETCH]
    assert event_changes(event, default_region="GB") == [mfa("+442079460958", "sms", None)]


def test_observed_at_is_the_event_date_in_utc() -> None:
    event = guardian("gd_send_sms", SECOND_FACTOR_SMS, "+14155550100")
    event["date"] = "2026-11-20T15:30:05.123+01:00"
    (link,) = event_changes(event)
    assert link.observed_at == T and link.observed_at.tzinfo == UTC


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"user_id": None}, "no user_id"),
        ({"user_id": ""}, "no user_id"),
        ({"date": None}, "no ISO 8601 date"),
        ({"date": "yesterday"}, "no ISO 8601 date"),
        ({"date": "2026-11-20T14:30:05"}, "no ISO 8601 date"),  # no time zone: ambiguous
    ],
)
def test_a_malformed_relevant_event_is_a_bad_event(change: dict[str, Any], reason: str) -> None:
    event = guardian("gd_enrollment_complete", ENROLLED_SMS, "+14155550100") | change
    with pytest.raises(BadEvent) as caught:
        event_changes(event)
    assert reason in str(caught.value)
    assert event["log_id"] in str(caught.value)
    assert "4155550100" not in str(caught.value)


def test_a_malformed_irrelevant_event_is_just_irrelevant() -> None:
    assert event_changes({"type": "s"}) == []
    assert event_changes({"date": DATE}) == []


def test_a_deletion_may_name_the_user_only_in_its_description() -> None:
    event = log_event("sdu", None, description="user_id: auth0|1")
    assert event_changes(event) == [AccountDeleted("auth0|1", T)]


def test_a_batch_counts_what_it_skipped() -> None:
    events: list[Any] = [
        guardian("gd_enrollment_complete", ENROLLED_SMS, "+1 4155550100"),
        guardian("gd_send_sms", SECOND_FACTOR_SMS, "XXXXXXXX0100"),
        guardian("gd_unenroll", "Unenroll device account") | {"user_id": None},
        log_event("s"),
        log_event("sdu"),
        "not an object",
        log_event(["not", "a", "type"]),  # type: ignore[arg-type]
    ]
    mapped = events_changes(events)
    assert mapped.events == 7
    assert mapped.mapped == 3
    assert mapped.ignored == 3
    assert mapped.bad == 1
    assert mapped.withheld_numbers == 1
    assert sorted(map(repr, mapped.changes)) == sorted(
        map(repr, [mfa("+14155550100", "sms", True), REFETCH, REFETCH, AccountDeleted(DB_USER, T)])
    )
    assert mapped.counts()["changes"] == 4
    assert mapped.unmapped_types == {"s": 1}  # events without a string type: `ignored` only


def test_every_type_seen_and_not_mapped_is_counted() -> None:
    events: list[Any] = [
        *[log_event("s") for _ in range(120)],
        *[log_event("fp") for _ in range(3)],
        guardian("gd_recovery_succeed", "Recovery success"),
        challenge("gd_auth_succeed", "MFA Auth success", "+14155550100"),
        challenge("gd_auth_succeed", "MFA Auth success", factor="totp"),  # mapped, no change
        management_api("delete", "/api/v2/guardian/enrollments/dev_Ab12Cd34Ef56Gh78"),
        management_api("delete", "/api/v2/guardian/enrollments/dev_Zz99"),
    ]
    counts = events_changes(events).counts()
    assert counts["unmapped_types"] == {"s": 120, "fp": 3, "gd_recovery_succeed": 1}
    assert counts["ignored"] == 124
    assert counts["enrollments_removed"] == 2
    assert counts["changes"] == 3


def test_unmapped_type_counts_stay_small_whatever_is_posted() -> None:
    events = [log_event(f"custom_{n:03d}_" + "x" * 100) for n in range(MAX_UNMAPPED_TYPES + 20)]
    counts = events_changes(events).unmapped_types
    assert len(counts) == MAX_UNMAPPED_TYPES + 1
    assert counts[OTHER_TYPES] == 20
    assert all(len(key) <= 40 for key in counts)


# --------------------------------------------------------------------------- against the index

U1 = "auth0|6560000000000000000000a1"
U2 = "sms|6560000000000000000000b2"
U3 = "auth0|6560000000000000000000c3"
U4 = "auth0|6560000000000000000000d4"
NUMBERS = ["+14155550101", "+14155550102", "+14155550103", "+14155550104"]


def history(prefix: str) -> list[dict[str, Any]]:
    """A few weeks of a small tenant's log events; `prefix` keeps each run's accounts apart."""

    def at(minutes: int, event: dict[str, Any], user: str) -> dict[str, Any]:
        stamp = datetime(2026, 11, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes)
        date = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return event | {"date": date, "user_id": prefix + user, "log_id": f"9002{minutes:08d}"}

    def sent(description: str, number: str) -> dict[str, Any]:
        return guardian("gd_send_sms", description, number)

    enrolled = guardian("gd_enrollment_complete", ENROLLED_SMS, "+1 4155550101")
    deleted_method = management_api(
        "delete", f"/api/v2/users/{quote(prefix + U4, safe='')}/authentication-methods"
    )
    return [
        at(
            0,
            signup(U1, {"email": "u1@example.com"}, "Username-Password-Authentication", "auth0"),
            U1,
        ),
        at(1, signup(U2, {"phone_number": "+14155550103"}, "sms", "sms"), U2),
        at(2, sent("Guardian - Enrollment sms sent", "+1 4155550101"), U1),
        at(3, enrolled, U1),
        at(4, enrolled, U3),  # one number, two accounts
        at(5, sent(SECOND_FACTOR_SMS, "+14155550101"), U1),
        at(6, deleted_method, U4) | {"user_id": ADMIN},
        at(7, guardian("gd_unenroll", "Unenroll device account", "+14155550101"), U1),
        at(
            8,
            guardian(
                "gd_enrollment_complete", "Guardian - Enrollment complete (voice)", "+14155550102"
            ),
            U1,
        ),
        at(
            9,
            log_event(
                "scpn",
                strategy="sms",
                details={
                    "body": {"old_phone_number": "+14155550103", "new_phone_number": "+14155550104"}
                },
            ),
            U2,
        ),
        at(10, log_event("sdu"), U3),
        at(11, log_event("s"), U1),
    ]


def snapshot(store: Store, prefix: str) -> dict[str, Any]:
    """What a reader sees of one run's accounts: lookups, profiles and queued re-reads."""
    seen: dict[str, Any] = {}
    for number in NUMBERS:
        accounts = store.lookup(number)["accounts"]
        seen[number] = sorted(
            (a["user_id"].removeprefix(prefix), a["email"], a["connection"], a["phones"])
            for a in accounts
            if a["user_id"].startswith(prefix)
        )
    for user in (U1, U2, U3, U4):
        seen[user] = store.account(prefix + user)
    queue = {t.user_id: t.refetch_requested_at for t in store.refetch_queue(limit=1000)}
    seen["refetch"] = {u: queue.get(prefix + u) for u in (U1, U2, U3, U4)}
    for user in (U1, U2, U3, U4):
        if seen[user] is not None:
            seen[user] = seen[user] | {"user_id": user}
    return seen


def test_replayed_and_reordered_events_give_the_same_index(store: Store) -> None:
    store.apply(events_changes(history("in-order-")).changes)
    expected = snapshot(store, "in-order-")

    assert expected["+14155550101"] == []  # U1 unenrolled it, U3 was deleted
    assert expected["+14155550102"] == [
        (U1, "u1@example.com", "Username-Password-Authentication",
         [{"kind": "mfa", "method": "voice", "confirmed": True, "source": "logs",
           "updated_at": "2026-11-01T09:08:00Z", "identity": None}]),
    ]  # fmt: skip
    assert expected["+14155550103"] == []
    assert [(u, p[0]["kind"]) for u, _, _, p in expected["+14155550104"]] == [(U2, "passwordless")]
    assert expected[U3] is None
    assert expected["refetch"][U4] is not None

    rng = random.Random(20261120)
    for run in range(4):
        prefix = f"run{run}-"
        events = history(prefix)
        if run == 0:
            events.reverse()
        else:
            rng.shuffle(events)
        for event in events:  # one delivery per event, as a log stream may do
            store.apply(events_changes([event]).changes)
        store.apply(events_changes(events).changes)  # and the whole batch again
        assert snapshot(store, prefix) == expected, f"order {run}"
