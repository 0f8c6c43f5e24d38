"""Live checks: re-read a lookup's accounts, or search a number, through the Management API.

Both run at interactive priority (ahead of enrichment in this process), turn what Auth0 answers
into changes with source "live", apply them, and return the updated lookup document with a
`live` block saying when and how many accounts were checked. No Slack or CLI concerns here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.auth0 import (
    Auth0AuthError,
    Auth0Client,
    Auth0ConfigError,
    Auth0Error,
    Auth0NotFound,
    Auth0RateLimited,
    Auth0Unavailable,
)
from jobs.enrich import methods_to_change
from jobs.exports import UserMapper
from phoneindex.changes import (
    AccountDeleted,
    AccountSeen,
    Change,
    PhoneLinked,
    PhoneUnlinked,
    mfa_key,
)
from phoneindex.numbers import last4
from phoneindex.store import Store, iso, utcnow

log = logging.getLogger(__name__)

# Configuration problems fail every further call the same way: let the error boundary say so.
_FATAL = (Auth0AuthError, Auth0ConfigError)
# Retries are already exhausted: stop calling Auth0 for the rest of this check.
_TRANSIENT = (Auth0Unavailable, Auth0RateLimited)


@dataclass
class _Check:
    """The `live` block of the answer."""

    checked_at: datetime
    checked: int = 0
    deleted: int = 0
    errors: int = 0
    error: str | None = None
    halted: bool = False

    def failed(self, exc: Exception) -> None:
        self.errors += 1
        self.error = self.error or str(exc)
        self.halted = self.halted or isinstance(exc, _TRANSIENT)

    def document(self) -> dict[str, Any]:
        return {
            "checked_at": iso(self.checked_at), "checked": self.checked,
            "errors": self.errors, "deleted": self.deleted, "error": self.error,
        }  # fmt: skip


def live_lookup(
    store: Store,
    client: Auth0Client,
    phone: str,
    *,
    query: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    default_region: str | None = None,
) -> dict[str, Any]:
    """Re-check every account linked to the E.164 `phone` in Auth0; the updated lookup."""
    check = _Check(clock())
    mapper = UserMapper(check.checked_at, default_region)
    changes: list[Change] = []
    for account in store.lookup(phone)["accounts"]:
        if check.halted:
            check.errors += 1
            continue
        try:
            changes += _recheck(client, mapper, account, phone, check)
        except _FATAL:
            raise
        except (Auth0Error, ValueError) as exc:
            check.failed(exc)
    return _finish(store, phone, query, changes, check, "live check")


def live_search(
    store: Store,
    client: Auth0Client,
    phone: str,
    *,
    query: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    default_region: str | None = None,
) -> dict[str, Any]:
    """Search Auth0 users by profile number (passwordless/profile only); the updated lookup."""
    check = _Check(clock())
    mapper = UserMapper(check.checked_at, default_region)
    changes: list[Change] = []
    try:
        users = client.search_users_by_phone(phone)
    except _FATAL:
        raise
    except Auth0Error as exc:
        check.failed(exc)
        users = []
    for user in users:
        try:
            profile = list(mapper.changes(user))
        except ValueError as exc:
            check.failed(exc)
            continue
        links = [_live(c) for c in profile if isinstance(c, PhoneLinked) and c.phone == phone]
        if links:  # search is eventually consistent: a hit may have changed its number since
            changes += [c for c in profile if isinstance(c, AccountSeen)]
            changes += links
            check.checked += 1
    return _finish(store, phone, query, changes, check, "live search")


def _recheck(
    client: Auth0Client,
    mapper: UserMapper,
    account: dict[str, Any],
    phone: str,
    check: _Check,
) -> list[Change]:
    """One account as Auth0 has it now: profile, root number, MFA numbers."""
    user_id: str = account["user_id"]
    now = check.checked_at
    try:
        user = client.get_user(user_id, priority="interactive")
        methods = client.get_authentication_methods(user_id, priority="interactive")
    except Auth0NotFound:
        check.checked += 1
        check.deleted += 1
        return [AccountDeleted(user_id, now)]
    profile = list(mapper.changes(user))
    seen = next(c for c in profile if isinstance(c, AccountSeen))
    roots = [_live(c) for c in profile if isinstance(c, PhoneLinked)]
    kinds = {p["kind"] for p in account["phones"]}
    gone: list[Change] = [
        PhoneUnlinked(user_id, phone, kind, "live", now)
        for kind in ("passwordless", "profile")
        if kind in kinds and not any(r.phone == phone and r.kind == kind for r in roots)
    ]
    # A read with masked numbers keeps the MFA numbers the index already knows (store rule).
    key = mfa_key(seen.multifactor, seen.multifactor_last_modified)
    mfa = methods_to_change(user_id, methods, now, key, source="live")
    check.checked += 1
    return [seen, *roots, *gone, mfa]


def _live(link: PhoneLinked) -> PhoneLinked:
    return link._replace(source="live")


def _finish(
    store: Store,
    phone: str,
    query: str | None,
    changes: list[Change],
    check: _Check,
    what: str,
) -> dict[str, Any]:
    """Apply, then answer the lookup document with the `live` block."""
    if changes:
        store.apply(changes)
    log.info(
        "%s of %s: %d accounts checked, %d gone, %d errors",
        what, last4(phone), check.checked, check.deleted, check.errors,
    )  # fmt: skip
    doc = store.lookup(phone, query)
    doc["live"] = check.document()
    return doc
