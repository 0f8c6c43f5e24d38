"""A local fake Auth0 tenant: a real HTTP server that behaves like the documented Management API.

Start it with `with FakeAuth0(users=[...]) as fake:` and point a client at `fake.base_url`.
It serves `POST /oauth/token`, the Management API calls mfa-whois makes (user export jobs,
authentication methods, users, logs) and the signed export download URLs, with a real token
bucket, recorded requests and failure injection. Everything a test may change mid-run is a plain
attribute; compound changes to `users`, `auth_methods` or `logs` go under `with fake.lock:`.

Documented behaviour worth knowing: checkpoint pages always carry `Link: <...>; rel="next"`,
and an empty page links to the very URL just asked (stop on an empty page, not on a missing
Link); export download URLs expire (60 s by default here, as in Auth0).
Choices where Auth0 documents nothing:
- download URLs refuse a request that also carries an `Authorization` header, as S3 presigned
  URLs do (`reject_auth_on_download`); the Management API token must not go there anyway;
- a checkpoint older than `log_retention_floor` answers 400 with `CHECKPOINT_EXPIRED_BODY`
  (or, with `expired_checkpoint="silent"`, answers from the oldest retained event);
- `take`/`per_page` above 100 answer 400 `invalid_query_string`;
- an export without `fields` uses `DEFAULT_EXPORT_FIELDS`; without `format` it is CSV;
- a failed export job carries `summary` with `failed: 1`;
- `q` understands one `field:"value"` term (exact match), enough for phone-number search.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import math
import re
import secrets
import socket
import string
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

# --------------------------------------------------------------------------- tenant constants

CON_DB = "con_DbConnection0001"
CON_SMS = "con_SmsConnection001"
CON_EMAIL = "con_EmailConnection1"
CON_GOOGLE = "con_GoogleOauth2Con1"
DEFAULT_CONNECTIONS: dict[str, str] = {
    CON_DB: "Username-Password-Authentication",
    CON_SMS: "sms",
    CON_EMAIL: "email",
    CON_GOOGLE: "google-oauth2",
}
ALL_SCOPES = ("read:users", "read:authentication_methods", "read:logs")
DEFAULT_EXPORT_FIELDS = ("user_id", "name", "email", "identities[0].connection")

TOO_MANY_REQUESTS_BODY: dict[str, Any] = {
    "statusCode": 429,
    "error": "Too Many Requests",
    "message": "Global limit has been reached",
    "errorCode": "too_many_requests",
}
USER_NOT_FOUND_BODY: dict[str, Any] = {
    "statusCode": 404,
    "error": "Not Found",
    "message": "The user does not exist.",
    "errorCode": "inexistent_user",
}
# Auth0 does not document what an expired checkpoint answers; this is our choice.
CHECKPOINT_EXPIRED_BODY: dict[str, Any] = {
    "statusCode": 400,
    "error": "Bad Request",
    "message": "The log_id given in 'from' is older than the tenant's log retention period.",
    "errorCode": "invalid_query_string",
}

# What a linked identity's `profileData` keeps of the secondary user's profile.
_PROFILE_DATA = {
    "email", "email_verified", "name", "phone_number", "phone_verified", "given_name",
    "family_name", "nickname", "picture",
}  # fmt: skip
_SOCIAL = {"google-oauth2", "github", "facebook", "apple", "windowslive", "linkedin", "twitter"}
_DB_PROVIDERS = {"auth0": "Username-Password-Authentication"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_ALNUM = string.ascii_letters + string.digits
_BASE_TIME = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
_user_seq = itertools.count(1)
_log_seq = itertools.count(1)
_LOG_PREFIX = "900" + time.strftime("%Y%m%d%H%M%S", time.gmtime())


# --------------------------------------------------------------------------- data helpers


def iso(value: datetime | str | None = None) -> str:
    """Auth0's timestamp format (`2024-01-01T09:00:00.000Z`); strings pass through."""
    if isinstance(value, str):
        return value
    moment = value or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def random_id(length: int = 16) -> str:
    """Random letters and digits, the shape of Auth0's job and device ids."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def mask_number(number: str) -> str:
    """Mask a phone number like Auth0's SMS obfuscation: `+14155550100` -> `XXXXXXXX0100`."""
    return "X" * max(len(number) - 4, 0) + number[-4:]


def make_user(
    user_id: str | None = None,
    *,
    phone_number: str | None = None,
    phone_verified: bool | None = None,
    email: str | None = None,
    name: str | None = None,
    connection: str | None = None,
    multifactor: list[str] | None = None,
    multifactor_last_modified: datetime | str | None = None,
    blocked: bool = False,
    created_at: datetime | str | None = None,
    updated_at: datetime | str | None = None,
    last_login: datetime | str | None = None,
    logins_count: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """A realistic Auth0 user; `sms|...` ids make passwordless SMS users."""
    n = next(_user_seq)
    user_id = user_id or f"auth0|{n:024x}"
    provider, _, ident = user_id.partition("|")
    created = iso(created_at or _BASE_TIME + timedelta(minutes=n))
    user: dict[str, Any] = {"user_id": user_id, "created_at": created}
    if provider == "sms" and phone_number is None:
        phone_number = f"+1415555{n % 10000:04d}"
    if phone_number is not None:
        user["phone_number"] = phone_number
    if "phone_number" in user:
        user["phone_verified"] = True if phone_verified is None else phone_verified
    if provider != "sms" or email is not None:
        user["email"] = email or f"user{n}@example.com"
        user["email_verified"] = True
    user["name"] = name or user.get("email") or phone_number or user_id
    user["identities"] = [
        {
            "provider": provider,
            "connection": connection or _DB_PROVIDERS.get(provider, provider),
            "user_id": ident,
            "isSocial": provider in _SOCIAL,
        }
    ]
    if multifactor:
        user["multifactor"] = list(multifactor)
        user["multifactor_last_modified"] = iso(multifactor_last_modified or created)
    user["blocked"] = blocked
    user["updated_at"] = iso(updated_at or created)
    user["last_login"] = iso(last_login or user["updated_at"])
    user["logins_count"] = logins_count
    user.update(extra)
    return user


def make_phone_method(
    number: str,
    method: Literal["sms", "voice"] = "sms",
    confirmed: bool = True,
    *,
    device_id: str | None = None,
    created_at: datetime | str | None = None,
    last_auth_at: datetime | str | None = None,
) -> dict[str, Any]:
    """A Guardian phone authenticator as `/authentication-methods` lists it."""
    dev = device_id or f"dev_{random_id()}"
    item: dict[str, Any] = {
        "id": f"phone|{dev}",
        "type": "phone",
        "name": "SMS" if method == "sms" else "Voice",
        "confirmed": confirmed,
        "phone_number": number,
        "preferred_authentication_method": method,
        "authentication_methods": [{"id": f"{method}|{dev}", "type": method}],
        "created_at": iso(created_at or _BASE_TIME),
    }
    if confirmed:
        item["last_auth_at"] = iso(last_auth_at or _BASE_TIME + timedelta(days=1))
    return item


def make_method(
    type: str, confirmed: bool = True, *, device_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A non-phone authenticator (totp, email, webauthn-roaming, recovery-code, push, ...)."""
    dev = device_id or f"dev_{random_id()}"
    item: dict[str, Any] = {
        "id": f"{type}|{dev}",
        "type": type,
        "confirmed": confirmed,
        "created_at": iso(_BASE_TIME),
    }
    if type == "push":
        item["name"] = "iPhone"
        item["authentication_methods"] = [
            {"id": f"push|{dev}", "type": "push"},
            {"id": f"totp|{dev}", "type": "totp"},
        ]
    elif type.startswith("webauthn"):
        item["name"] = "Security key"
        item["key_id"] = random_id(24)
    item.update(extra)
    return item


def next_log_id() -> str:
    """A 56-digit Auth0-like log_id; each call is greater than the last (string and number)."""
    return f"{_LOG_PREFIX}{next(_log_seq):039d}"


def make_log(
    type: str,
    user_id: str | None = None,
    *,
    date: datetime | str | None = None,
    log_id: str | None = None,
    top: dict[str, Any] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """An Auth0 log event; keyword arguments become `details`, `top` adds top-level fields."""
    event: dict[str, Any] = {
        "log_id": log_id or next_log_id(),
        "date": iso(date),
        "type": type,
        "client_id": "AaiyAPdpYdesoKnqjj8HJqRn4T5titww",
        "ip": "203.0.113.7",
    }
    if user_id is not None:
        event["user_id"] = user_id
    event["details"] = details
    event.update(top or {})
    return event


# --------------------------------------------------------------------------- small records


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it; `t` is time.monotonic() at arrival, `wall` time.time()."""

    t: float
    wall: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Request:
    method: str
    path: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw_body: bytes
    body: Any = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class _Rule:
    remaining: int
    path_prefix: str | None
    status: int | None = None
    delay: float = 0.0


@dataclass
class _Token:
    expires_at: float
    scopes: frozenset[str]
    generation: int


@dataclass
class _Job:
    id: str
    format: str
    fields: list[dict[str, str]]
    connection_id: str | None
    limit: int | None
    created_at: str
    polls: int = 0
    status: str = "pending"
    content: bytes | None = None

    def view(self, connections: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "users_export", "status": self.status, "id": self.id}
        if self.connection_id:
            out["connection_id"] = self.connection_id
            out["connection"] = connections.get(self.connection_id)
        out.update(format=self.format, fields=self.fields, created_at=self.created_at)
        if self.limit is not None:
            out["limit"] = self.limit
        return out


class _TokenBucket:
    """Auth0-style bucket: `burst` tokens, refilled at `rate` per second of real time."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self) -> tuple[bool, dict[str, str]]:
        """Take one token; answer whether it was there and the x-ratelimit-* headers."""
        self.refill()
        ok = self.tokens >= 1
        if ok:
            self.tokens -= 1
        wait = 0.0 if self.tokens >= self.burst else (1 - self.tokens % 1) / self.rate
        return ok, {
            "x-ratelimit-limit": str(self.burst),
            "x-ratelimit-remaining": str(int(self.tokens)),
            "x-ratelimit-reset": str(math.ceil(time.time() + wait)),
        }


# --------------------------------------------------------------------------- reply helpers


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(obj).encode()
    return _Reply(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


def _error(status: int, message: str | None = None, code: str | None = None) -> _Reply:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    obj: dict[str, Any] = {"statusCode": status, "error": phrase, "message": message or phrase}
    if code:
        obj["errorCode"] = code
    return _json(status, obj)


def _bad_query(message: str) -> _Reply:
    return _error(400, f"Query validation error: {message}", "invalid_query_string")


def _s3_error(status: int, code: str, message: str) -> _Reply:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{random_id(16).upper()}</RequestId><HostId>{random_id(40)}</HostId></Error>"
    )
    return _Reply(status, body.encode(), {"Content-Type": "application/xml"})


def _int_arg(req: _Request, name: str, default: int, low: int, high: int) -> int | _Reply:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit():
        return _bad_query(f"Expected type integer but found type string on property {name}")
    value = int(raw)
    if not low <= value <= high:
        return _bad_query(f"{name} must be between {low} and {high} (got {value})")
    return value


def _paging(req: _Request) -> tuple[int, int] | _Reply:
    """`page` and `per_page` as Auth0 checks them (at most the first 1,000 records)."""
    per_page = _int_arg(req, "per_page", 50, 0, 100)
    page = _int_arg(req, "page", 0, 0, 10**6)
    if isinstance(per_page, _Reply):
        return per_page
    if isinstance(page, _Reply):
        return page
    if (page + 1) * per_page > 1000:
        return _error(400, "You can only page through the first 1000 records.", "invalid_paging")
    return page, per_page


def _log_key(log_id: str) -> tuple[int, str]:
    return (len(log_id), log_id) if log_id.isdigit() else (0, log_id)


def _resolve(obj: Any, path: str) -> tuple[bool, Any]:
    """Follow an export field path such as `identities[0].connection` or `app_metadata.x`."""
    for part in path.split("."):
        match = re.fullmatch(r"([^\[\]]+)((?:\[\d+\])*)", part)
        if not match or not isinstance(obj, dict) or match.group(1) not in obj:
            return False, None
        obj = obj[match.group(1)]
        for index in re.findall(r"\[(\d+)\]", match.group(2)):
            if not isinstance(obj, list) or int(index) >= len(obj):
                return False, None
            obj = obj[int(index)]
    return True, obj


def _csv_cell(value: Any) -> str:
    """One CSV cell the way Auth0 writes it: strings `"'..."` (OWASP), dates and scalars bare."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if _ISO_DATE.match(value):
            return value
        return '"' + ("'" + value).replace('"', '""') + '"'
    return '"' + json.dumps(value).replace('"', '""') + '"'


def _match_query(obj: dict[str, Any], q: str) -> bool | None:
    """Exact match of a single `field:"value"` term; None when q is not of that form."""
    match = re.fullmatch(r'\s*([\w.\[\]]+):(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*', q)
    if not match:
        return None
    wanted = re.sub(
        r"\\(.)", r"\1", match.group(2) if match.group(2) is not None else match.group(3)
    )
    found, value = _resolve(obj, match.group(1))
    if not found:
        return False
    if isinstance(value, bool):
        return wanted == ("true" if value else "false")
    return str(value) == wanted


# --------------------------------------------------------------------------- the server


class FakeAuth0:
    """A fake Auth0 tenant on 127.0.0.1:<ephemeral port>; use as a context manager."""

    def __init__(
        self,
        *,
        users: list[dict[str, Any]] | None = None,
        auth_methods: dict[str, list[dict[str, Any]]] | None = None,
        logs: list[dict[str, Any]] | None = None,
        connections: dict[str, str] | None = None,
        tenant: str = "fake-tenant",
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        audience: str | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
        expires_in: int = 86400,
        token_lifetime: float | None = None,
        rate: float = 10.0,
        burst: int = 10,
        send_retry_after: bool = False,
        export_polls_to_complete: int = 2,
        export_outcome: Literal["completed", "failed", "never"] = "completed",
        download_url_ttl: float = 60.0,
        truncate_download: bool = False,
        reject_auth_on_download: bool = True,
        mask_mfa_numbers: bool = False,
        log_retention_floor: str | None = None,
        expired_checkpoint: Literal["error", "silent"] = "error",
        slow: float = 0.0,
        slow_path_prefix: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.users = users if users is not None else []
        self.auth_methods = auth_methods if auth_methods is not None else {}
        self.logs = logs if logs is not None else []
        self.connections = dict(DEFAULT_CONNECTIONS if connections is None else connections)
        self.tenant = tenant
        self.client_id, self.client_secret = client_id, client_secret
        self.expected_audience = audience
        self.scopes = frozenset(scopes)
        self.expires_in, self.token_lifetime = expires_in, token_lifetime
        self.send_retry_after = send_retry_after
        self.export_polls_to_complete = export_polls_to_complete
        self.export_outcome = export_outcome
        self.download_url_ttl = download_url_ttl
        self.truncate_download = truncate_download
        self.reject_auth_on_download = reject_auth_on_download
        self.mask_mfa_numbers = mask_mfa_numbers
        self.log_retention_floor = log_retention_floor
        self.expired_checkpoint = expired_checkpoint
        self.slow, self.slow_path_prefix = slow, slow_path_prefix
        self.tokens_issued = 0
        self.errors: list[str] = []
        # Called as (method, path) once an answer is composed and before it is sent: the moment
        # between Auth0 reading its data and the client receiving it (races with other events).
        self.on_answer: Callable[[str, str], None] | None = None
        self.jobs: dict[str, _Job] = {}
        self._bucket = _TokenBucket(rate, burst)
        self._tokens: dict[str, _Token] = {}
        self._generation = 0
        self._rules: list[_Rule] = []
        self._signed: dict[str, tuple[str, float]] = {}
        self._records: list[RecordedRequest] = []
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeAuth0:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-auth0", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and wake any delayed handler."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeAuth0:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeAuth0 is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, to be used as AUTH0_DOMAIN."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def audience(self) -> str:
        """The audience a client should ask for: `{base_url}/api/v2/` unless set explicitly."""
        return self.expected_audience or f"{self.base_url}/api/v2/"

    def accepted_audiences(self) -> set[str]:
        if self.expected_audience:
            return {self.expected_audience}
        return {self.audience, f"https://127.0.0.1:{self.port}/api/v2/"}

    # ----------------------------------------------------------------- knobs for tests

    @property
    def rate(self) -> float:
        return self._bucket.rate

    @rate.setter
    def rate(self, value: float) -> None:
        with self.lock:
            self._bucket.refill()
            self._bucket.rate = value

    @property
    def burst(self) -> int:
        return self._bucket.burst

    @burst.setter
    def burst(self, value: int) -> None:
        with self.lock:
            self._bucket.refill()
            self._bucket.burst = value
            self._bucket.tokens = min(self._bucket.tokens, float(value))

    def refill_bucket(self) -> None:
        """Fill the rate-limit bucket to `burst` (a fresh second for the next test step)."""
        with self.lock:
            self._bucket.tokens = float(self._bucket.burst)
            self._bucket.updated = time.monotonic()

    def fail_next(self, n: int, status: int = 503, path_prefix: str | None = None) -> None:
        """Answer the next n matching requests with `status` (None prefix: any /api/v2/ call)."""
        with self.lock:
            self._rules.append(_Rule(n, path_prefix, status=status))

    def clear_failures(self) -> None:
        """Forget every failure and delay still pending from fail_next / delay_next."""
        with self.lock:
            self._rules.clear()

    def delay_next(self, n: int, seconds: float, path_prefix: str | None = None) -> None:
        """Hold the next n matching requests for `seconds` before answering."""
        with self.lock:
            self._rules.append(_Rule(n, path_prefix, delay=seconds))

    def issue_token(self, scopes: Iterable[str] | None = None) -> str:
        """Mint a valid access token without a request (counted in tokens_issued)."""
        with self.lock:
            return self._mint(frozenset(self.scopes if scopes is None else scopes))

    def revoke_tokens(self) -> None:
        """Make every token issued so far answer 401 (tests the client's renew-once path)."""
        with self.lock:
            self._generation += 1

    def add_user(self, user: dict[str, Any], methods: list[dict[str, Any]] | None = None) -> None:
        with self.lock:
            self.users.append(user)
            if methods is not None:
                self.auth_methods[user["user_id"]] = methods

    def remove_user(self, user_id: str) -> None:
        with self.lock:
            self.users[:] = [u for u in self.users if u["user_id"] != user_id]
            self.auth_methods.pop(user_id, None)

    def link_accounts(self, primary_id: str, secondary_id: str) -> dict[str, Any]:
        """Account linking as Auth0 does it; returns the identity added to the primary.

        The secondary user stops existing on its own (404); its identity moves into the
        primary's `identities` with its profile in `profileData` (an SMS identity carries
        `phone_number` and `phone_verified` there). The primary's own fields do not change.
        """
        with self.lock:
            primary, secondary = self._user(primary_id), self._user(secondary_id)
            if primary is None or secondary is None:
                raise KeyError("both users must exist to be linked")
            ident = dict(secondary["identities"][0])
            profile = {k: v for k, v in secondary.items() if k in _PROFILE_DATA}
            ident["profileData"] = profile
            primary["identities"].append(ident)
            primary["updated_at"] = iso()
            self.remove_user(secondary_id)
            return ident

    def unlink_account(self, primary_id: str, provider: str, user_id: str) -> dict[str, Any]:
        """Unlinking (`DELETE /api/v2/users/{id}/identities/{provider}/{user_id}`): a user again."""
        with self.lock:
            primary = self._user(primary_id)
            if primary is None:
                raise KeyError(primary_id)
            ident = next(
                i for i in primary["identities"][1:]
                if (i["provider"], i["user_id"]) == (provider, user_id)
            )  # fmt: skip
            primary["identities"].remove(ident)
            primary["updated_at"] = iso()
            data = ident.get("profileData", {})
            user = make_user(f"{provider}|{user_id}", connection=ident["connection"], **data)
            self.add_user(user)
            return user

    def remove_authenticator(self, user_id: str, authenticator_id: str) -> None:
        """An admin deletes an MFA enrollment (`DELETE /api/v2/guardian/enrollments/{id}`)."""
        dev = authenticator_id.rpartition("|")[2]
        with self.lock:
            self.auth_methods[user_id] = [
                m for m in self.auth_methods.get(user_id, []) if m["id"].rpartition("|")[2] != dev
            ]

    def add_log(self, type: str, user_id: str | None = None, **details: Any) -> dict[str, Any]:
        event = make_log(type, user_id, **details)
        with self.lock:
            self.logs.append(event)
        return event

    # ----------------------------------------------------------------- recorded requests

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._records)

    def clear_requests(self) -> None:
        with self.lock:
            self._records.clear()

    def requests_for(
        self, path_prefix: str = "", method: str | None = None, status: int | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests whose (decoded) path starts with `path_prefix`."""
        return [
            r
            for r in self.requests
            if r.path.startswith(path_prefix)
            and (method is None or r.method == method)
            and (status is None or r.status == status)
        ]

    def count(self, path_prefix: str = "/api/v2/", status: int | None = None) -> int:
        return len(self.requests_for(path_prefix, status=status))

    def max_in_window(
        self, window: float = 1.0, path_prefix: str = "/api/v2/", status: int | None = None
    ) -> int:
        """The most matching requests that arrived within any `window` seconds."""
        times = sorted(r.t for r in self.requests_for(path_prefix, status=status))
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def sustained_rate(self, path_prefix: str = "/api/v2/", status: int | None = None) -> float:
        """Matching requests per second between the first and the last of them."""
        times = sorted(r.t for r in self.requests_for(path_prefix, status=status))
        if len(times) < 2 or times[-1] == times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    # ----------------------------------------------------------------- request handling

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> _Reply:
        """Answer one HTTP request (called from the server threads)."""
        t, wall = time.monotonic(), time.time()
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        req = _Request(
            method=method,
            path=unquote(path),
            segments=[unquote(s) for s in path.strip("/").split("/")],
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            raw_body=raw,
        )
        delay = self._take_delay(req.path)
        if delay > 0:
            self._closing.wait(delay)
        try:
            reply = self._answer(req)
        except Exception:  # a bug in the fake must show up in the test, not hang it
            with self.lock:
                self.errors.append(traceback.format_exc())
            reply = _error(500, "fake_auth0 crashed; see fake.errors")
        if self.on_answer is not None:
            self.on_answer(req.method, req.path)
        self._record(req, reply, t, wall)
        return reply

    def _record(self, req: _Request, reply: _Reply, t: float, wall: float) -> None:
        body = req.body
        if isinstance(body, dict) and "client_secret" in body:
            body = {**body, "client_secret": "***"}
        query = {k: v[0] for k, v in req.query.items()}
        record = RecordedRequest(
            t, wall, req.method, req.path, query, reply.status, req.headers, body
        )
        with self.lock:
            self._records.append(record)

    def _matches(self, rule_prefix: str | None, path: str) -> bool:
        if rule_prefix is None:
            return path.startswith("/api/v2/")
        return path.startswith(rule_prefix)

    def _take_rule(self, path: str, kind: Callable[[_Rule], bool]) -> _Rule | None:
        with self.lock:
            for rule in self._rules:
                if rule.remaining > 0 and kind(rule) and self._matches(rule.path_prefix, path):
                    rule.remaining -= 1
                    return rule
            return None

    def _take_delay(self, path: str) -> float:
        delay = self.slow if self._matches(self.slow_path_prefix, path) else 0.0
        rule = self._take_rule(path, lambda r: r.delay > 0)
        return delay + (rule.delay if rule else 0.0)

    def _injected(self, path: str, headers: dict[str, str]) -> _Reply | None:
        rule = self._take_rule(path, lambda r: r.status is not None)
        if rule is None or rule.status is None:
            return None
        reply = _json(429, TOO_MANY_REQUESTS_BODY) if rule.status == 429 else _error(rule.status)
        if rule.status == 429:
            headers = {**headers, "x-ratelimit-remaining": "0"}
        reply.headers.update(headers)
        return reply

    def _answer(self, req: _Request) -> _Reply:
        if not req.path.startswith("/api/v2/"):
            injected = self._injected(req.path, {})
            if injected:
                return injected
            if req.method == "POST" and req.path == "/oauth/token":
                return self._oauth_token(req)
            if req.method == "GET" and req.segments[0] == "downloads" and len(req.segments) == 2:
                return self._download(req, req.segments[1])
            return _error(404, "Not Found")
        token, denied = self._authenticate(req)
        if denied:
            return denied
        with self.lock:
            ok, limits = self._bucket.take()
        if not ok:
            if self.send_retry_after:
                limits["Retry-After"] = str(
                    max(int(limits["x-ratelimit-reset"]) - int(time.time()), 1)
                )
            return _json(429, TOO_MANY_REQUESTS_BODY, limits)
        reply = self._injected(req.path, limits) or self._api(req, token)
        reply.headers = {**limits, **reply.headers}
        return reply

    # ----------------------------------------------------------------- tokens

    def _mint(self, scopes: frozenset[str]) -> str:
        now = time.time()
        claims = {
            "iss": f"{self.base_url}/",
            "sub": f"{self.client_id}@clients",
            "aud": self.audience,
            "iat": int(now),
            "exp": int(now) + self.expires_in,
            "scope": " ".join(sorted(scopes)),
            "gty": "client-credentials",
        }

        def b64(obj: Any) -> str:
            return (
                base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode())
                .rstrip(b"=")
                .decode()
            )

        token = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.{random_id(43)}"
        lifetime = self.expires_in if self.token_lifetime is None else self.token_lifetime
        self._tokens[token] = _Token(time.monotonic() + lifetime, scopes, self._generation)
        self.tokens_issued += 1
        return token

    def _oauth_token(self, req: _Request) -> _Reply:
        ctype = req.headers.get("content-type", "")
        try:
            if "json" in ctype:
                body = json.loads(req.raw_body or b"{}")
            else:
                body = {k: v[0] for k, v in parse_qs(req.raw_body.decode()).items()}
        except (ValueError, UnicodeDecodeError):
            return _json(400, {"error": "invalid_request", "error_description": "Bad body"})
        req.body = body
        if body.get("grant_type") != "client_credentials":
            grant = body.get("grant_type")
            return _json(
                403,
                {
                    "error": "unsupported_grant_type",
                    "error_description": f"Unsupported grant: {grant}",
                },
            )
        if (
            body.get("client_id") != self.client_id
            or body.get("client_secret") != self.client_secret
        ):
            return _json(401, {"error": "access_denied", "error_description": "Unauthorized"})
        audience = body.get("audience")
        if audience not in self.accepted_audiences():
            message = f"Service not enabled within domain: {audience}"
            return _json(403, {"error": "access_denied", "error_description": message})
        with self.lock:
            token = self._mint(self.scopes)
        return _json(
            200,
            {
                "access_token": token,
                "scope": " ".join(sorted(self.scopes)),
                "expires_in": self.expires_in,
                "token_type": "Bearer",
            },
        )

    def _authenticate(self, req: _Request) -> tuple[_Token | None, _Reply | None]:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, _error(401, "Missing authentication")
        with self.lock:
            token = self._tokens.get(value.strip())
            if token is None or token.generation != self._generation:
                return None, _error(401, "Invalid token")
            if time.monotonic() >= token.expires_at:
                return None, _error(401, "Expired token received for JSON Web Token validation")
        return token, None

    # ----------------------------------------------------------------- Management API routes

    def _api(self, req: _Request, token: _Token | None) -> _Reply:
        seg, method = req.segments[2:], req.method
        route: tuple[Callable[[], _Reply], str] | None = None
        if method == "POST" and seg == ["jobs", "users-exports"]:
            route = (lambda: self._create_export(req), "read:users")
        elif method == "GET" and len(seg) == 2 and seg[0] == "jobs":
            route = (lambda: self._get_job(seg[1]), "read:users")
        elif method == "GET" and len(seg) == 3 and seg[::2] == ["users", "authentication-methods"]:
            route = (lambda: self._auth_methods(req, seg[1]), "read:authentication_methods")
        elif method == "GET" and len(seg) == 2 and seg[0] == "users":
            route = (lambda: self._get_user(seg[1]), "read:users")
        elif method == "GET" and seg == ["users"]:
            route = (lambda: self._search_users(req), "read:users")
        elif method == "GET" and seg == ["logs"]:
            route = (lambda: self._get_logs(req), "read:logs")
        elif method == "GET" and len(seg) == 2 and seg[0] == "logs":
            route = (lambda: self._get_log(seg[1]), "read:logs")
        if route is None:
            return _error(404, "Not Found")
        handler, scope = route
        if token is not None and scope not in token.scopes:
            return _error(
                403, f"Insufficient scope, expected any of: {scope}", "insufficient_scope"
            )
        return handler()

    def _user(self, user_id: str) -> dict[str, Any] | None:
        with self.lock:
            return next((u for u in self.users if u.get("user_id") == user_id), None)

    def _get_user(self, user_id: str) -> _Reply:
        user = self._user(user_id)
        return _json(200, user) if user else _json(404, USER_NOT_FOUND_BODY)

    def _search_users(self, req: _Request) -> _Reply:
        paging = _paging(req)
        if isinstance(paging, _Reply):
            return paging
        page, per_page = paging
        q = req.arg("q") or ""
        with self.lock:
            users = list(self.users)
        if q.strip():
            if _match_query({}, q) is None:
                return _bad_query(f'unsupported q for this fake: {q!r} (use field:"value")')
            users = [u for u in users if _match_query(u, q)]
        chunk = users[page * per_page : (page + 1) * per_page]
        if req.arg("include_totals") == "true":
            body = {"start": page * per_page, "limit": per_page, "length": len(chunk)}
            return _json(200, {**body, "total": len(users), "users": chunk})
        return _json(200, chunk)

    def _auth_methods(self, req: _Request, user_id: str) -> _Reply:
        per_page = _int_arg(req, "per_page", 50, 1, 100)
        page = _int_arg(req, "page", 0, 0, 10**6)
        if isinstance(per_page, _Reply):
            return per_page
        if isinstance(page, _Reply):
            return page
        if self._user(user_id) is None:
            return _json(404, USER_NOT_FOUND_BODY)
        with self.lock:
            items = json.loads(json.dumps(self.auth_methods.get(user_id, [])))
            masked = self.mask_mfa_numbers
        if masked:
            for item in items:
                if isinstance(item.get("phone_number"), str):
                    item["phone_number"] = mask_number(item["phone_number"])
        chunk = items[page * per_page : (page + 1) * per_page]
        if req.arg("include_totals") == "true":
            body = {"start": page * per_page, "limit": per_page, "total": len(items)}
            return _json(200, {**body, "authenticators": chunk})
        return _json(200, chunk)

    # ----------------------------------------------------------------- export jobs

    def _create_export(self, req: _Request) -> _Reply:
        try:
            body = json.loads(req.raw_body or b"{}")
        except ValueError:
            return _error(400, "Invalid request payload JSON format", "invalid_body")
        req.body = body
        problem = self._export_problem(body)
        if problem:
            return problem
        fields = body.get("fields") or [{"name": name} for name in DEFAULT_EXPORT_FIELDS]
        job = _Job(
            id=f"job_{random_id()}",
            format=body.get("format", "csv"),
            fields=fields,
            connection_id=body.get("connection_id"),
            limit=body.get("limit"),
            created_at=iso(),
        )
        with self.lock:
            self.jobs[job.id] = job
            return _json(201, job.view(self.connections))

    def _export_problem(self, body: Any) -> _Reply | None:
        def invalid(message: str) -> _Reply:
            return _error(400, f"Payload validation error: {message}", "invalid_body")

        if not isinstance(body, dict):
            return invalid("body must be an object")
        if body.get("format", "csv") not in ("json", "csv"):
            return invalid("format must be one of json, csv")
        fields = body.get("fields", [])
        if not isinstance(fields, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str) for f in fields
        ):
            return invalid("fields must be a list of {name, export_as?}")
        if body.get("format", "csv") == "csv" and len(fields) > 30:
            return invalid("at most 30 fields can be exported in CSV")
        limit = body.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return invalid("limit must be an integer >= 1")
        con = body.get("connection_id")
        if con is not None and not re.fullmatch(r"con_[A-Za-z0-9]{16}", str(con)):
            return invalid("'String does not match pattern ^con_[A-Za-z0-9]{16}$' on connection_id")
        if con is not None and con not in self.connections:
            return _error(404, "The connection does not exist", "inexistent_connection")
        return None

    def _get_job(self, job_id: str) -> _Reply:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return _error(404, "The job does not exist.", "inexistent_job")
            if job.status in ("pending", "processing"):
                job.polls += 1
            return _json(200, self._job_status(job))

    def _job_status(self, job: _Job) -> dict[str, Any]:
        needed = max(self.export_polls_to_complete, 1)
        view = job.view(self.connections)
        if job.status in ("pending", "processing") and job.polls >= needed:
            if self.export_outcome == "completed":
                job.status, job.content = "completed", self._export_file(job)
            elif self.export_outcome == "failed":
                job.status = "failed"
        if job.status == "completed":
            view.update(status="completed", percentage_done=100, time_left_seconds=0)
            view["location"] = self._sign_download(job)
        elif job.status == "failed":
            view.update(
                status="failed", summary={"failed": 1, "updated": 0, "inserted": 0, "total": 0}
            )
        else:
            done = min(int(100 * job.polls / needed), 99)
            if self.export_outcome == "never":
                done = min(100 - 100 // (job.polls + 1), 99)
            job.status = "pending" if job.polls == 1 and needed > 2 else "processing"
            view.update(status=job.status, percentage_done=done)
            view["time_left_seconds"] = max(needed - job.polls, 1) * 5
        return view

    def _sign_download(self, job: _Job) -> str:
        sig = random_id(32)
        expires = time.time() + self.download_url_ttl
        self._signed[sig] = (job.id, expires)
        query = urlencode({"sig": sig, "expires": math.ceil(expires)})
        return f"{self.base_url}/downloads/{job.id}.{job.format}.gz?{query}"

    def _export_file(self, job: _Job) -> bytes:
        users = list(self.users)
        if job.connection_id:
            name = self.connections.get(job.connection_id)
            users = [u for u in users if _resolve(u, "identities[0].connection")[1] == name]
        if job.limit is not None:
            users = users[: job.limit]
        keys = [(f.get("export_as") or f["name"], f["name"]) for f in job.fields]
        lines: list[str] = []
        if job.format == "csv":
            lines.append(",".join(key for key, _ in keys))
        for user in users:
            row = {key: _resolve(user, path) for key, path in keys}
            if job.format == "csv":
                lines.append(",".join(_csv_cell(v if found else None) for found, v in row.values()))
            else:
                lines.append(json.dumps({k: v for k, (found, v) in row.items() if found}))
        return gzip.compress("".join(line + "\n" for line in lines).encode())

    def _download(self, req: _Request, name: str) -> _Reply:
        if self.reject_auth_on_download and "authorization" in req.headers:
            message = (
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified"
            )
            return _s3_error(400, "InvalidArgument", message)
        with self.lock:
            signed = self._signed.get(req.arg("sig") or "")
            job = self.jobs.get(signed[0]) if signed else None
        if signed is None or job is None or name != f"{job.id}.{job.format}.gz":
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
        if time.time() >= signed[1]:
            return _s3_error(403, "AccessDenied", "Request has expired")
        content = job.content or b""
        if self.truncate_download:
            content = content[: len(content) // 2]
        return _Reply(200, content, {"Content-Type": "application/gzip"})

    # ----------------------------------------------------------------- logs

    def _visible_logs(self) -> list[dict[str, Any]]:
        with self.lock:
            logs, floor = list(self.logs), self.log_retention_floor
        if floor is not None:
            logs = [e for e in logs if _log_key(e["log_id"]) >= _log_key(floor)]
        return logs

    def _get_log(self, log_id: str) -> _Reply:
        event = next((e for e in self._visible_logs() if e["log_id"] == log_id), None)
        if event is None:
            return _error(404, "log not found", "inexistent_log")
        return _json(200, event)

    def _get_logs(self, req: _Request) -> _Reply:
        if "from" in req.query:
            return self._logs_checkpoint(req)
        return self._logs_search(req)

    def _logs_checkpoint(self, req: _Request) -> _Reply:
        take = _int_arg(req, "take", 50, 1, 100)
        if isinstance(take, _Reply):
            return take
        start = req.arg("from") or ""
        floor = self.log_retention_floor
        expired = floor is not None and _log_key(start) < _log_key(floor)
        if expired and self.expired_checkpoint == "error":
            return _json(400, CHECKPOINT_EXPIRED_BODY)
        newer = sorted(
            (e for e in self._visible_logs() if _log_key(e["log_id"]) > _log_key(start)),
            key=lambda e: _log_key(e["log_id"]),
        )[:take]
        next_from = newer[-1]["log_id"] if newer else start
        link = f"<{self.base_url}/api/v2/logs?{urlencode({'from': next_from, 'take': take})}>"
        return _json(200, newer, {"Link": f'{link}; rel="next"'})

    def _logs_search(self, req: _Request) -> _Reply:
        paging = _paging(req)
        if isinstance(paging, _Reply):
            return paging
        page, per_page = paging
        sort = req.arg("sort") or "date:-1"
        match = re.fullmatch(r"(\w+):(1|-1)", sort)
        if not match:
            return _bad_query(f"'String does not match pattern' on property sort ({sort!r})")
        logs = self._visible_logs()
        q = req.arg("q") or ""
        if q.strip():
            if _match_query({}, q) is None:
                return _bad_query(f'unsupported q for this fake: {q!r} (use field:"value")')
            logs = [e for e in logs if _match_query(e, q)]
        key = match.group(1)
        logs.sort(key=lambda e: (str(e.get(key, "")), _log_key(e["log_id"])))
        if match.group(2) == "-1":
            logs.reverse()
        chunk = logs[page * per_page : (page + 1) * per_page]
        if req.arg("include_totals") == "true":
            body = {"start": page * per_page, "limit": per_page, "length": len(chunk)}
            return _json(200, {**body, "total": len(logs), "logs": chunk})
        return _json(200, chunk)


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeAuth0) -> None:
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.open_connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return  # a client that gave up (timeout tests) is not a fake failure
        self.fake.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes; no 40 ms stalls
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        reply = self.server.fake.handle(self.command, self.path, dict(self.headers.items()), raw)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; tests read `fake.requests` instead."""


def iter_ndjson(gz: bytes) -> Iterator[dict[str, Any]]:
    """Decode a downloaded NDJSON export (helper for tests)."""
    for line in gzip.decompress(gz).decode().splitlines():
        if line.strip():
            yield json.loads(line)
