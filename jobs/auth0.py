"""Auth0 Management API client: cached M2M token, pacing, retries, typed results."""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from jobs.auth0_types import (
    _EXPORT_FILE,
    Auth0AuthError,
    Auth0ConfigError,
    Auth0Error,
    Auth0NotFound,
    Auth0RateLimited,
    Auth0RequestError,
    Auth0ResponseError,
    Auth0Stats,
    Auth0Unavailable,
    AuthenticationMethod,
    DownloadExpired,
    ExportJob,
    LogPage,
    _auth_method,
    _Counters,
    _error_code,
    _export_job,
    _int,
    _items,
    _link_from,
    _str,
    _Token,
    base_url,
)
from jobs.httplog import redact_httpx_logs
from jobs.ratelimit import Clock, Pacer, Priority, RateLimitSnapshot, RetryPolicy, Sleep
from jobs.telemetry import AUTH0_LIMIT, AUTH0_REMAINING, AUTH0_REQUESTS, auth0_outcome
from phoneindex.budget import Budget, open_budget
from phoneindex.errors import UnusableNumber

if TYPE_CHECKING:
    from phoneindex.settings import Settings

log = logging.getLogger(__name__)

PACING_HEADROOM = 0.95  # of MFA_WHOIS_AUTH0_MAX_RPS

# Callers import the vocabulary from here, with the client.
__all__ = [
    "Auth0AuthError", "Auth0Client", "Auth0ConfigError", "Auth0Error", "Auth0NotFound",
    "Auth0RateLimited", "Auth0RequestError", "Auth0ResponseError", "Auth0Stats",
    "Auth0Unavailable", "AuthenticationMethod", "DownloadExpired", "ExportJob", "LogPage",
    "Priority", "base_url",
]  # fmt: skip


_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_PER_PAGE_METHODS = 100
_PER_PAGE_USERS = 50
_MAX_PAGES = 20


def _observed(seen: RateLimitSnapshot, status: int) -> None:
    """Count one Management API answer and keep the tenant's budget as last seen (metrics)."""
    AUTH0_REQUESTS.labels(auth0_outcome(status)).inc()
    if seen.remaining is not None:
        AUTH0_REMAINING.set(seen.remaining)
    if seen.limit is not None:
        AUTH0_LIMIT.set(seen.limit)


# --- the client ---


class Auth0Client:
    """Management API client: one httpx.Client, a cached M2M token, paced and retried calls."""

    def __init__(
        self,
        domain: str,
        client_id: str,
        client_secret: str | SecretStr,
        audience: str | None = None,
        *,
        max_rps: float = 2.0,
        burst: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        budget: Budget | None = None,
    ) -> None:
        secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        if not client_id:
            raise Auth0ConfigError("AUTH0_CLIENT_ID", "is empty")
        if not secret.get_secret_value():
            raise Auth0ConfigError("AUTH0_CLIENT_SECRET", "is empty")
        if max_rps <= 0:
            raise Auth0ConfigError("MFA_WHOIS_AUTH0_MAX_RPS", "must be greater than 0")
        redact_httpx_logs()
        self.base_url = base_url(domain)
        self.audience = audience or f"{self.base_url}/api/v2/"
        self._client_id = client_id
        self._secret = secret
        self._http = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout), headers={"User-Agent": "mfa-whois"}
        )
        # Requests paced exactly at the limit can arrive bunched by network jitter (11 in one
        # second at 10/s, measured in benchmarks/bench_sync.py): keep a small headroom.
        self.max_rps = max_rps
        paced = max_rps * PACING_HEADROOM
        self._budget = budget
        self._pacer = Pacer(
            paced, burst=burst, clock=clock, wall_clock=wall_clock, sleep=sleep, budget=budget
        )
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._counts = _Counters()
        self._counts_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> Self:
        """Build the client from AUTH0_* settings; keyword arguments override the rest."""
        settings.require("auth0_domain", "auth0_client_id", "auth0_client_secret")
        secret = settings.auth0_client_secret
        assert settings.auth0_domain and settings.auth0_client_id and secret  # checked above
        kw.setdefault("max_rps", settings.auth0_max_rps)
        if "budget" not in kw:  # one ceiling for every process sharing the database
            kw["budget"] = open_budget(settings.database_url)
        return cls(
            settings.auth0_domain, settings.auth0_client_id, secret, settings.auth0_audience, **kw
        )

    def __repr__(self) -> str:
        return (
            f"Auth0Client(base_url={self.base_url!r}, client_id={self._client_id!r}, "
            f"max_rps={self.max_rps})"
        )

    def close(self) -> None:
        """Close the connection pool (and the shared budget's)."""
        self._http.close()
        if self._budget is not None:
            self._budget.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def stats(self) -> Auth0Stats:
        """A snapshot of the request counters and the last rate-limit headers seen."""
        seen = self._pacer.last_seen
        with self._counts_lock:
            counts = self._counts
            return Auth0Stats(
                requests_sent=counts.requests_sent,
                token_requests=counts.token_requests,
                retries=counts.retries,
                rate_limited=counts.rate_limited,
                waited_seconds=self._pacer.waited_seconds,
                ratelimit_limit=seen.limit,
                ratelimit_remaining=seen.remaining,
                ratelimit_reset=seen.reset,
            )

    # --- Management API methods ---

    def create_users_export(
        self,
        fields: list[str],
        format: Literal["json", "csv"] = "json",
        connection_id: str | None = None,
        *,
        priority: Priority = "bulk",
    ) -> ExportJob:
        """Start a bulk users export of `fields` (all connections unless one is given)."""
        body: dict[str, Any] = {"format": format, "fields": [{"name": name} for name in fields]}
        if connection_id:
            body["connection_id"] = connection_id
        path = "/api/v2/jobs/users-exports"
        return _export_job(self._json_object("POST", path, priority, json=body))

    def get_job(self, job_id: str, *, priority: Priority = "bulk") -> ExportJob:
        """The current state of a job."""
        path = f"/api/v2/jobs/{quote(job_id, safe='')}"
        return _export_job(self._json_object("GET", path, priority))

    def get_authentication_methods(
        self, user_id: str, *, priority: Priority = "bulk"
    ) -> list[AuthenticationMethod]:
        """Every authentication method of a user, across pages."""
        path = f"/api/v2/users/{quote(user_id, safe='')}/authentication-methods"
        found: dict[str, AuthenticationMethod] = {}
        anonymous: list[AuthenticationMethod] = []
        for page in range(_MAX_PAGES):
            params = {"page": page, "per_page": _PER_PAGE_METHODS, "include_totals": "true"}
            items, total = self._json_list("GET", path, priority, "authenticators", params)
            before = len(found)
            for item in items:
                if isinstance(item, dict):
                    method = _auth_method(item)
                    if method.id:
                        found.setdefault(method.id, method)
                    else:
                        anonymous.append(method)
            seen = len(found) + len(anonymous)
            complete = total is not None and seen >= total
            if len(items) < _PER_PAGE_METHODS or len(found) == before or complete:
                break
        return [*found.values(), *anonymous]

    def get_logs(
        self, from_id: str | None, take: int = 100, *, priority: Priority = "bulk"
    ) -> LogPage:
        """Events after `from_id` (checkpoint mode); with None, only the newest event."""
        path = "/api/v2/logs"
        if from_id is None:
            return self._one_log("date:-1", priority)
        params = {"from": from_id, "take": max(1, min(take, 100))}
        response = self._call("GET", path, priority, params=params)
        items, _ = self._parse_list(response, "GET", path, "logs")
        events = [e for e in items if isinstance(e, dict)]
        last = _str(events[-1].get("log_id")) if events else None
        return LogPage(events, _link_from(response) or last or from_id)

    def get_oldest_log(self, *, priority: Priority = "bulk") -> LogPage:
        """The oldest event still kept (search mode, oldest first), to read a log from its start."""
        return self._one_log("date:1", priority)

    def _one_log(self, sort: str, priority: Priority) -> LogPage:
        """The first event in search mode under `sort`, and its log_id (None: no events)."""
        params: dict[str, Any] = {"per_page": 1, "page": 0, "sort": sort}
        items, _ = self._json_list("GET", "/api/v2/logs", priority, "logs", params)
        first = [e for e in items if isinstance(e, dict)][:1]
        return LogPage(first, _str(first[0].get("log_id")) if first else None)

    def get_user(self, user_id: str, *, priority: Priority = "interactive") -> dict[str, Any]:
        """One user's profile (immediately consistent, unlike search)."""
        return self._json_object("GET", f"/api/v2/users/{quote(user_id, safe='')}", priority)

    def search_users_by_phone(
        self, e164: str, *, priority: Priority = "interactive"
    ) -> list[dict[str, Any]]:
        """Users whose profile `phone_number` is `e164` (never finds MFA numbers)."""
        if not _E164.fullmatch(e164):
            raise UnusableNumber("user search needs an E.164 number such as +14155550100")
        users: list[dict[str, Any]] = []
        for page in range(_MAX_PAGES):
            params = {
                "q": f'phone_number:"{e164}"',
                "search_engine": "v3",
                "per_page": _PER_PAGE_USERS,
                "page": page,
            }
            items, _ = self._json_list("GET", "/api/v2/users", priority, "users", params)
            users.extend(item for item in items if isinstance(item, dict))
            if len(items) < _PER_PAGE_USERS:
                break
        return users

    def download(self, url: str, dest: Path, progress: Callable[[int], None] | None = None) -> int:
        """Stream a signed export URL, unauthenticated, to `dest`; returns the bytes written."""
        # The file is written as stored (gzip); `progress` gets the bytes written so far.
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                with self._http.stream(
                    "GET", url, headers={"Accept-Encoding": "identity"}, follow_redirects=True
                ) as response:
                    if response.status_code < 300:
                        return _save(response, dest, progress)
                status = response.status_code
                if status in (401, 403, 404, 410):
                    raise DownloadExpired(status)
                error = Auth0Unavailable("GET", _EXPORT_FILE, status=status, attempts=attempt)
                if status != 429 and status < 500:
                    raise error
                failure = str(status)
            except _TRANSIENT as exc:
                failure = type(exc).__name__
                error = Auth0Unavailable("GET", _EXPORT_FILE, reason=failure, attempts=attempt)
            except httpx.HTTPError as exc:  # a malformed URL, too many redirects: not transient
                raise Auth0Unavailable("GET", _EXPORT_FILE, reason=type(exc).__name__) from None
            if attempt == attempts:
                raise error
            self._pause("GET", _EXPORT_FILE, failure, self._retry.backoff(attempt, self._rng))
        raise AssertionError("unreachable")

    # --- the one chokepoint every Management API call goes through ---

    def _json_object(self, method: str, path: str, priority: Priority, **kw: Any) -> dict[str, Any]:
        """Call and return a JSON object body."""
        body = self._decode(self._call(method, path, priority, **kw), method, path)
        if not isinstance(body, dict):
            raise Auth0ResponseError(method, path, "a JSON object")
        return body

    def _json_list(
        self, method: str, path: str, priority: Priority, key: str, params: dict[str, Any]
    ) -> tuple[list[Any], int | None]:
        """Call and return a list body in either shape, with the total when given."""
        return self._parse_list(
            self._call(method, path, priority, params=params), method, path, key
        )

    def _parse_list(
        self, response: httpx.Response, method: str, path: str, key: str
    ) -> tuple[list[Any], int | None]:
        parsed = _items(self._decode(response, method, path), key)
        if parsed is None:
            raise Auth0ResponseError(method, path, f"a JSON array or an object with {key!r}")
        return parsed

    @staticmethod
    def _decode(response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise Auth0ResponseError(method, path, "JSON") from None

    def _call(self, method: str, path: str, priority: Priority, **kw: Any) -> httpx.Response:
        """Send with the cached token, renewing it once on 401/403; raise typed errors."""
        url = f"{self.base_url}{path}"
        renewed = False
        while True:
            token = self._bearer()
            send = functools.partial(
                self._http.request, method, url, headers={"Authorization": f"Bearer {token}"}, **kw
            )
            response = self._retrying(method, path, send, priority)
            if response.status_code not in (401, 403) or renewed:
                break
            renewed = True
            self._drop_token(token)
        _raise_for_status(response, method, path)
        return response

    def _retrying(
        self, method: str, path: str, send: Callable[[], httpx.Response], priority: Priority | None
    ) -> httpx.Response:
        """Send until the answer is final; 429, 5xx and transport failures are retried."""
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            if priority is not None:
                self._pacer.acquire(priority)
            self._count(requests_sent=priority is not None, token_requests=priority is None)
            try:
                response = send()
            except _TRANSIENT as exc:
                if priority is not None:
                    AUTH0_REQUESTS.labels(auth0_outcome(None)).inc()
                if attempt == attempts:
                    raise Auth0Unavailable(
                        method, path, reason=type(exc).__name__, attempts=attempt
                    ) from None
                self._pause(
                    method, path, type(exc).__name__, self._retry.backoff(attempt, self._rng)
                )
                continue
            except httpx.HTTPError as exc:
                if priority is not None:
                    AUTH0_REQUESTS.labels(auth0_outcome(None)).inc()
                raise Auth0Unavailable(method, path, reason=type(exc).__name__) from None
            status = response.status_code
            if priority is not None:
                _observed(self._pacer.observe(response.headers), status)
            if status != 429 and status < 500:
                return response
            self._count(rate_limited=status == 429)
            if attempt == attempts:
                if status == 429:
                    raise Auth0RateLimited(method, path, attempt)
                raise Auth0Unavailable(method, path, status=status, attempts=attempt)
            self._wait_after(method, path, response, attempt, paced=priority is not None)
        raise AssertionError("unreachable")

    def _wait_after(
        self, method: str, path: str, response: httpx.Response, attempt: int, *, paced: bool
    ) -> None:
        """Wait before retrying a 429 (for everybody, via the pacer) or a 5xx (this call)."""
        if response.status_code != 429:
            self._pause(
                method, path, str(response.status_code), self._retry.backoff(attempt, self._rng)
            )
            return
        delay = self._retry.rate_limited_delay(
            response.headers, self._wall_clock(), attempt, self._rng
        )
        log.warning("Auth0 %s %s: 429, holding calls for %.1fs", method, path, delay)
        self._count(retries=True)
        if paced:
            self._pacer.hold(delay)
        else:
            self._sleep(delay)

    def _pause(self, method: str, path: str, failure: str, delay: float) -> None:
        """Sleep before retrying one call."""
        log.warning("Auth0 %s %s: %s, retrying in %.1fs", method, path, failure, delay)
        self._count(retries=True)
        self._sleep(delay)

    def _count(
        self,
        *,
        requests_sent: bool = False,
        token_requests: bool = False,
        retries: bool = False,
        rate_limited: bool = False,
    ) -> None:
        with self._counts_lock:
            self._counts.requests_sent += requests_sent
            self._counts.token_requests += token_requests
            self._counts.retries += retries
            self._counts.rate_limited += rate_limited

    # --- the M2M token ---

    def _bearer(self) -> str:
        """The cached access token, fetched when missing or close to expiry."""
        with self._token_lock:
            if self._token is None or self._clock() >= self._token.renew_at:
                self._token = self._fetch_token()
            return self._token.value

    def _drop_token(self, value: str) -> None:
        """Forget a token Auth0 refused (unless another thread already replaced it)."""
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> _Token:
        """POST /oauth/token with the client credentials grant."""
        path = "/oauth/token"
        body = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.get_secret_value(),
            "audience": self.audience,
        }
        send = functools.partial(self._http.post, f"{self.base_url}{path}", json=body)
        response = self._retrying("POST", path, send, None)
        if response.status_code >= 300:
            raise Auth0AuthError("POST", path, response.status_code, _error_code(response))
        data = self._decode(response, "POST", path)
        value = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            raise Auth0ResponseError("POST", path, "an access_token")
        lifetime = float(_int(data.get("expires_in")) or 86400)
        margin = min(max(60.0, lifetime * 0.1), lifetime / 2)
        log.info("Auth0 token fetched, valid for %.0fs", lifetime)
        return _Token(value, self._clock() + lifetime - margin)


def _raise_for_status(response: httpx.Response, method: str, path: str) -> None:
    """Turn a final non-2xx answer into the typed error."""
    status = response.status_code
    if status < 300:
        return
    if status in (401, 403):
        raise Auth0AuthError(method, path, status, _error_code(response))
    if status == 404:
        raise Auth0NotFound(method, path)
    raise Auth0RequestError(method, path, status, _error_code(response))


def _save(response: httpx.Response, dest: Path, progress: Callable[[int], None] | None) -> int:
    """Write the raw body to `dest` through a `.part` file; returns the bytes written."""
    part = dest.with_name(dest.name + ".part")
    written = 0
    try:
        # A response read ahead (as httpx.MockTransport hands them out) can only give its content.
        chunks = [response.content] if response.is_stream_consumed else response.iter_raw(1 << 16)
        with part.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(written)
        part.replace(dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return written
