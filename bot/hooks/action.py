"""POST /hooks/auth0/action: signed events from the Auth0 Actions in `actions/`.

A request carries `X-Whois-Timestamp: <unix seconds>` and `X-Whois-Signature: v1=<hex
HMAC-SHA256(MFA_WHOIS_ACTION_SECRET, "<timestamp>.<raw body>")>`; several comma-separated
`v1=` values are accepted (one per secret while the Actions' secret is being rotated). The
timestamp must be within WINDOW_S of this server's clock either way, and the signature is
checked (constant time) over the raw body, read up to 1 MB (413 beyond), before the body is
parsed. With no secret configured every request is 401. A body that is not an event is 400
with the reason and nothing applied; a good one is applied (jobs/action_inbox.py) before the
200, once per event id; a busy or unreachable database is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.hooks.body import read_capped
from jobs.action_inbox import MAX_BODY_BYTES, ActionInbox
from jobs.actions import BadActionEvent
from jobs.runs import Busy
from phoneindex.settings import Settings
from phoneindex.store import Store

log = logging.getLogger(__name__)

ACTION = "/hooks/auth0/action"
WINDOW_S = 300
RETRY_AFTER_S = 10
MAX_SIGNATURES = 4  # v1= values looked at in one header (rotation needs two)
_STAMP = re.compile(r"[0-9]{1,12}")
# What callers are told, in one place.
NOT_CONFIGURED = "Action events are not configured here (MFA_WHOIS_ACTION_SECRET is not set)"
UNSIGNED = "missing X-Whois-Timestamp or X-Whois-Signature (v1=...)"
OUT_OF_WINDOW = (
    f"X-Whois-Timestamp is more than {WINDOW_S} s away from this server's clock "
    "(a replay, or a clock that is wrong)"
)
FORGED = "the signature does not match the body (wrong secret, or an altered body)"
TOO_LARGE = f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB"
BUSY = (
    "the index is busy with another writer (an import); the event was not applied. Nothing is "
    "lost in Auth0: the log sync and the next export bring the change in"
)
UNREACHABLE = "the database could not take the event now; it was not applied"


def register(app: FastAPI, settings: Settings, store: Store) -> None:
    """Mount the Action events hook; it answers 401 to everyone while no secret is set."""
    secret = settings.action_secret
    key = secret.get_secret_value().encode() if secret is not None else b""
    inbox = ActionInbox(store, default_region=settings.default_region)
    if not key:
        log.info("MFA_WHOIS_ACTION_SECRET is not set: %s answers 401", ACTION)

    @app.post(ACTION, include_in_schema=False)
    async def auth0_action(request: Request) -> JSONResponse:
        """One signed Action event: applied before the 200."""
        if not key:
            return _refused(NOT_CONFIGURED)
        stamp = request.headers.get("x-whois-timestamp", "").strip()
        signatures = _signatures(request.headers.get("x-whois-signature", ""))
        if not _STAMP.fullmatch(stamp) or not signatures:
            return _refused(UNSIGNED)
        if abs(inbox.clock().timestamp() - int(stamp)) > WINDOW_S:
            return _refused(OUT_OF_WINDOW)
        body = await read_capped(request, MAX_BODY_BYTES)
        if body is None:
            log.warning("action event refused: %s", TOO_LARGE)
            return JSONResponse({"error": TOO_LARGE}, status_code=413)
        if not _signed(key, stamp, body, signatures):
            return _refused(FORGED)
        try:
            received = await asyncio.to_thread(inbox.receive, body)
        except BadActionEvent as exc:
            log.warning("action event refused, nothing applied: %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=400)
        except Busy:
            return _retry_later(BUSY)
        except SQLAlchemyError as exc:
            log.warning(
                "action event not applied: the database did not take it (%s)", type(exc).__name__
            )
            return _retry_later(UNREACHABLE)
        return JSONResponse(received.answer())


def _signatures(header: str) -> list[str]:
    """The hex digests of the header's `v1=` values (at most MAX_SIGNATURES)."""
    values = (part.strip() for part in header.split(",")[:MAX_SIGNATURES])
    return [value[3:].strip().lower() for value in values if value[:3].lower() == "v1="]


def _signed(key: bytes, stamp: str, body: bytes, signatures: list[str]) -> bool:
    """One of `signatures` is the HMAC of "<stamp>.<body>" (each compared in constant time)."""
    expected = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    matched = False
    for given in signatures:
        matched |= hmac.compare_digest(given.encode(), expected)
    return matched


def _refused(reason: str) -> JSONResponse:
    log.info("action event refused: %s", reason)
    return JSONResponse(
        {"error": reason}, status_code=401, headers={"WWW-Authenticate": 'HMAC realm="mfa-whois"'}
    )


def _retry_later(reason: str) -> JSONResponse:
    return JSONResponse(
        {"error": reason}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )
