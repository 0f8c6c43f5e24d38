"""The one error boundary of the Slack app.

Every exception a listener raises reaches `describe`: refusals and known errors become a
friendly ephemeral message, anything else a short incident id, logged with its traceback.
Before the acknowledgement the message is the acknowledgement (`error_handler`, Bolt's
`app.error`); lazy listeners run after it, so `guarded` sends theirs through the response_url.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.answers import BadButton, HelpAsked, NotAnAdmin, NotAnAgent, OverLimit, Refused
from bot.slack import render, texts
from jobs.auth0 import Auth0Error
from phoneindex.errors import ConfigError, DatabaseError, UnusableNumber, WhoisError
from phoneindex.settings import Settings

log = logging.getLogger(__name__)

Lazy = Callable[..., Awaitable[None]]


def error_handler(settings: Settings) -> Callable[..., Awaitable[BoltResponse | None]]:
    """Bolt's `app.error` handler (Bolt injects its arguments by name)."""

    async def on_error(
        error: Exception, response: BoltResponse | None, respond: AsyncRespond | None
    ) -> BoltResponse | None:
        reply = render.message(describe(error, settings))
        if response is not None:  # not acknowledged yet: the message is the acknowledgement
            return BoltResponse(status=200, body=reply)
        await tell(respond, reply)
        return None

    return on_error


def guarded(settings: Settings, func: Lazy) -> Lazy:
    """A lazy listener whose errors go through the boundary (Bolt would only log them)."""

    @functools.wraps(func)  # Bolt reads the wrapped function's argument names
    async def lazy(**kwargs: Any) -> None:
        try:
            await func(**kwargs)
        except Exception as exc:
            await tell(kwargs.get("respond"), render.message(describe(exc, settings)))

    return lazy


async def tell(respond: AsyncRespond | None, reply: dict[str, Any]) -> None:
    """Send `reply` through the response_url, as a new ephemeral message; never raises."""
    if respond is None or not respond.response_url:
        return
    try:
        await respond(**reply, replace_original=False)
    except Exception:
        log.warning("could not tell the user about an error", exc_info=True)


def describe(exc: BaseException, settings: Settings) -> str:
    """The words for an error; unknown errors get an incident id, logged with the traceback."""
    if isinstance(exc, Refused | HelpAsked | UnusableNumber):
        log.info("answered %s: %s", type(exc).__name__, _safe(exc))
        return _refusal(exc, settings)
    if isinstance(exc, ConfigError):
        log.warning("not configured: %s", exc)
        return texts.not_configured(render.esc(str(exc)))
    if isinstance(exc, Auth0Error):
        log.warning("live check failed: %s", _safe(exc))
        return texts.auth0_failed(_safe(exc))
    if isinstance(exc, DatabaseError | SQLAlchemyError):
        log.warning("database error in a Slack request: %s", type(exc).__name__)
        return texts.DATABASE_BUSY
    if isinstance(exc, WhoisError):
        log.warning("Slack request failed: %s", _safe(exc))
        return texts.failed(_safe(exc))
    incident = uuid.uuid4().hex[:8]
    log.error("Slack request failed, incident %s", incident, exc_info=exc)
    return texts.internal_error(incident)


def _refusal(exc: BaseException, settings: Settings) -> str:
    if isinstance(exc, HelpAsked):
        return texts.usage(settings.default_region)
    if isinstance(exc, UnusableNumber):
        return texts.usage(settings.default_region, render.esc(exc.reason))
    if isinstance(exc, NotAnAgent):
        return texts.NOT_AN_AGENT
    if isinstance(exc, NotAnAdmin):
        return texts.NOT_AN_ADMIN
    if isinstance(exc, OverLimit):
        return texts.over_limit(exc.allowance)
    if isinstance(exc, BadButton):
        return texts.BAD_BUTTON
    return texts.failed(_safe(exc))


def _safe(exc: BaseException) -> str:
    """An error's own words, mrkdwn-escaped, with any full phone number masked."""
    return render.scrub(render.esc(str(exc)))
