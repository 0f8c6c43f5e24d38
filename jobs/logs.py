"""Auth0 log events -> changes, for the pull sync (`mfa-whois sync`) and the log-stream webhook.

The mapping is deterministic: an event gives the same changes however often and in whatever
order it is seen, all observed at the event's own `date`, and the store is last-writer-wins by
that time, so replays and out-of-order deliveries converge on the same index. A number is linked
only when the event carries a real one; a masked, hashed or missing number on an MFA event queues
the account for a re-read of its authentication methods instead.

Where the numbers are (Auth0 documents the event types, not every `details` shape):
- `gd_*` MFA events: `details.authenticator.phone_number` (Auth0's own detections and Panther's
  group users by it) or `details.enrollment.phone_number`; Guardian writes `+1 4155550100`.
  `gd_enrollment_complete` says the factor in its description, "Guardian - Enrollment complete
  (sms)"; `gd_send_sms` reads "Guardian - Second factor sms sent".
- `ss`: `details.body.phone_number`; `scpn`: `details.body.old_phone_number`/`new_phone_number`.
- `sapi`: `details.request.method` (lower case) and `details.request.path` with the user id
  URL-encoded (`/api/v2/users/auth0%7C56a7...`); its `user_id` is the admin who made the call,
  never the user acted on, so the target is taken from the path only.

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
_MFA_RESOURCES = frozenset({"authentication-methods", "authenticators", "multifactor"})
_DELETED_USER = re.compile(r"^user_id:\s*(\S+)$")


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

    def counts(self) -> dict[str, int]:
        """Counts for run records."""
        return {
            "events": self.events,
            "changes": len(self.changes),
            "ignored": self.ignored,
            "bad": self.bad,
            "withheld_numbers": self.withheld_numbers,
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
        parsed = [
            _parse_number(_get(self.details, key, "phone_number"), self.region)
            for key in ("authenticator", "enrollment")
        ]
        phone = next((phone for _, phone in parsed if phone is not None), None)
        self.withheld += phone is None and any(present for present, _ in parsed)
        return phone

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
            continue
        try:
            changes, withheld = _map(event, default_region)
        except BadEvent:
            out.bad += 1
            continue
        out.mapped += 1
        out.withheld_numbers += withheld
        out.changes.extend(changes)
    return out


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


def _management_api(ev: _Event) -> list[Change]:
    """Management API writes that delete a user or change a user's MFA authenticators."""
    request = _mapping(ev.details.get("request"))
    status = _mapping(ev.details.get("response")).get("statusCode")
    method = str(request.get("method", "")).lower()
    path = request.get("path")
    if method not in _WRITES or not isinstance(path, str):
        return []
    if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
        return []
    segments = path.split("?", 1)[0].rstrip("/").split("/")
    if segments[:4] != ["", "api", "v2", "users"] or len(segments) < 5:
        return []  # e.g. /api/v2/guardian/enrollments/{id}: the user is not named
    user = unquote(segments[4])
    rest = segments[5:]
    if not user:
        return []
    if not rest:
        return [AccountDeleted(user, ev.at)] if method == "delete" else []
    if rest[0] in _MFA_RESOURCES and rest[1:2] != ["actions"]:
        return [RefetchRequested(user, ev.at)]
    return []


_MAPPERS: dict[str, Callable[[_Event], list[Change]]] = {
    "gd_enrollment_complete": _enrollment_complete,
    "gd_unenroll": _unenroll,
    "gd_update_device_account": _update_device_account,
    "gd_user_delete": lambda ev: [ev.refetch()],  # an admin reset the user's MFA
    "gd_send_sms": _sent("sms"),
    "gd_send_voice": _sent("voice"),
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
    for key in ("preferred_authentication_method", "method", "type"):
        value = _get(ev.details, "authenticator", key)
        if value in ("sms", "voice"):
            return "sms" if value == "sms" else "voice"
    return None


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
