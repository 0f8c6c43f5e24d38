"""The call-center lookup API: POST (recommended) and GET /api/v1/lookup with an API key.

`Authorization: Bearer <key>` is compared in constant time with every key of
MFA_WHOIS_API_KEYS before anything else is read; with no keys configured everyone gets 401.
The key's name is the asker of the shared rules (bot/answers.py): hourly limit (the key's own or
MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR), one supervisors' alert per over-limit incident, and an audit
row with the key name as actor, via `api` (`api-live` with a live check). Bodies are read up to
64 KB (413 beyond, without reading the rest); anything that is not a usable request is 400.
Index reads and live checks run off the event loop.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot import api_models as m
from bot.answers import Answers, Asker, OverLimit, Roles
from bot.hooks.body import read_capped
from phoneindex.errors import ConfigError, DatabaseError, UnusableNumber
from phoneindex.settings import ApiKey, Settings

log = logging.getLogger(__name__)

LOOKUP = "/api/v1/lookup"
SURFACE = "api"
VARIABLE = "MFA_WHOIS_API_KEYS"
MAX_BODY_BYTES = 64 * 1024
RETRY_AFTER_S = 5  # when the database cannot answer now
# What callers are told, in one place.
NOT_CONFIGURED = f"the lookup API is not configured here ({VARIABLE} is not set)"
MISSING_KEY = "missing Authorization: Bearer <key>"
WRONG_KEY = "unknown API key"
TOO_LARGE = f"the body is larger than {MAX_BODY_BYTES // 1024} KB"
UNAVAILABLE = "the index cannot answer now; try again shortly"

# The key as OpenAPI describes it. authenticate() checks it; a FastAPI security dependency
# would do nothing more on each request than cost a dependency resolution.
SCHEME = "apiKey"
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": f"A key from {VARIABLE}."}
API_ROLES = Roles(SURFACE, frozenset(), frozenset(), VARIABLE, VARIABLE)


class ApiKeys:
    """The configured keys; a given key is compared with every one of them."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = [(_digest(k.key), k) for k in keys]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def match(self, given: str) -> ApiKey | None:
        """The entry whose key is `given`; every key is compared (constant time, no early exit)."""
        digest = _digest(given)
        found = None
        for expected, key in self._keys:
            if hmac.compare_digest(digest, expected):
                found = key
        return found


def _digest(key: str) -> bytes:
    # Equal-length digests: the comparison time tells nothing about a key's length either.
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def register(app: FastAPI, settings: Settings, answers: Answers | None) -> None:
    """Mount the lookup API; `answers` is None when no key is configured (then all get 401)."""
    keys = ApiKeys(settings.api_key_entries)
    if answers is None or not keys:
        log.info("%s is not set: %s answers 401", VARIABLE, LOOKUP)
    default_limit = settings.agent_lookups_per_hour
    _document_the_key(app)

    def authenticate(request: Request) -> Asker | Response:
        """The asker for the request's key, or the 401 to send."""
        if answers is None or not keys:
            return _unauthorized(NOT_CONFIGURED)
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _unauthorized(MISSING_KEY)
        key = keys.match(given.strip())
        if key is None:
            log.info("API lookup refused: unknown API key")
            return _unauthorized(WRONG_KEY, invalid=True)
        limit = default_limit if key.lookups_per_hour is None else key.lookups_per_hour
        return Asker(API_ROLES, key.name, limit)

    async def answer(asker: Asker, wanted: m.LookupRequest, started: float) -> Response:
        assert answers is not None  # authenticate() refuses everyone without it
        until = started + wanted.timeout_ms / 1000 if wanted.live else None
        try:
            ask = functools.partial(answers.look_up, asker, wanted.phone, live_until=until)
            run = answers.waiting_on_auth0 if wanted.live else answers.reading_index
            found = await run(ask)
        except UnusableNumber as exc:
            return _problem(400, f"not a usable phone number: {exc.reason}")
        except OverLimit as exc:
            return _over_limit(exc)
        except (SQLAlchemyError, DatabaseError) as exc:
            log.warning("API lookup not answered: the database failed (%s)", type(exc).__name__)
            return _problem(503, UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_S)})
        except ConfigError as exc:  # live checks without the Auth0 settings
            return _problem(503, f"live checks are not available here: {exc}")
        return _json(200, found.doc)

    @app.post(
        LOOKUP,
        summary="Look a number up (recommended)",
        description=_POST_DOC,
        tags=["lookup"],
        response_model=None,
        responses=_RESPONSES,
        openapi_extra=_REQUEST_BODY | _SECURITY,
    )
    async def post_lookup(request: Request) -> Response:
        started = time.monotonic()
        asker = authenticate(request)
        if isinstance(asker, Response):
            return asker
        body = await read_capped(request, MAX_BODY_BYTES)
        if body is None:
            return _problem(413, TOO_LARGE)
        try:
            wanted = m.LookupRequest.model_validate_json(body)
        except ValidationError as exc:
            return _problem(400, _reason(exc))
        return await answer(asker, wanted, started)

    @app.get(
        LOOKUP,
        summary="Look a number up (query string)",
        description=_GET_DOC,
        tags=["lookup"],
        response_model=None,
        responses={k: v for k, v in _RESPONSES.items() if k != 413},
        openapi_extra=_QUERY | _SECURITY,
    )
    async def get_lookup(request: Request) -> Response:
        started = time.monotonic()
        asker = authenticate(request)
        if isinstance(asker, Response):
            return asker
        try:
            wanted = _from_query(request)
        except ValidationError as exc:
            return _problem(400, _reason(exc))
        except ValueError as exc:
            return _problem(400, str(exc))
        return await answer(asker, wanted, started)


def _document_the_key(app: FastAPI) -> None:
    """Add the bearer key to the OpenAPI document's security schemes (the routes refer to it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()  # built once; FastAPI keeps it as app.openapi_schema
        schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SCHEME] = dict(BEARER_SCHEME)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _from_query(request: Request) -> m.LookupRequest:
    """The request from `?phone=...&live=true&timeout_ms=...`; ValueError says what is wrong."""
    params = request.query_params
    values: dict[str, Any] = {}
    for name in ("phone", "live", "timeout_ms"):
        given = params.getlist(name)
        if len(given) > 1:
            raise ValueError(f"{name}: given more than once")
        if given:
            values[name] = given[0]
    if "phone" not in values:
        raise ValueError("phone: the query parameter is missing")
    if "live" in values:
        live = values["live"].lower()
        if live not in ("true", "false", "1", "0"):
            raise ValueError("live: should be true or false")
        values["live"] = live in ("true", "1")
    if "timeout_ms" in values:
        text = values["timeout_ms"]
        if not (text.isascii() and text.isdigit() and len(text) < 10):
            raise ValueError("timeout_ms: should be a whole number of milliseconds")
        values["timeout_ms"] = int(text)
    return m.LookupRequest.model_validate(values)


def _reason(exc: ValidationError) -> str:
    """One line from the first validation errors; never the input itself."""
    reasons = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "the body"
        reasons.append(f"{where}: {error['msg']}")
    return "; ".join(reasons)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _problem(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"error": error}, headers)


def _unauthorized(reason: str, *, invalid: bool = False) -> Response:
    challenge = 'Bearer realm="mfa-whois"' + (', error="invalid_token"' if invalid else "")
    return _problem(401, reason, {"WWW-Authenticate": challenge})


def _over_limit(exc: OverLimit) -> Response:
    retry = max(1, exc.allowance.retry_after_seconds)
    body = {
        "error": f"this key made {exc.allowance.used:,} lookups in the last hour; the limit is "
        f"{exc.allowance.limit:,}",
        "retry_after_seconds": retry,
    }
    return _json(429, body, {"Retry-After": str(retry)})


# ---------------------------------------------------------------------------- OpenAPI


def _header(description: str, *, integer: bool = False, required: bool = True) -> dict[str, Any]:
    schema = {"type": "integer" if integer else "string"}
    return {"description": description, "required": required, "schema": schema}


_POST_DOC = (
    "Every Auth0 account linked to the number, with how each is linked and how fresh the index "
    "is. A match is a routing hint, never proof of identity. POST keeps the number out of the "
    "URLs that proxies and load balancers log. Every lookup counts towards the key's hourly "
    "limit and is audited under the key's name."
)
_GET_DOC = (
    "The same lookup with the number in the query string. Prefer POST: URLs end up in proxy "
    "and load-balancer logs."
)
_SECURITY: dict[str, Any] = {"security": [{SCHEME: []}]}
_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": m.LookupRequest.model_json_schema(),
                "examples": {
                    "index": {"value": {"phone": "(415) 555-0100"}},
                    "live": {"value": {"phone": "+14155550100", "live": True, "timeout_ms": 1500}},
                },
            }
        },
    }
}
_QUERY: dict[str, Any] = {
    "parameters": [
        {"name": "phone", "in": "query", "required": True, "schema": {"type": "string"},
         "description": "The caller's number in any usual form.", "example": "+14155550100"},
        {"name": "live", "in": "query", "required": False,
         "schema": {"type": "boolean", "default": False},
         "description": "Also re-read the accounts from Auth0 within `timeout_ms`."},
        {"name": "timeout_ms", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": m.MIN_TIMEOUT_MS,
                    "maximum": m.MAX_TIMEOUT_MS, "default": m.DEFAULT_TIMEOUT_MS},
         "description": "Time budget of the live check in milliseconds."},
    ]
}  # fmt: skip
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": m.LookupDocument,
        "description": "The lookup document, also when no account is linked to the number.",
        "content": m.examples(found=m.FOUND, none_found=m.NONE_FOUND, live_timeout=m.TIMED_OUT),
    },
    400: {
        "model": m.Problem,
        "description": "Not a usable phone number (withheld caller ids included), or a "
        "malformed request.",
        "content": m.examples(
            withheld={"error": "not a usable phone number: withheld caller id"},
            malformed={"error": "timeout_ms: Input should be less than or equal to 8000"},
        ),
    },
    401: {
        "model": m.Problem,
        "description": "No key, an unknown key, or no keys configured. Carries "
        "`WWW-Authenticate: Bearer`.",
        "content": m.examples(unknown={"error": WRONG_KEY}),
        "headers": {"WWW-Authenticate": _header('`Bearer realm="mfa-whois"`')},
    },
    413: {
        "model": m.Problem,
        "description": "The body is larger than 64 KB.",
        "content": m.examples(too_large={"error": TOO_LARGE}),
    },
    429: {
        "model": m.OverLimit,
        "description": "The key is over its hourly lookup limit; `Retry-After` says when to "
        "try again. Supervisors are alerted once per incident.",
        "content": m.examples(
            over={
                "error": "this key made 5,000 lookups in the last hour; the limit is 5,000",
                "retry_after_seconds": 42,
            }
        ),
        "headers": {"Retry-After": _header("Seconds to wait.", integer=True)},
    },
    503: {
        "model": m.Problem,
        "description": "The database cannot answer now (with `Retry-After`), or a live check "
        "was asked where Auth0 is not configured.",
        "content": m.examples(unavailable={"error": UNAVAILABLE}),
        "headers": {
            "Retry-After": _header("Seconds to wait (database).", integer=True, required=False)
        },
    },
}
