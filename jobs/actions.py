"""Auth0 Action events -> changes (the contract's "Action events"; applied by jobs/action_inbox.py).

An event is `{"id", "type", "occurred_at", "user", "phone"?, "login"?}`; every change it gives
is observed at its `occurred_at`, so the store's last-writer-wins keeps an old event from
overwriting a newer fact, whatever order events arrive in.

- `user.registered`: the account and its numbers (root `phone_number`, linked SMS identities),
  mapped like an export line (jobs/exports.py UserMapper), source `action`.
- `user.login`: the whole account is queued for a re-read (RefetchRequested) when the login
  used a phone factor, or when `multifactor` or the enrolled phone factors disagree with what
  the index knows. Otherwise the profile fields the Action sends refresh the account (fields it
  does not send keep what the index knows; `last_login` is the login itself). Its numbers are
  linked, none unlinked (a post-login `user` may not carry every linked identity's profile).
- `phone.message`: the recipient is linked at once as an `mfa` number of `user.user_id`
  (unconfirmed for an enrollment message, confirmed for a challenge). A masked or unusable
  recipient is counted, never linked (a challenge then queues a re-read, as a masked number in
  a log event does). Without `user.user_id` there is nothing to link: the event is answered
  200, counted as ignored (a custom phone provider also sends messages for users that do not
  exist yet, which no retry would ever make linkable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from jobs.enrich import profile_changes
from jobs.exports import UserMapper
from phoneindex.changes import (
    AccountSeen,
    Change,
    Method,
    PhoneLinked,
    ProfilePhone,
    RefetchRequested,
)
from phoneindex.errors import WhoisError
from phoneindex.numbers import is_masked, to_e164_or_none
from phoneindex.store import AccountState

TYPES = ("user.registered", "user.login", "phone.message")
MAX_ID_CHARS = 200
# An event dated further ahead than this is refused: a fact from the future would win over
# every real one until then (the request's own timestamp is checked to the same window).
EARLIEST_YEAR = 2000
MAX_SKEW = timedelta(seconds=300)
PHONE_METHOD_TYPES = frozenset({"phone", "sms", "voice"})
PHONE_METHOD_NAMES = frozenset({"sms", "voice", "phone_number"})
_METHODS: dict[str, Method] = {"sms": "sms", "voice": "voice"}
_PURPOSES = ("enroll", "challenge")
# User fields (any of the keys) -> the AccountSeen field they give; the rest keep the index's.
_GIVES = {
    "email": ("email",),
    "name": ("name",),
    "connection": ("identities", "connection", "provider"),
    "blocked": ("blocked",),
    "created_at": ("created_at",),
    "last_login": ("last_login",),
    "logins_count": ("logins_count",),
    "multifactor": ("multifactor",),
    "multifactor_last_modified": ("multifactor_last_modified",),
}


class BadActionEvent(WhoisError):
    """A body that is not an Action event; names the field, never its value."""


@dataclass(frozen=True)
class ActionEvent:
    """One Action event as posted."""

    id: str
    type: str
    occurred_at: datetime
    user: Mapping[str, Any]
    phone: Mapping[str, Any] | None = None
    login: Mapping[str, Any] | None = None

    @property
    def user_id(self) -> str | None:
        """`user.user_id` when it is a non-empty string."""
        value = self.user.get("user_id")
        return value if isinstance(value, str) and value else None


@dataclass
class MappedEvent:
    """What an event gives: its changes and what it could not use."""

    changes: list[Change]
    withheld_numbers: int = 0  # numbers present but masked or unusable: never indexed
    reread: str | None = None  # why the account is queued for a re-read, if it is
    ignored: str | None = None  # why nothing could be taken from the event, if so


def parse_event(body: bytes, *, now: datetime) -> ActionEvent:
    """The Action event in `body`; BadActionEvent saying which field is wrong."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadActionEvent("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadActionEvent("the body is not a JSON object")
    event_id, kind = doc.get("id"), doc.get("type")
    if not isinstance(event_id, str) or not event_id.strip():
        raise BadActionEvent('"id" is missing or not a string')
    if len(event_id) > MAX_ID_CHARS:
        raise BadActionEvent(f'"id" is longer than {MAX_ID_CHARS} characters')
    if kind not in TYPES:
        raise BadActionEvent(f'"type" is missing or not one of {", ".join(TYPES)}')
    user = _object(doc, "user") or {}
    event = ActionEvent(
        event_id, kind, _occurred_at(doc.get("occurred_at"), now), user,
        _object(doc, "phone"), _object(doc, "login"),
    )  # fmt: skip
    if kind != "phone.message" and event.user_id is None:
        raise BadActionEvent('"user.user_id" is missing: the event names no account')
    if kind == "phone.message":
        _check_phone(event.phone)
    return event


def event_changes(
    event: ActionEvent, state: AccountState | None, *, default_region: str | None = None
) -> MappedEvent:
    """The changes of one event, given what the index knows of its account (None: nothing)."""
    if event.type == "phone.message":
        return _message(event, state, default_region)
    mapper = UserMapper(event.occurred_at, default_region)
    try:
        seen, phones = mapper.read(dict(event.user))
    except ValueError as exc:
        raise BadActionEvent(f'"user": {exc}') from None
    at, user_id = event.occurred_at, seen.user_id
    mapped = MappedEvent([], withheld_numbers=mapper.unusable_numbers)
    if event.type == "user.registered":
        # The Action runs as the account is created: that is its creation time if not given.
        mapped.changes.append(
            _merged(seen._replace(created_at=seen.created_at or at), event.user, state)
        )
        mapped.changes += _profile(user_id, phones, at, complete=not mapper.unusable_numbers)
        if seen.multifactor:
            mapped.reread = "the new account has MFA"
    else:
        mapped.reread = _login_reread(event, seen, state)
        if mapped.reread is None:
            # With a re-read queued the account is read whole from Auth0 instead: a profile
            # seen at the login's time would count as that read and answer the request.
            mapped.changes.append(_login_account(seen, event, state))
        mapped.changes += _profile(user_id, phones, at, complete=False)
    if mapped.reread:
        mapped.changes.append(RefetchRequested(user_id, at))
    return mapped


def phone_factor_used(login: Mapping[str, Any] | None) -> bool:
    """The login's `methods` include a phone factor (type phone/sms/voice, or such a name)."""
    methods = (login or {}).get("methods")
    for method in methods if isinstance(methods, list) else ():
        if not isinstance(method, dict):
            continue
        if str(method.get("type", "")).lower() in PHONE_METHOD_TYPES:
            return True
        if str(method.get("name", "")).lower() in PHONE_METHOD_NAMES:
            return True
    return False


def enrolled_phone(login: Mapping[str, Any] | None) -> bool | None:
    """Whether `enrolled_factors` include a phone factor; None when the event does not say."""
    factors = (login or {}).get("enrolled_factors")
    if not isinstance(factors, list):
        return None
    types = (f.get("type") if isinstance(f, dict) else f for f in factors)
    return any(str(t).lower() in PHONE_METHOD_TYPES for t in types)


def _login_reread(event: ActionEvent, seen: AccountSeen, state: AccountState | None) -> str | None:
    """Why a login makes the account worth a re-read, or None."""
    if phone_factor_used(event.login):
        return "the login used a phone factor"
    known = state.seen.multifactor if state is not None else ()
    # An empty list is not compared: the Actions send [] when the trigger shows no list, and
    # a factor really removed shows in the enrolled factors below.
    if _carried(event.user, "multifactor") and sorted(seen.multifactor) != sorted(known):
        return "multifactor differs from the index"
    phone = enrolled_phone(event.login)
    indexed = state is not None and (state.mfa_numbers + state.mfa_masked) > 0
    if phone is not None and phone != indexed:
        return "the enrolled phone factors differ from the index"
    return None


def _login_account(
    seen: AccountSeen, event: ActionEvent, state: AccountState | None
) -> AccountSeen:
    """The account as the login shows it: the login is its latest, and it is not blocked."""
    account = _merged(seen, event.user, state)
    last_login = max(event.occurred_at, account.last_login or event.occurred_at)
    blocked = account.blocked if "blocked" in event.user else False
    return account._replace(last_login=last_login, blocked=blocked)


def _message(event: ActionEvent, state: AccountState | None, region: str | None) -> MappedEvent:
    phone = event.phone or {}
    user_id = event.user_id
    if user_id is None:
        return MappedEvent([], ignored='no "user.user_id": nothing to link')
    challenge = phone["purpose"] == "challenge"
    at, raw = event.occurred_at, str(phone["number"])
    number = None if is_masked(raw) else to_e164_or_none(raw, region)
    if number is None:
        mapped = MappedEvent([], withheld_numbers=1)
        reread = "the number was masked or unusable" if challenge else None
    else:
        link = PhoneLinked(
            user_id, number, "mfa", "action", at, _METHODS[phone["method"]], challenge
        )
        mapped = MappedEvent([link])
        # An account the index never saw whole is read now; not during an enrollment, which a
        # read made before it completes would not show (and would unlink).
        unknown = state is None or not state.profiled
        reread = "the account is not in the index" if challenge and unknown else None
    if reread:
        mapped.reread = reread
        mapped.changes.append(RefetchRequested(user_id, at))
    return mapped


def _merged(seen: AccountSeen, user: Mapping[str, Any], state: AccountState | None) -> AccountSeen:
    """`seen` with the fields the event does not carry taken from what the index knows.

    A field is carried when it has a value: the Actions send every key, `null` or `[]` when
    the user has nothing there or the trigger does not show it.
    """
    stored = state.seen if state is not None and state.profiled else None
    if stored is None:
        return seen
    keep = {
        name: getattr(stored, name)
        for name, keys in _GIVES.items()
        if not any(_carried(user, key) for key in keys)
    }
    if "multifactor" in keep or sorted(seen.multifactor) == sorted(stored.multifactor):
        # Same MFA state: keep the index's fingerprint (no needless MFA re-read).
        keep["multifactor"] = stored.multifactor
        if not _carried(user, "multifactor_last_modified"):
            keep["multifactor_last_modified"] = stored.multifactor_last_modified
    return seen._replace(**keep)


def _carried(user: Mapping[str, Any], key: str) -> bool:
    return user.get(key) not in (None, "", [], {})


def _profile(
    user_id: str, phones: list[ProfilePhone], at: datetime, *, complete: bool
) -> list[Change]:
    """The user object's passwordless/profile numbers: the whole set, or only links."""
    return list(profile_changes(user_id, phones, at, "action", complete=complete))


def _object(doc: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadActionEvent(f'"{name}" is not an object')
    return value


def _occurred_at(value: Any, now: datetime) -> datetime:
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise BadActionEvent(
            '"occurred_at" is missing or not an ISO 8601 timestamp with a time zone'
        )
    if stamp.year < EARLIEST_YEAR:  # Auth0 did not exist; and year 1 overflows in UTC
        raise BadActionEvent(f'"occurred_at" is before {EARLIEST_YEAR}')
    stamp = stamp.astimezone(UTC)
    if stamp - now > MAX_SKEW:
        raise BadActionEvent('"occurred_at" is in the future')
    return stamp


def _check_phone(phone: Mapping[str, Any] | None) -> None:
    if phone is None:
        raise BadActionEvent('"phone" is missing: a phone.message event carries it')
    if not isinstance(phone.get("number"), str) or not phone["number"].strip():
        raise BadActionEvent('"phone.number" is missing or not a string')
    if phone.get("method") not in _METHODS:
        raise BadActionEvent('"phone.method" must be sms or voice')
    if phone.get("purpose") not in _PURPOSES:
        raise BadActionEvent('"phone.purpose" must be enroll or challenge')
