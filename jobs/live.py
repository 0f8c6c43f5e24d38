"""Live checks: re-read a lookup's accounts, or search a number, through the Management API.

Both run at interactive priority (ahead of enrichment in this process), turn what Auth0 answers
into changes with source "live", apply them, and return the updated lookup document with a
`live` block saying when and how many accounts were checked. No Slack or CLI concerns here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.auth0 import (
    Auth0AuthError,
    Auth0Client,
    Auth0ConfigError,
    Auth0Error,
    Auth0RateLimited,
    Auth0Unavailable,
)
from jobs.enrich import profile_changes, read_account
from jobs.exports import UserMapper
from phoneindex.changes import Change
from phoneindex.numbers import last4
from phoneindex.store import Store, iso, utcnow

log = logging.getLogger(__name__)

# Configuration problems fail every further call the same way: let the error boundary say so.
_FATAL = (Auth0AuthError, Auth0ConfigError)
# Retries are already exhausted: stop calling Auth0 for the rest of this check.
_TRANSIENT = (Auth0Unavailable, Auth0RateLimited)
LIVE_WORKERS = 4  # live checks under a time budget running at once in one process
# Kept from a budget for reading the index when the live check has not answered in time.
FALLBACK_SECONDS = 0.05


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
    """Re-read every account linked to the E.164 `phone` in Auth0; the updated lookup.

    Each account is read whole (user object: profile, root number, linked SMS identities; and
    its MFA numbers when it has MFA), so a number it no longer has in any form disappears.
    """
    check = _Check(clock())
    changes: list[Change] = []
    for account in store.lookup(phone)["accounts"]:
        if check.halted:
            check.errors += 1
            continue
        had_mfa = any(p["kind"] == "mfa" for p in account["phones"])
        try:
            read = read_account(
                client, account["user_id"], check.checked_at, had_mfa=had_mfa,
                priority="interactive", source="live", mfa_source="live",
                default_region=default_region,
            )  # fmt: skip
        except _FATAL:
            raise
        except (Auth0Error, ValueError) as exc:
            check.failed(exc)
            continue
        check.checked += 1
        check.deleted += read.deleted
        changes += read.changes
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
    """Search Auth0 users by profile number (passwordless/profile only); the updated lookup.

    A hit that still has the number is taken whole: its profile and all of its passwordless/
    profile numbers (root and linked SMS identities), so numbers it no longer has disappear.
    """
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
        unusable = mapper.unusable_numbers
        try:
            seen, phones = mapper.read(user)
        except ValueError as exc:
            check.failed(exc)
            continue
        # Search is eventually consistent: a hit may have changed its number since.
        if any(p.phone == phone for p in phones):
            complete = mapper.unusable_numbers == unusable
            at = check.checked_at
            changes += [seen, *profile_changes(seen.user_id, phones, at, "live", complete=complete)]
            check.checked += 1
    return _finish(store, phone, query, changes, check, "live search")


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


class LiveChecks:
    """Live checks answered within a time budget: past it, what the index knows, saying so.

    Checks run on a few threads of their own. One still running when its budget ends goes on
    and applies what it learns (the next lookup has it); one not started yet is dropped.
    """

    def __init__(
        self, workers: int = LIVE_WORKERS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="live-checks")
        self._monotonic = monotonic

    def lookup_within(
        self,
        store: Store,
        client: Auth0Client,
        phone: str,
        until: float,
        *,
        query: str | None = None,
        default_region: str | None = None,
    ) -> dict[str, Any]:
        """`live_lookup` if it answers before `until` (monotonic), else the index's document.

        The `live` block's `status` says which: `finished`, `timeout`, or `failed` (Auth0
        refused the credentials; `error` says why).
        """
        check = _Check(store.clock())
        future = self._pool.submit(
            live_lookup, store, client, phone, query=query, default_region=default_region
        )
        try:
            doc = future.result(timeout=max(0.0, until - self._monotonic() - FALLBACK_SECONDS))
        except TimeoutError:
            future.cancel()
            log.info("live check of %s: no answer in time, answered from the index", last4(phone))
            check.error = "Auth0 did not answer in time: the accounts are as the index has them"
            return _from_index(store, phone, query, check, "timeout")
        except Auth0Error as exc:
            check.failed(exc)
            return _from_index(store, phone, query, check, "failed")
        doc["live"]["status"] = "finished"
        return doc

    def close(self) -> None:
        """Drop the checks not started; wait for those running (they apply what they read)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _from_index(
    store: Store, phone: str, query: str | None, check: _Check, status: str
) -> dict[str, Any]:
    doc = store.lookup(phone, query)
    doc["live"] = check.document() | {"status": status}
    return doc
