"""Auth0 log events -> changes, for the pull sync (`mfa-whois sync`) and the log-stream webhook.

The mapping is deterministic: an event gives the same changes however often and in whatever
order it is seen, all observed at the event's own `date`, and the store is last-writer-wins by
that time, so replays and out-of-order deliveries converge on the same index. A number is linked
only when the event carries a real one; a masked, hashed or missing number on an MFA event queues
the account for a re-read instead (RefetchRequested: the whole account, and its MFA numbers).

Where the numbers are (Auth0 documents the event types, not every `details` shape):
- `gd_*` MFA events: `details.authenticator.phone_number` (Auth0's own detections and Panther's
  group users by it; Twilio Verify's Auth0 integration reads it from `gd_auth_succeed`) or
  `details.enrollment.phone_number`; Guardian writes `+1 4155550100`. `details.authenticator.id`
  (`sms|dev_...`) or `type` may name the factor. `gd_enrollment_complete` says the factor in its
  description, "Guardian - Enrollment complete (sms)"; `gd_send_sms` reads "Guardian - Second
  factor sms sent".
- `ss`: `details.body.phone_number`; `scpn`: `details.body.old_phone_number`/`new_phone_number`.
- `sapi`: `details.request.method` (lower case) and `details.request.path` with the user id
  URL-encoded (`/api/v2/users/auth0%7C56a7...`) or not; `details.request.body` may be absent;
  its `user_id` is the admin who made the call, never the user acted on, so the target is taken
  from the path (and, for account linking, the request body) only.

The `gd_*` types, decided one by one (Auth0's "Log Event Type Codes" list):
- enrollment: `gd_start_enroll` (a number in it is being enrolled: unconfirmed, re-read),
  `gd_enrollment_complete`, `gd_unenroll`, `gd_update_device_account`, `gd_user_delete`;
- codes sent: `gd_send_sms`, `gd_send_voice` and their `_failure` twins (a number that failed to
  receive a code is still the number the factor uses);
- challenges: `gd_auth_succeed` proves possession (a confirmed link); `gd_auth_failed`,
  `gd_auth_rejected`, `gd_otp_rate_limit_exceed` and `gd_start_auth` name the factor's number
  but prove nothing (state unknown; unconfirmed and re-read when the text says enrollment);
- not about phone numbers, left out and counted: recovery codes (`gd_recovery_*`), push
  (`gd_send_pn*`), e-mail (`gd_send_email*`, `gd_auth_*email_verification`), WebAuthn
  (`gd_webauthn_*`), tenant settings (`gd_tenant_update`, `gd_module_switch`),
  `gd_start_enroll_failed`.
A number that is present but masked or unusable on any mapped `gd_*` event queues a re-read.

Malformed events (a relevant type without a usable `user_id` or an aware ISO `date`) raise
BadEvent from event_changes(); events_changes() skips and counts them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from phoneindex.changes import (
    AccountDeleted,
    AccountSeen,
    Change,
    EnrollmentRemoved,
    Kind,
    Method,
    PhoneLinked,
    PhoneUnlinked,
    RefetchRequested,
)
from phoneindex.errors import WhoisError
from phoneindex.numbers import is_masked, to_e164_or_none

_WRITES = frozenset({"post", "put", "patch", "delete"})
# /api/v2/users/{id}/<this>/...: writes that change the user's MFA authenticators.
_MFA_RESOURCES = frozenset(
    {"authentication-methods", "authenticators", "multifactor", "enrollments"}
)
_DELETED_USER = re.compile(r"^user_id:\s*(\S+)$")
_API = "/api/v2/"
# Run records keep at most this many distinct unmapped types, each name cut to this length:
# a log stream posts whatever it is sent.
MAX_UNMAPPED_TYPES = 100
_TYPE_CHARS = 40
OTHER_TYPES = "(other)"


class BadEvent(WhoisError):
    """A relevant log event without a usable user id or date; names the event, never a number."""

    def __init__(self, log_id: Any, event_type: str, reason: str) -> None:
        ident = str(log_id)[:64] if log_id else "without log_id"
        super().__init__(f"Auth0 log event {ident} ({event_type}): {reason}")
        self.log_id = log_id
        self.event_type = event_type
        self.reason = reason


@dataclass
class MappedEvents:
    """Changes from a batch of log events, and what was skipped (for counts and warnings)."""

    changes: list[Change] = field(default_factory=list)
    events: int = 0
    mapped: int = 0  # events of a type that matters
    ignored: int = 0  # types that say nothing about accounts or phone numbers
    bad: int = 0  # relevant events without a usable user id or date
    withheld_numbers: int = 0  # numbers present but masked, hashed or unusable: never indexed
    enrollments_removed: int = 0  # MFA enrollments deleted by id, owner not named
    # How many events of each type were seen and not mapped, so an operator sees what the
    # tenant sends (`s`, `fp`, ...); events without a type count in `ignored` only.
    unmapped_types: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """Counts for run records."""
        return {
            "events": self.events,
            "changes": len(self.changes),
            "ignored": self.ignored,
            "bad": self.bad,
            "withheld_numbers": self.withheld_numbers,
            "enrollments_removed": self.enrollments_removed,
            "unmapped_types": dict(self.unmapped_types),
        }


@dataclass
class _Event:
    """A parsed view of one event; `withheld` counts numbers seen but not usable."""

    type: str
    log_id: Any
    user_id: str | None
    at: datetime
    details: Mapping[str, Any]
    description: str
    raw: Mapping[str, Any]
    region: str | None
    withheld: int = 0

    @property
    def user(self) -> str:
        if self.user_id is None:
            raise BadEvent(self.log_id, self.type, "no user_id")
        return self.user_id

    def number(self, value: Any) -> str | None:
        """The E.164 form of a number field, or None (counted when present but unusable)."""
        present, phone = _parse_number(value, self.region)
        self.withheld += present and phone is None
        return phone

    def mfa_number(self) -> str | None:
        """The first usable number of `details.authenticator` / `details.enrollment`."""
        return self.mfa_number_seen()[0]

    def mfa_number_seen(self) -> tuple[str | None, bool]:
        """(usable number or None, whether a number was there at all, usable or not)."""
        parsed = [
            _parse_number(_get(self.details, key, "phone_number"), self.region)
            for key in ("authenticator", "enrollment")
        ]
        phone = next((phone for _, phone in parsed if phone is not None), None)
        present = any(seen for seen, _ in parsed)
        self.withheld += phone is None and present
        return phone, present

    @property
    def passwordless(self) -> bool:
        """An SMS passwordless user (`sms|...`): the number is an identity, not a profile field."""
        return self.user.startswith("sms|") or self.raw.get("strategy") == "sms"

    @property
    def kind(self) -> Kind:
        return "passwordless" if self.passwordless else "profile"

    def refetch(self) -> RefetchRequested:
        return RefetchRequested(self.user, self.at)

    def mfa_link(self, phone: str, method: Method | None, confirmed: bool | None) -> PhoneLinked:
        return PhoneLinked(self.user, phone, "mfa", "logs", self.at, method, confirmed)


# ----------------------------------------------------------------------------- public API


def event_changes(event: Mapping[str, Any], *, default_region: str | None = None) -> list[Change]:
    """The changes one Auth0 log event implies; [] for types that do not matter."""
    return _map(event, default_region)[0]


def events_changes(
    events: Iterable[Mapping[str, Any]], *, default_region: str | None = None
) -> MappedEvents:
    """The changes of a batch of events; malformed and irrelevant events are counted, skipped."""
    out = MappedEvents()
    for event in events:
        out.events += 1
        event_type = event.get("type") if isinstance(event, Mapping) else None
        if not isinstance(event_type, str) or event_type not in _MAPPERS:
            out.ignored += 1
            if isinstance(event_type, str):
                count_type(out.unmapped_types, event_type)
            continue
        try:
            changes, withheld = _map(event, default_region)
        except BadEvent:
            out.bad += 1
            continue
        out.mapped += 1
        out.withheld_numbers += withheld
        out.enrollments_removed += sum(isinstance(c, EnrollmentRemoved) for c in changes)
        out.changes.extend(changes)
    return out


def count_type(counts: dict[str, int], event_type: str, n: int = 1) -> None:
    """Add `n` events of `event_type` to `counts`, keeping the dict small whatever comes in."""
    key = event_type[:_TYPE_CHARS]
    if key not in counts and len(counts) >= MAX_UNMAPPED_TYPES:
        key = OTHER_TYPES
    counts[key] = counts.get(key, 0) + n


def event_date(event: Mapping[str, Any]) -> datetime | None:
    """The event's `date` as aware UTC, or None when missing or not an aware ISO timestamp."""
    value = event.get("date")
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return stamp.astimezone(UTC) if stamp.tzinfo is not None else None


# ----------------------------------------------------------------------------- the mapping


def _map(event: Mapping[str, Any], region: str | None) -> tuple[list[Change], int]:
    event_type = event.get("type")
    if not isinstance(event_type, str) or event_type not in _MAPPERS:
        return [], 0
    at = event_date(event)
    if at is None:
        raise BadEvent(event.get("log_id"), event_type, "no ISO 8601 date with a time zone")
    details = event.get("details")
    description = event.get("description")
    user_id = event.get("user_id")
    ev = _Event(
        type=event_type,
        log_id=event.get("log_id"),
        user_id=user_id if isinstance(user_id, str) and user_id.strip() else None,
        at=at,
        details=details if isinstance(details, Mapping) else {},
        description=description if isinstance(description, str) else "",
        raw=event,
        region=region,
    )
    changes = _MAPPERS[event_type](ev)
    return changes, ev.withheld


def _enrollment_complete(ev: _Event) -> list[Change]:
    """A new MFA enrollment: link its number (confirmed) and re-read the full, unmasked set."""
    phone = ev.mfa_number()
    if phone is None:
        return [ev.refetch()]
    return [ev.mfa_link(phone, _enrolled_method(ev), True), ev.refetch()]


def _unenroll(ev: _Event) -> list[Change]:
    """An MFA device account deleted: unlink its number if named, and re-read the rest."""
    phone = ev.mfa_number()
    unlink: list[Change] = [PhoneUnlinked(ev.user, phone, "mfa", "logs", ev.at)] if phone else []
    return [*unlink, ev.refetch()]


def _update_device_account(ev: _Event) -> list[Change]:
    """An MFA device account changed: link a number it names (state unknown), and re-read."""
    phone = ev.mfa_number()
    link: list[Change] = [ev.mfa_link(phone, _enrolled_method(ev), None)] if phone else []
    return [*link, ev.refetch()]


def _sent(method: Method) -> Callable[[_Event], list[Change]]:
    """An MFA code sent by SMS or voice call to a number the account uses or is enrolling.

    A code sent does not prove the enrollment is confirmed: Auth0's own detections read
    "Guardian - Second factor sms sent" as every MFA SMS, so only a text that says enrollment
    tells anything (not confirmed yet: re-read the account once it is).
    """

    def mapper(ev: _Event) -> list[Change]:
        phone = ev.mfa_number()
        if phone is None:
            return [ev.refetch()]
        if "enrol" in ev.description.lower():
            return [ev.mfa_link(phone, method, False), ev.refetch()]
        return [ev.mfa_link(phone, method, None)]

    return mapper


def _signup(ev: _Event) -> list[Change]:
    """A new account; an SMS passwordless signup also names the account's number."""
    body = _mapping(ev.details.get("body"))
    connection = _text(ev.raw.get("connection")) or _text(body.get("connection"))
    seen = AccountSeen(
        ev.user,
        ev.at,
        email=_text(body.get("email")),
        name=_text(body.get("name")),
        connection=connection,
        created_at=ev.at,
    )
    phone = ev.number(body.get("phone_number"))
    if phone is None:
        return [seen]
    verified = body.get("phone_verified")
    confirmed = verified if isinstance(verified, bool) else None
    link = PhoneLinked(ev.user, phone, ev.kind, "logs", ev.at, None, confirmed)
    return [seen, link]


def _phone_changed(ev: _Event) -> list[Change]:
    """A passwordless or profile number replaced by another."""
    body = _mapping(ev.details.get("body"))
    old = ev.number(body.get("old_phone_number", ev.details.get("old_phone_number")))
    new = ev.number(body.get("new_phone_number", ev.details.get("new_phone_number")))
    out: list[Change] = []
    if old is not None and old != new:
        out.append(PhoneUnlinked(ev.user, old, ev.kind, "logs", ev.at))
    if new is not None:
        out.append(PhoneLinked(ev.user, new, ev.kind, "logs", ev.at))
    return out


def _deleted(ev: _Event) -> list[Change]:
    """The account is gone (an event without `user_id` may name it as `user_id: ...`)."""
    if ev.user_id is None:
        match = _DELETED_USER.match(ev.description.strip())
        ev.user_id = match.group(1) if match else None
    return [AccountDeleted(ev.user, ev.at)]


def _challenged(confirmed: bool | None) -> Callable[[_Event], list[Change]]:
    """An MFA challenge (or its start) on a factor that may carry the account's number.

    The number named is the factor's own: linked with `confirmed` (True only when the challenge
    proved possession); during an enrollment ("enrol" in the text) it is not confirmed yet and
    the account is re-read once it is. A masked number queues a re-read; no number (TOTP, push,
    e-mail factors): nothing.
    """

    def mapper(ev: _Event) -> list[Change]:
        phone, present = ev.mfa_number_seen()
        if phone is None:
            return [ev.refetch()] if present else []
        if "enrol" in ev.description.lower():
            return [ev.mfa_link(phone, _enrolled_method(ev), False), ev.refetch()]
        return [ev.mfa_link(phone, _enrolled_method(ev), confirmed)]

    return mapper


def _enroll_started(ev: _Event) -> list[Change]:
    """An MFA enrollment started: a number in it is not confirmed yet; re-read when it is."""
    phone, present = ev.mfa_number_seen()
    if phone is None:
        return [ev.refetch()] if present else []
    return [ev.mfa_link(phone, _enrolled_method(ev), False), ev.refetch()]


def _management_api(ev: _Event) -> list[Change]:
    """Successful Management API writes to users, their identities and MFA enrollments."""
    request = _mapping(ev.details.get("request"))
    response = _mapping(ev.details.get("response"))
    status = response.get("statusCode")
    method = str(request.get("method", "")).lower()
    segments = _api_segments(request.get("path"))
    if method not in _WRITES or segments is None:
        return []
    if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
        return []
    if segments[:2] == ["guardian", "enrollments"] and len(segments) == 3 and method == "delete":
        # The owner is not named: the store finds it through the authenticator id it knows.
        return [EnrollmentRemoved(segments[2], ev.at)] if segments[2] else []
    if segments[:1] != ["users"]:
        return []
    if len(segments) == 1:  # POST /api/v2/users: the new id is in the response, if logged
        created = _text(_mapping(response.get("body")).get("user_id"))
        return [RefetchRequested(created, ev.at)] if method == "post" and created else []
    return _user_write(ev, method, segments[1], segments[2:], _mapping(request.get("body")))


def _user_write(
    ev: _Event, method: str, user: str, rest: list[str], body: Mapping[str, Any]
) -> list[Change]:
    """A write to /api/v2/users/{user}[/rest]: the body may be absent, so re-read the account."""
    if not user:
        return []
    if not rest:
        # PATCH/PUT of the user (phone_number, blocked, anything): re-read; DELETE: gone.
        return [AccountDeleted(user, ev.at)] if method == "delete" else [_reread(user, ev)]
    if rest[0] == "identities":
        return [_reread(user, ev), *_secondary(ev, method, rest[1:], body)]
    if rest[0] in _MFA_RESOURCES and rest[1:2] != ["actions"]:
        return [_reread(user, ev)]
    return []  # roles, permissions, sessions, invalidate-remember-browser, ...


def _secondary(ev: _Event, method: str, rest: list[str], body: Mapping[str, Any]) -> list[Change]:
    """The other account of a link or unlink, when the call names it: re-read it too.

    Linking (`POST .../identities` with `provider` and `user_id`) ends the secondary account
    (its re-read answers 404); unlinking (`DELETE .../identities/{provider}/{user_id}`) makes it
    an account of its own again. Linking with a `link_with` token names no one.
    """
    if method == "delete" and len(rest) >= 2:
        provider, ident = rest[0], "/".join(rest[1:])
    elif method == "post" and not rest:
        provider, ident = _text(body.get("provider")) or "", _text(body.get("user_id")) or ""
    else:
        return []
    if not provider or not ident:
        return []
    user = ident if ident.startswith(f"{provider}|") else f"{provider}|{ident}"
    return [_reread(user, ev)]


def _reread(user: str, ev: _Event) -> RefetchRequested:
    """Re-read `user` as of the event."""
    return RefetchRequested(user, ev.at)


_MAPPERS: dict[str, Callable[[_Event], list[Change]]] = {
    "gd_start_enroll": _enroll_started,
    "gd_enrollment_complete": _enrollment_complete,
    "gd_unenroll": _unenroll,
    "gd_update_device_account": _update_device_account,
    "gd_user_delete": lambda ev: [ev.refetch()],  # an admin reset the user's MFA
    "gd_send_sms": _sent("sms"),
    "gd_send_voice": _sent("voice"),
    "gd_send_sms_failure": _sent("sms"),
    "gd_send_voice_failure": _sent("voice"),
    "gd_auth_succeed": _challenged(True),
    "gd_auth_failed": _challenged(None),
    "gd_auth_rejected": _challenged(None),
    "gd_otp_rate_limit_exceed": _challenged(None),
    "gd_start_auth": _challenged(None),
    "ss": _signup,
    "scpn": _phone_changed,
    "sdu": _deleted,
    "du": _deleted,  # the older code for a deleted user
    "sapi": _management_api,
}
RELEVANT_TYPES = frozenset(_MAPPERS)


# ----------------------------------------------------------------------------- helpers


def _enrolled_method(ev: _Event) -> Method | None:
    """sms or voice, from "Guardian - Enrollment complete (voice)" or the authenticator."""
    text = ev.description.lower()
    for method in ("sms", "voice"):
        if f"({method})" in text:
            return method
    for key in ("preferred_authentication_method", "method", "type", "id"):
        value = _get(ev.details, "authenticator", key)
        if key == "id" and isinstance(value, str):
            value = value.split("|", 1)[0]  # `sms|dev_...`, `voice|dev_...`
        if value in ("sms", "voice"):
            return "sms" if value == "sms" else "voice"
    return None


def _api_segments(path: Any) -> list[str] | None:
    """The decoded segments after `/api/v2/` of a request path (ids URL-encoded or not)."""
    if not isinstance(path, str) or _API not in path:
        return None
    tail = path.split("?", 1)[0].split(_API, 1)[1].strip("/")
    return [unquote(part) for part in tail.split("/")] if tail else None


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, Mapping) else None
    return obj


def _parse_number(value: Any, region: str | None) -> tuple[bool, str | None]:
    """(present, E.164 or None): masked, hashed and garbage values are present but unusable."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False, None
    text = str(value).strip()
    if not text:
        return False, None
    return True, None if is_masked(text) else to_e164_or_none(text, region)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
