"""The HTTP service (FastAPI): Slack at POST /slack/events, Auth0 webhooks under /hooks/auth0/
(bot/hooks/), the lookup API at /api/v1/lookup (bot/api.py, documented at /openapi.json and
/docs), health at GET /healthz.

Build it with `create_app(settings)`; tests pass the open index and a SlackContext of their
own. The Slack app is an AsyncApp behind Bolt's async Starlette handler, so a slow listener
never blocks the event loop; its request verification (signing secret, 5-minute window) is
always on, and a request that fails it gets 401.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
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

from bot import api, hooks, metrics
from bot.answers import Answers
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
    answers: Answers | None = None,
) -> FastAPI:
    """The FastAPI app; pieces not given are built from `settings` (the database opens lazily).

    One Answers (hourly limits, audit trail, alerts) serves Slack, Teams and the lookup API:
    `answers` if given, else the Slack context's, else one built here when Teams or the API is
    configured. The app owns the Slack and Teams contexts and any `answers` not Slack's: they
    are closed when the app shuts down. Teams (POST /api/messages) is on when TEAMS_APP_ID,
    TEAMS_APP_PASSWORD and TEAMS_TENANT_ID are set; the API answers 401 without
    MFA_WHOIS_API_KEYS.
    """
    if store is None:
        engine = make_engine(settings.database_url)
        store = Store(engine, stale_after=timedelta(hours=settings.stale_after_hours))
    if slack is None and slack_app is None and slack_configured(settings):
        slack = SlackContext.build(
            settings, store, alerts=Alerts(store, notifier(settings), clock=store.clock)
        )
    if slack_app is None and slack is not None:
        slack_app = build_app(slack)
    if answers is None and slack is not None:
        answers = slack.answers
    if answers is None and teams is not None:
        answers = teams.answers
    if answers is None and (teams_configured(settings) or settings.api_key_entries):
        alerts = Alerts(store, notifier(settings), clock=store.clock)
        answers = Answers.build(settings, store, alerts)
    if teams is None and teams_configured(settings):
        teams = TeamsContext.build(settings, store, answers=answers)
    owned = None if slack is not None and answers is slack.answers else answers
    if teams is not None and teams.owns_answers and answers is teams.answers:
        owned = None  # the Teams context closes its own

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if teams is not None:
            await teams.aclose()
        if slack is not None:
            await slack.aclose()
        if owned is not None:
            await asyncio.to_thread(owned.close)

    app = FastAPI(
        title="mfa-whois",
        summary="Which Auth0 account(s) does this phone number belong to?",
        version=_version(),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.store = store
    app.state.slack = slack
    app.state.teams = teams
    _health(app, store)
    hooks.register(app, settings, store)
    metrics.register(app, store)
    api.register(app, settings, answers)
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


def _version() -> str:
    try:
        return importlib.metadata.version("mfa-whois")
    except importlib.metadata.PackageNotFoundError:
        return "0"


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
