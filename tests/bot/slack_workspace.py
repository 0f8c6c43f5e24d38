"""The Slack workspace every Slack test uses: the real app served over HTTP, a fake Slack
Web API around it, signed requests, and the shipped example in the index."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from bot.answers import OVERVIEW_SECONDS
from bot.slack.context import SlackContext
from bot.web import create_app
from jobs.auth0 import Auth0Client
from jobs.exports import import_export
from jobs.runs import Runs
from phoneindex.settings import Settings, load_settings
from phoneindex.store import Store
from tests.conftest import EXAMPLES, T0
from tests.fake_slack import SIGNING_SECRET, TEAM_ID, FakeSlack, SlackSender

SAMPLE = EXAMPLES / "users-export.ndjson"
SHARED = "+14155550100"
SHARED_IDS = (
    "sms|788230d36a6bf294d8e10891",
    "auth0|0850a4cffb73cbc53fd33e89",
    "auth0|73ec53c4ba1747d485ae2a0d",
)
AGENT = "U0AGENT001"
OTHER_AGENT = "U0AGENT002"
STRANGER = "U0OUTSIDER"
ADMIN = "U0ADMIN001"
ALERTS = "C0ALERTS01"


@dataclass
class Workspace:
    """A Slack workspace talking to the real app: fake Web API, signed requests, the index."""

    slack: FakeSlack
    send: SlackSender
    ctx: SlackContext
    http: httpx.Client

    def settle(self) -> None:
        """Wait for the writes made after answers (audit rows, alerts)."""
        self.ctx.answers.settle(timeout=10)

    def audit(self) -> list[dict[str, Any]]:
        self.settle()
        return self.ctx.answers.trail.audit.entries()


def workspace_settings(slack: FakeSlack, store: Store, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": store.engine.url.render_as_string(hide_password=False),
        "slack_bot_token": slack.token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "slack_alert_channel": ALERTS,
        "slack_agent_users": f"{AGENT},{OTHER_AGENT},{ADMIN}",
        "slack_admin_users": ADMIN,
        "auth0_domain": "acme.us.auth0.com",
        "MFA_WHOIS_SECRET_KEY": "test-audit-key",
    }
    return load_settings(**(values | overrides))


@contextmanager
def open_workspace(
    store: Store,
    *,
    auth0: Callable[[], Auth0Client] | None = None,
    scheduler_embedded: bool = False,
    team_id: str = TEAM_ID,
    enterprise_id: str | None = None,
    overview_seconds: float = OVERVIEW_SECONDS,
    **overrides: Any,
) -> Iterator[Workspace]:
    """The app under test, served in-process, with Slack faked around it.

    `team_id` and `enterprise_id` are what the bot token's auth.test answers: the app's own
    workspace (and Enterprise Grid organization).
    """
    with FakeSlack(team_id=team_id, enterprise_id=enterprise_id) as slack:
        settings = workspace_settings(slack, store, **overrides)
        ctx = SlackContext.build(
            settings,
            store,
            auth0=auth0,
            scheduler_embedded=scheduler_embedded,
            poll_seconds=0.05,
            overview_seconds=overview_seconds,
        )
        with serving(create_app(settings, store=store, slack=ctx)) as http:
            yield Workspace(slack, SlackSender(http.post, slack), ctx, http)


@contextmanager
def serving(app: Any) -> Iterator[httpx.Client]:
    """Serve an ASGI app with uvicorn on a free local port; a client for it."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def import_sample(store: Store) -> None:
    """The shipped example export, imported as a full sync (so the index is fresh)."""
    runs = Runs(store.engine, store, clock=store.clock)
    with runs.exclusive("full", "test") as run:
        run.counts = import_export(store, SAMPLE, default_region="US", observed_at=T0).counts()


def dashboard_id(user_id: str) -> str:
    return base64.b64encode(user_id.replace("|", "%7C").encode()).decode().rstrip("=")


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action_id -> value of every button in a message."""
    return {
        element["action_id"]: element["value"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }
