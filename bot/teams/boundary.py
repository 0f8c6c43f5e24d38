"""The one error boundary of the Teams bot: every error becomes words for the user.

Refusals and known errors get their own words; anything else a short incident id, logged with
its traceback. Nothing here repeats a full phone number, a token or a secret.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import SQLAlchemyError

from bot.answers import BadButton, HelpAsked, NotAnAdmin, NotAnAgent, OverLimit, Refused
from bot.teams import texts
from bot.teams.render import scrub
from jobs.auth0 import Auth0Error
from phoneindex.errors import ConfigError, DatabaseError, UnusableNumber, WhoisError
from phoneindex.settings import Settings

log = logging.getLogger(__name__)


def describe(exc: BaseException, settings: Settings) -> str:
    """The words for an error."""
    if isinstance(exc, Refused | HelpAsked | UnusableNumber):
        log.info("answered %s: %s", type(exc).__name__, scrub(str(exc)))
        return _refusal(exc, settings)
    if isinstance(exc, ConfigError):
        log.warning("not configured: %s", exc)
        return texts.not_configured(str(exc))
    if isinstance(exc, Auth0Error):
        log.warning("live check failed: %s", scrub(str(exc)))
        return texts.auth0_failed()
    if isinstance(exc, DatabaseError | SQLAlchemyError):
        log.warning("database error in a Teams request: %s", type(exc).__name__)
        return texts.DATABASE_BUSY
    incident = uuid.uuid4().hex[:8]
    if isinstance(exc, WhoisError):
        log.warning("Teams request failed, incident %s: %s", incident, scrub(str(exc)))
    else:
        log.error("Teams request failed, incident %s", incident, exc_info=exc)
    return texts.internal_error(incident)


def _refusal(exc: BaseException, settings: Settings) -> str:
    if isinstance(exc, HelpAsked):
        return texts.usage(settings.default_region)
    if isinstance(exc, UnusableNumber):
        return texts.usage(settings.default_region, exc.reason)
    if isinstance(exc, NotAnAgent):
        return texts.NOT_AN_AGENT
    if isinstance(exc, NotAnAdmin):
        return texts.NOT_AN_ADMIN
    if isinstance(exc, OverLimit):
        return texts.over_limit(exc.allowance)
    if isinstance(exc, BadButton):
        return texts.BAD_BUTTON
    words = getattr(exc, "words", None)
    return words if isinstance(words, str) else texts.BAD_BUTTON
