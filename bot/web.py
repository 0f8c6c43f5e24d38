"""The HTTP service (FastAPI): Slack at POST /slack/events, Auth0 webhooks under /hooks/auth0/
(bot/hooks/), health at GET /healthz.

Build it with `create_app(settings)`; tests pass the open index and a SlackContext of their
own. The Slack app is an AsyncApp behind Bolt's async Starlette handler, so a slow listener
never blocks the event loop; its request verification (signing secret, 5-minute window) is
always on, and a request that fails it gets 401.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from sqlalchemy.exc import SQLAlchemyError

from bot import hooks, metrics
from bot.notifiers import notifier
from bot.slack.app import build_app
from bot.slack.context import SlackContext
from bot.teams import routes as teams_routes
from bot.teams.context import TeamsContext, teams_configured
from jobs.alerts import Alerts
from jobs.runs import LAST_FULL_SYNC_SOURCE
from phoneindex.db import make_engine, ping
from phoneindex.errors import ConfigError, DatabaseError, UnusableNumber, WhoisError
from phoneindex.settings import Settings
from phoneindex.store import Store

log = logging.getLogger(__name__)

SLACK_EVENTS = "/slack/events"
HEALTHZ = "/healthz"


def slack_configured(settings: Settings) -> bool:
    """Whether the HTTP mode Slack credentials (bot token, signing secret) are set."""
    return all(
        secret is not None and secret.get_secret_value()
        for secret in (settings.slack_bot_token, settings.slack_signing_secret)
    )


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    slack: SlackContext | None = None,
    slack_app: AsyncApp | None = None,
    teams: TeamsContext | None = None,
) -> FastAPI:
    """The FastAPI app; pieces not given are built from `settings` (the database opens lazily).

    The app owns the Slack and Teams contexts: they are closed when the app shuts down. Teams
    (POST /api/messages) is on when TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID are set.
    """
    if store is None:
        engine = make_engine(settings.database_url)
        store = Store(engine, stale_after=timedelta(hours=settings.stale_after_hours))
    if slack is None and slack_app is None and slack_configured(settings):
        slack = SlackContext.build(settings, store)
    if slack_app is None and slack is not None:
        slack_app = build_app(slack)
    if teams is None and teams_configured(settings):
        shared = slack.answers if slack is not None else None
        alerts = None if shared else Alerts(store, notifier(settings), clock=store.clock)
        teams = TeamsContext.build(settings, store, answers=shared, alerts=alerts)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if teams is not None:
            await teams.aclose()
        if slack is not None:
            await slack.aclose()

    app = FastAPI(
        title="mfa-whois", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.store = store
    app.state.slack = slack
    app.state.teams = teams
    _health(app, store)
    hooks.register(app, settings, store)
    metrics.register(app, store)
    if slack_app is not None:
        _slack(app, slack_app)
    else:
        log.info(
            "Slack is not configured (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET): %s is off",
            SLACK_EVENTS,
        )
    if teams is not None:
        teams_routes.register(app, teams)
    _errors(app)
    return app


def _slack(app: FastAPI, bolt: AsyncApp) -> None:
    handler = AsyncSlackRequestHandler(bolt)

    @app.post(SLACK_EVENTS, include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        """Slash commands, buttons and events from Slack (Bolt verifies the signature)."""
        return await handler.handle(request)


def _health(app: FastAPI, store: Store) -> None:
    @app.get(HEALTHZ)
    async def healthz() -> JSONResponse:
        """200 with the index freshness; 503 when the database does not answer."""
        body = await asyncio.to_thread(_health_document, store)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)


def _health_document(store: Store) -> dict[str, Any]:
    if not ping(store.engine):
        return {"status": "unavailable", "error": "the database is unreachable"}
    try:
        # Where the last full sync came from: "auth0", or "file:<name>" for an imported
        # export (whose own time, not the import's, is `last_full_sync`).
        source = store.get_checkpoint(LAST_FULL_SYNC_SOURCE)
        return {"status": "ok"} | store.freshness() | {"last_full_sync_source": source}
    except SQLAlchemyError:
        return {"status": "unavailable", "error": "the database schema is not ready"}


def _errors(app: FastAPI) -> None:
    """One boundary for HTTP routes: known errors in their own words, others an incident id."""

    @app.exception_handler(WhoisError)
    async def known(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DatabaseError):
            return JSONResponse({"error": "the database is unreachable"}, status_code=503)
        status = (
            400 if isinstance(exc, UnusableNumber) else 503 if isinstance(exc, ConfigError) else 500
        )
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(Exception)
    async def unknown(_request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:8]
        log.error("HTTP request failed, incident %s", incident, exc_info=exc)
        return JSONResponse({"error": "internal error", "incident": incident}, status_code=500)
