"""Auth0 Management API vocabulary: the error tree, typed results and defensive parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from phoneindex.errors import ConfigError, WhoisError

_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
_EXPORT_FILE = "export file"


# --- errors: each builds its one-line message from typed arguments, never from a URL ---


class Auth0Error(WhoisError):
    """Base of every failure talking to Auth0; messages name the method and path only."""

    def __init__(
        self, message: str, method: str = "", path: str = "", status: int | None = None
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status


class Auth0ConfigError(Auth0Error, ConfigError):
    """The Auth0 settings cannot be used; the message names the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable


class Auth0AuthError(Auth0Error):
    """Auth0 refused the credentials or the token's scopes (401/403, also after renewing)."""

    def __init__(self, method: str, path: str, status: int, code: str | None = None) -> None:
        detail = f" ({code})" if code else ""
        if path == "/oauth/token":
            hint = "check AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_AUDIENCE"
        elif status == 403:
            hint = f"the M2M app needs the {_scope_for(path)} scope"
        else:
            hint = "check AUTH0_AUDIENCE and that the M2M app may call the Management API"
        super().__init__(
            f"Auth0 answered {status}{detail} for {method} {path}; {hint}", method, path, status
        )
        self.code = code


class Auth0NotFound(Auth0Error):
    """Auth0 answered 404: the user, job or log does not exist (any more)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Auth0 answered 404 for {method} {path}", method, path, 404)


class Auth0RequestError(Auth0Error):
    """Auth0 rejected the request itself (a 4xx other than 401, 403, 404 and 429)."""

    def __init__(self, method: str, path: str, status: int, code: str | None = None) -> None:
        detail = f" ({code})" if code else ""
        super().__init__(
            f"Auth0 answered {status}{detail} for {method} {path}", method, path, status
        )
        self.code = code


class Auth0RateLimited(Auth0Error):
    """Auth0 kept answering 429 until the attempts ran out."""

    def __init__(self, method: str, path: str, attempts: int) -> None:
        message = f"Auth0 answered 429 for {method} {path} after {attempts} attempts"
        super().__init__(message, method, path, 429)
        self.attempts = attempts


class Auth0Unavailable(Auth0Error):
    """Auth0 answered 5xx, timed out or could not be reached until the attempts ran out."""

    def __init__(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        reason: str = "",
        attempts: int = 1,
    ) -> None:
        if status is not None:
            message = f"Auth0 answered {status} for {method} {path}"
        else:
            message = f"Auth0 did not answer {method} {path} ({reason or 'no response'})"
        super().__init__(message, method, path, status)
        self.reason = reason
        self.attempts = attempts


class Auth0ResponseError(Auth0Error):
    """Auth0 answered with a body this client cannot read."""

    def __init__(self, method: str, path: str, expected: str) -> None:
        message = f"Auth0 answered {method} {path} with an unexpected body (expected {expected})"
        super().__init__(message, method, path)


class DownloadExpired(Auth0Error):
    """The signed export URL was refused (it lives 60 s): poll the job for a fresh one."""

    def __init__(self, status: int) -> None:
        message = f"Auth0's export download link was refused ({status}); poll the job again"
        super().__init__(message, "GET", _EXPORT_FILE, status)


def _scope_for(path: str) -> str:
    """The Management API scope a path needs, for error hints."""
    if path.startswith("/api/v2/logs"):
        return "read:logs"
    if path.endswith("/authentication-methods"):
        return "read:authentication_methods"
    return "read:users"


# --- typed results ---


@dataclass(frozen=True)
class ExportJob:
    """A users-export job; `location` is the signed download URL once completed."""

    id: str
    status: str
    format: str | None = None
    location: str | None = field(default=None, repr=False)
    percentage_done: int | None = None
    time_left_seconds: int | None = None
    connection_id: str | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def completed(self) -> bool:
        """The file is ready at `location`."""
        return self.status == "completed"

    @property
    def failed(self) -> bool:
        """Auth0 gave up on the job; any status other than these two means still running."""
        return self.status == "failed"


@dataclass(frozen=True)
class AuthenticationMethod:
    """One authenticator of a user; `phone_number` is passed through exactly as Auth0 sent it."""

    id: str
    type: str
    name: str | None = None
    confirmed: bool | None = None
    phone_number: str | None = field(default=None, repr=False)
    preferred_method: str | None = None
    methods: tuple[str, ...] = ()
    created_at: datetime | None = None
    last_auth_at: datetime | None = None


@dataclass(frozen=True)
class LogPage:
    """Log events in log_id order and the checkpoint to continue from."""

    events: list[dict[str, Any]] = field(repr=False)
    next_from: str | None


@dataclass(frozen=True)
class Auth0Stats:
    """Counters for metrics and benchmarks."""

    requests_sent: int
    token_requests: int
    retries: int
    rate_limited: int
    waited_seconds: float
    ratelimit_limit: int | None
    ratelimit_remaining: int | None
    ratelimit_reset: float | None


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    renew_at: float


@dataclass
class _Counters:
    requests_sent: int = 0
    token_requests: int = 0
    retries: int = 0
    rate_limited: int = 0


# --- defensive parsing ---


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _when(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _export_job(data: dict[str, Any]) -> ExportJob:
    return ExportJob(
        id=_str(data.get("id")) or "",
        status=_str(data.get("status")) or "unknown",
        format=_str(data.get("format")),
        location=_str(data.get("location")),
        percentage_done=_int(data.get("percentage_done")),
        time_left_seconds=_int(data.get("time_left_seconds")),
        connection_id=_str(data.get("connection_id")),
        created_at=_when(data.get("created_at")),
        raw=data,
    )


def _auth_method(item: dict[str, Any]) -> AuthenticationMethod:
    linked = item.get("authentication_methods")
    methods = (
        tuple(m["type"] for m in linked if isinstance(m, dict) and isinstance(m.get("type"), str))
        if isinstance(linked, list)
        else ()
    )
    confirmed = item.get("confirmed")
    return AuthenticationMethod(
        id=_str(item.get("id")) or "",
        type=_str(item.get("type")) or "unknown",
        name=_str(item.get("name")),
        confirmed=confirmed if isinstance(confirmed, bool) else None,
        phone_number=_str(item.get("phone_number")),
        preferred_method=_str(item.get("preferred_authentication_method")),
        methods=methods,
        created_at=_when(item.get("created_at")),
        last_auth_at=_when(item.get("last_auth_at")),
    )


def _items(data: Any, key: str) -> tuple[list[Any], int | None] | None:
    """A list response in either shape (bare array, or an object with totals), or None."""
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict) and isinstance(data.get(key), list):
        return data[key], _int(data.get("total"))
    return None


def _error_code(response: httpx.Response) -> str | None:
    """Auth0's machine-readable error code, never its free text (it may echo a query)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("errorCode") or body.get("error")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else None


def _link_from(response: httpx.Response) -> str | None:
    """The `from` parameter of the `Link: <...>; rel="next"` header."""
    url = response.links.get("next", {}).get("url")
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("from")
    return values[0] if values and values[0] else None


def base_url(domain: str) -> str:
    """`acme.us.auth0.com` -> `https://acme.us.auth0.com`; an http(s) base URL as given."""
    text = domain.strip()
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme in ("http", "https") and parts.hostname and not parts.query:
            return text.rstrip("/")
    elif _HOST.fullmatch(text.rstrip("/")):
        return f"https://{text.rstrip('/')}"
    raise Auth0ConfigError(
        "AUTH0_DOMAIN", "expected a tenant domain such as acme.us.auth0.com or an http(s):// URL"
    )
