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
    # A linked identity's "{provider}|{user_id}" when the number is its, not the account's own.
    identity: str | None = None


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
    # The authenticator's id (`phone|dev_...`): a later enrollment delete names only `dev_...`.
    authenticator_id: str | None = None


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


class ProfilePhone(NamedTuple):
    """One passwordless or profile number of a user object, and which identity carries it.

    `identity` is None for the account's own root `phone_number`, and `"{provider}|{user_id}"`
    of a linked identity (account linking) whose `profileData.phone_number` it is.
    """

    phone: str
    kind: Kind
    confirmed: bool | None = None
    identity: str | None = None


class ProfilePhonesReplaced(NamedTuple):
    """The complete set of passwordless/profile numbers of a user object read at `observed_at`.

    Numbers the account no longer has in these kinds (root number changed, identity unlinked)
    are unlinked; the MFA numbers are not touched.
    """

    user_id: str
    phones: tuple[ProfilePhone, ...]
    observed_at: datetime
    source: Source = "live"


class RefetchRequested(NamedTuple):
    """Something changed in the account that no event described fully: re-read the account.

    `failed`: a read of the account stamped at `observed_at` failed; the store counts it and
    keeps the account out of the queue for a backoff that grows with each failure in a row.
    """

    user_id: str
    observed_at: datetime
    failed: bool = False


class EnrollmentRemoved(NamedTuple):
    """An MFA enrollment (`dev_...`, authenticator `phone|dev_...`) was deleted, owner unnamed.

    The store queues a re-read of the account that owns it when the enrollment id is known.
    """

    enrollment_id: str
    observed_at: datetime


Change = (
    AccountSeen
    | PhoneLinked
    | PhoneUnlinked
    | MfaPhonesReplaced
    | AccountDeleted
    | RefetchRequested
    | ProfilePhonesReplaced
    | EnrollmentRemoved
)


def mfa_key(multifactor: tuple[str, ...], last_modified: datetime | None) -> str:
    """A fingerprint of an account's MFA state ("" without MFA): a change means re-read numbers."""
    if not multifactor:
        return ""
    stamp = last_modified.isoformat() if last_modified else ""
    return f"{','.join(multifactor)}|{stamp}"
