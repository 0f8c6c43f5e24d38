"""The change vocabulary: every feed turns what it saw into these; only the store applies them.

Changes are named tuples: immutable, and cheap to create by the million during an import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

Kind = Literal["mfa", "passwordless", "profile"]
Source = Literal["export", "authenticators", "logs", "action", "live"]
Method = Literal["sms", "voice"]

KINDS: tuple[Kind, ...] = ("mfa", "passwordless", "profile")


class AccountSeen(NamedTuple):
    """An account with its profile fields as a source saw them at `observed_at`."""

    user_id: str
    observed_at: datetime
    email: str | None = None
    name: str | None = None
    connection: str | None = None
    blocked: bool = False
    created_at: datetime | None = None
    last_login: datetime | None = None
    logins_count: int | None = None
    multifactor: tuple[str, ...] = ()
    multifactor_last_modified: datetime | None = None


class PhoneLinked(NamedTuple):
    """A number was linked to an account (kind, method, confirmed, source) at `observed_at`."""

    user_id: str
    phone: str
    kind: Kind
    source: Source
    observed_at: datetime
    method: Method | None = None
    confirmed: bool | None = None


class PhoneUnlinked(NamedTuple):
    """A number is no longer linked to an account in that kind, as of `observed_at`."""

    user_id: str
    phone: str
    kind: Kind
    source: Source
    observed_at: datetime


class MfaPhone(NamedTuple):
    """One phone authenticator as read from the account's authentication methods."""

    phone: str
    method: Method | None
    confirmed: bool | None


class MfaPhonesReplaced(NamedTuple):
    """The complete set of MFA numbers of an account as read at `observed_at`.

    Numbers the account no longer has are unlinked; `masked` counts numbers Auth0 returned
    masked (never indexed); `fetched_key` records which `multifactor` state this read answers.
    """

    user_id: str
    phones: tuple[MfaPhone, ...]
    observed_at: datetime
    source: Source = "authenticators"
    masked: int = 0
    fetched_key: str | None = None


class AccountDeleted(NamedTuple):
    """The account was deleted in Auth0 at `observed_at`; it and its links disappear."""

    user_id: str
    observed_at: datetime


class RefetchRequested(NamedTuple):
    """Something happened to the account's MFA that no event described fully: re-read it."""

    user_id: str
    observed_at: datetime


Change = (
    AccountSeen
    | PhoneLinked
    | PhoneUnlinked
    | MfaPhonesReplaced
    | AccountDeleted
    | RefetchRequested
)


def mfa_key(multifactor: tuple[str, ...], last_modified: datetime | None) -> str:
    """A fingerprint of an account's MFA state ("" without MFA): a change means re-read numbers."""
    if not multifactor:
        return ""
    stamp = last_modified.isoformat() if last_modified else ""
    return f"{','.join(multifactor)}|{stamp}"
