"""The HTTP API's documents as pydantic models, for the OpenAPI schema, with examples.

The lookup document itself is built by phoneindex.store.Store.lookup (and jobs.live for the
`live` block); these models describe it, field for field, so an integrator can generate a
client. The request model also validates POST bodies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MIN_TIMEOUT_MS = 100
MAX_TIMEOUT_MS = 8000
DEFAULT_TIMEOUT_MS = 2000


class LookupRequest(BaseModel):
    """What to look up: the number as the phone system has it, and whether to check live."""

    model_config = ConfigDict(strict=True, extra="forbid")

    phone: str = Field(
        description="The caller's number in any usual form: `+1 (415) 555-0100`, `415-555-0100` "
        "(default region), `00 44 20 7946 0958`, `tel:+14155550100`. Withheld caller ids "
        "(`anonymous`, `restricted`, `unknown`, empty) are refused with 400.",
    )
    live: bool = Field(
        False,
        description="Also re-read each account from the Auth0 Management API, within "
        "`timeout_ms`; past it the answer is the index's, with `live.status` `timeout`.",
    )
    timeout_ms: int = Field(
        DEFAULT_TIMEOUT_MS,
        ge=MIN_TIMEOUT_MS,
        le=MAX_TIMEOUT_MS,
        description="Time budget of the live check in milliseconds.",
    )


class PhoneLink(BaseModel):
    """How one account is linked to the number."""

    kind: Literal["mfa", "passwordless", "profile"] = Field(
        description="`mfa`: an MFA phone authenticator; `passwordless`: an SMS passwordless "
        "identity; `profile`: a `phone_number` attribute of any other account."
    )
    method: Literal["sms", "voice"] | None = Field(description="For `mfa`: sms or voice.")
    confirmed: bool | None
    source: Literal["export", "authenticators", "logs", "action", "live"] = Field(
        description="Which feed last saw the link."
    )
    updated_at: datetime | None = Field(description="When that feed saw it (UTC).")
    identity: str | None = Field(
        None,
        description="`{provider}|{user_id}` of the linked identity whose number this is "
        "(account linking); null for the account's own.",
    )


class Account(BaseModel):
    """One Auth0 account linked to the number."""

    user_id: str
    email: str | None
    name: str | None
    connection: str | None
    blocked: bool
    created_at: datetime | None
    last_login: datetime | None
    phones: list[PhoneLink]


class Freshness(BaseModel):
    """How fresh the index is."""

    last_full_sync: datetime | None
    last_update: datetime | None
    stale: bool


class LiveCheck(BaseModel):
    """The live check asked for with `live: true`."""

    status: Literal["finished", "timeout", "failed"] = Field(
        description="`finished`: the accounts were re-read; `timeout`: Auth0 did not answer "
        "within `timeout_ms`, the accounts are as the index has them; `failed`: Auth0 refused "
        "(see `error`), the accounts are as the index has them."
    )
    checked_at: datetime
    checked: int = Field(description="Accounts re-read from Auth0.")
    errors: int
    deleted: int = Field(description="Accounts Auth0 no longer has.")
    error: str | None


class LookupDocument(BaseModel):
    """Every account linked to the number (also none). A routing hint, never proof of identity."""

    query: str = Field(description="The number as given.")
    phone: str = Field(description="Its E.164 form.", pattern=r"^\+[1-9][0-9]{6,14}$")
    accounts: list[Account] = Field(description="Every linked account, most recent login first.")
    freshness: Freshness
    live: LiveCheck | None = Field(None, description="Present when `live: true` was asked.")


class Problem(BaseModel):
    """Why the request was not answered."""

    error: str


class OverLimit(Problem):
    """The key made more lookups in the last hour than its limit."""

    retry_after_seconds: int


# ---------------------------------------------------------------------------- examples

_JANE: dict[str, Any] = {
    "user_id": "auth0|65a1b2c3d4e5f6a7b8c9d0e1",
    "email": "jane@example.com",
    "name": "Jane Doe",
    "connection": "Username-Password-Authentication",
    "blocked": False,
    "created_at": "2025-02-01T10:00:00Z",
    "last_login": "2026-11-20T08:12:00Z",
    "phones": [
        {"kind": "mfa", "method": "sms", "confirmed": True, "source": "authenticators",
         "updated_at": "2026-11-26T03:10:00Z", "identity": None},
    ],
}  # fmt: skip
_FRESH = {"last_full_sync": "2026-11-26T03:00:00Z", "last_update": "2026-11-27T09:41:00Z",
          "stale": False}  # fmt: skip
FOUND = {"query": "(415) 555-0100", "phone": "+14155550100", "accounts": [_JANE],
         "freshness": _FRESH}  # fmt: skip
NONE_FOUND = {"query": "+442079460958", "phone": "+442079460958", "accounts": [],
              "freshness": _FRESH}  # fmt: skip
TIMED_OUT = FOUND | {
    "live": {"status": "timeout", "checked_at": "2026-11-27T09:42:00Z", "checked": 0,
             "errors": 0, "deleted": 0,
             "error": "Auth0 did not answer in time: the accounts are as the index has them"},
}  # fmt: skip


def examples(**named: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI `content` block with named JSON examples."""
    return {"application/json": {"examples": {k: {"value": v} for k, v in named.items()}}}
