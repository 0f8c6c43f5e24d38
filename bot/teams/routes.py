"""POST /api/messages: Bot Framework activities from Teams, on our FastAPI app.

Only this route checks Bot Framework tokens (no app-wide middleware: Slack, the API and the
hooks have their own checks). A request without a valid token gets 401 before any work.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from bot.teams import activities
from bot.teams.auth import Unauthorized
from bot.teams.context import TeamsContext

log = logging.getLogger(__name__)

MESSAGES = "/api/messages"
MAX_BODY = 256 * 1024  # Teams messages are at most ~100 KB


def register(app: FastAPI, ctx: TeamsContext) -> None:
    """Add POST /api/messages to `app`."""

    @app.post(MESSAGES, include_in_schema=False)
    async def messages(request: Request) -> Response:
        """Activities from Teams (messages, card buttons); 401 for a bad or missing token."""
        authorization = request.headers.get("authorization")
        if not authorization:
            return _refused("no bearer token")
        try:
            activity = await _activity(request)
        except _TooLarge:
            return JSONResponse({"error": "the activity is too large"}, status_code=413)
        try:  # the token first: an unauthenticated caller learns nothing about its body
            found = activity or {}
            await ctx.auth.validate(authorization, found.get("serviceUrl"), found.get("channelId"))
        except Unauthorized as exc:
            return _refused(str(exc))
        if activity is None:
            return JSONResponse({"error": "not a Bot Framework activity"}, status_code=400)
        try:
            outcome = await activities.handle(ctx, activity)
        except activities.BadActivity:
            return JSONResponse({"error": "not a Bot Framework activity"}, status_code=400)
        if outcome.later is not None:
            ctx.track(asyncio.get_running_loop().create_task(_logged(outcome.later)))
        if outcome.body is None:
            return Response(status_code=outcome.status)
        return JSONResponse(outcome.body, status_code=outcome.status)


async def _activity(request: Request) -> dict[str, Any] | None:
    """The JSON activity, at most MAX_BODY bytes (else _TooLarge); None when it is not one."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _TooLarge()
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


class _TooLarge(Exception):
    """A body over MAX_BODY (413)."""


def _refused(reason: str) -> Response:
    log.info("refused a request to %s: %s", MESSAGES, reason)
    return JSONResponse({"error": "unauthorized"}, status_code=401)


async def _logged(work: activities.Later) -> None:
    try:
        await work()
    except Exception:
        log.exception("a Teams reply failed")
