"""POST /hooks/auth0/logs: an Auth0 custom-webhook log stream delivers batches of log events.

The `Authorization` header must equal MFA_WHOIS_LOGSTREAM_TOKEN (with or without `Bearer `,
compared in constant time) before the body is read; with no token configured every request is
401. The body is read up to 5 MB (413 beyond, without reading the rest), then parsed, mapped and
applied by jobs/logstream.py off the event loop; the 200 comes after the batch is in the index.
A body that is not a batch is 400 with the reason and nothing applied; a database busy with a
long import, or unreachable, is 503 with Retry-After (Auth0 delivers the batch again).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.hooks.body import read_capped
from jobs.logstream import MAX_BODY_BYTES, BadDelivery, apply_delivery, parse_delivery
from jobs.runs import Busy
from phoneindex.settings import Settings
from phoneindex.store import Store

log = logging.getLogger(__name__)

LOGS = "/hooks/auth0/logs"
RETRY_AFTER_S = 10
# What callers are told, in one place.
UNAUTHORIZED = "missing or wrong Authorization token"
NOT_CONFIGURED = "the log stream is not configured here (MFA_WHOIS_LOGSTREAM_TOKEN is not set)"
TOO_LARGE = f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB"
BUSY = "the index is busy with another writer (an import); deliver again later"
UNREACHABLE = "the database could not take the batch now; deliver again later"


def register(app: FastAPI, settings: Settings, store: Store) -> None:
    """Mount the log-stream webhook; it answers 401 to everyone while no token is set."""
    token = settings.logstream_token
    expected = _bare(token.get_secret_value()) if token is not None else ""
    region = settings.default_region
    if not expected:
        log.info("MFA_WHOIS_LOGSTREAM_TOKEN is not set: %s answers 401", LOGS)

    @app.post(LOGS, include_in_schema=False)
    async def auth0_logs(request: Request) -> JSONResponse:
        """A batch of Auth0 log events: applied before the 200."""
        if not expected:
            return _unauthorized(NOT_CONFIGURED)
        if not _authorized(request.headers.get("authorization"), expected):
            log.info("log stream delivery refused: missing or wrong Authorization token")
            return _unauthorized(UNAUTHORIZED)
        body = await read_capped(request, MAX_BODY_BYTES)
        if body is None:
            log.warning("log stream delivery refused: %s", TOO_LARGE)
            return JSONResponse({"error": TOO_LARGE}, status_code=413)
        try:
            answer = await asyncio.to_thread(_receive, store, body, region)
        except BadDelivery as exc:
            log.warning("log stream delivery refused, nothing applied: %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Busy:
            return _retry_later(BUSY)
        except SQLAlchemyError as exc:
            log.warning(
                "log stream delivery not applied: the database did not take it (%s)",
                type(exc).__name__,
            )
            return _retry_later(UNREACHABLE)
        return JSONResponse(answer)


def _receive(store: Store, body: bytes, region: str) -> dict[str, Any]:
    """Parse, map and apply one delivery; the counts to answer with."""
    delivery = apply_delivery(store, parse_delivery(body), default_region=region)
    counts = delivery.mapped.counts()
    return {key: counts[key] for key in ("events", "changes", "ignored", "bad")}


def _bare(value: str) -> str:
    """A token without its `Bearer ` scheme (either side may carry it)."""
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def _authorized(header: str | None, expected: str) -> bool:
    """The header carries the configured token (constant-time comparison)."""
    given = _bare(header or "")
    return hmac.compare_digest(given.encode(), expected.encode())


def _unauthorized(reason: str) -> JSONResponse:
    return JSONResponse(
        {"error": reason}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="mfa-whois"'}
    )


def _retry_later(reason: str) -> JSONResponse:
    return JSONResponse(
        {"error": reason}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )
