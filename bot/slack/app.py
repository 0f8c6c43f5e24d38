"""The Bolt app (AsyncApp): listeners registered by surface, errors through one boundary.

A listener answers in its acknowledgement when it can (the index lookup takes milliseconds);
slow work (live checks, queueing a full sync) runs in a Bolt lazy listener after the ack and
answers through `respond` (the response_url). Blocking work (database, Management API) runs in
worker threads, so the event loop never waits on it. See bot.slack.boundary for errors and
bot.slack.workspace for requests from other workspaces; the rules are bot.answers'.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import boundary
from bot.slack.context import SlackContext
from bot.slack.listeners import actions, commands, home
from bot.slack.notifier import TIMEOUT_SECONDS, api_url
from bot.slack.workspace import only_our_workspace
from phoneindex.settings import Settings

# Bolt and the SDK log request and response bodies (numbers, emails) at DEBUG: never that.
_QUIET_AT_LEAST = logging.INFO


def web_client(settings: Settings) -> AsyncWebClient:
    """The app's async Web API client, on SLACK_API_URL (proxies, the tests' fake Slack)."""
    settings.require("slack_bot_token")
    assert settings.slack_bot_token is not None
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=api_url(settings),
        timeout=TIMEOUT_SECONDS,
    )


def build_app(ctx: SlackContext, *, client: AsyncWebClient | None = None) -> AsyncApp:
    """The Slack app with every listener registered; request verification always on."""
    secret = ctx.settings.slack_signing_secret
    # Bolt gives each logger it makes the root logger's level, unless it is handed a logger:
    # then they copy that one's level (and filters), so a DEBUG root cannot bring bodies back.
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    for logger in (logging.getLogger("slack_bolt"), logging.getLogger("slack_sdk"), bolt_logger):
        logger.setLevel(max(logger.getEffectiveLevel(), _QUIET_AT_LEAST))
    bolt_logger.addFilter(_not_token_skipped)
    app = AsyncApp(
        logger=bolt_logger,
        client=client or web_client(ctx.settings),
        # Empty in Socket Mode (no HTTP requests to verify); HTTP requests then all fail (401).
        signing_secret=secret.get_secret_value() if secret else "",
        name="mfa-whois",
        # Answer as soon as the listener acks: without this Bolt polls for the ack every
        # 10 ms (half of a /whois answer's time). Slow work runs in lazy listeners.
        process_before_response=True,
    )
    app.error(boundary.error_handler(ctx.settings))
    app.middleware(only_our_workspace)  # before any listener: other workspaces see nothing
    commands.register(app, ctx)
    actions.register(app, ctx)
    home.register(app, ctx)
    return app


def _not_token_skipped(record: logging.LogRecord) -> bool:
    """Drop Bolt's warning that SLACK_BOT_TOKEN is unused: our client carries that token."""
    return not str(record.msg).startswith("As you gave `client` as well")
