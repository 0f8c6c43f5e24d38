"""The Teams tenant every Teams test uses: the real app served over HTTP, the local fake Bot
Framework around it (keys, token endpoint, connector, Workflows webhook), the shipped sample."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.teams.context import TeamsContext
from bot.teams.notifier import WorkflowsNotifier
from bot.web import create_app
from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client
from phoneindex.settings import Settings, load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import import_sample, serving
from tests.fake_teams import APP_ID, APP_PASSWORD, TENANT, FakeTeams

AGENT = "11111111-1111-4111-8111-111111111111"
ADMIN = "22222222-2222-4222-8222-222222222222"
STRANGER = "33333333-3333-4333-8333-333333333333"


@dataclass
class Tenant:
    """Teams talking to the real app."""

    fake: FakeTeams
    ctx: TeamsContext
    http: httpx.Client

    def post(self, activity: dict[str, Any], token: str | None = None) -> httpx.Response:
        """POST an activity to /api/messages with a valid token unless one is given."""
        auth = token if token is not None else self.fake.token(activity.get("serviceUrl"))
        headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        return self.http.post("/api/messages", json=activity, headers=headers)

    def audit(self) -> list[dict[str, Any]]:
        self.ctx.answers.settle(timeout=10)
        return self.ctx.answers.trail.audit.entries()


def teams_settings(fake: FakeTeams, store: Store, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": store.engine.url.render_as_string(hide_password=False),
        "teams_app_id": APP_ID,
        "teams_app_password": APP_PASSWORD,
        "teams_tenant_id": TENANT,
        "teams_agent_users": f"{AGENT},{ADMIN}",
        "teams_admin_users": ADMIN,
        "teams_openid_metadata_url": fake.metadata_url,
        "teams_login_url": fake.base_url,
        "teams_alert_webhook_url": fake.webhook_url,
        "auth0_domain": "acme.us.auth0.com",
        "MFA_WHOIS_SECRET_KEY": "test-audit-key",
    }
    return load_settings(**(values | overrides))


@pytest.fixture
def teams(store: Store) -> Iterator[Tenant]:
    import_sample(store)
    with open_tenant(store) as tenant:
        yield tenant


@contextmanager
def open_tenant(
    store: Store,
    *,
    auth0: Callable[[], Auth0Client] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    **overrides: Any,
) -> Iterator[Tenant]:
    """The app under test, served in-process, with the Bot Framework faked around it."""
    with FakeTeams() as fake:
        settings = teams_settings(fake, store, **overrides)
        notifier = WorkflowsNotifier.from_settings(settings)
        alerts = Alerts(store, notifier, clock=store.clock)
        ctx = TeamsContext.build(
            settings, store, alerts=alerts, auth0=auth0, poll_seconds=0.05, monotonic=monotonic
        )
        with serving(create_app(settings, store=store, teams=ctx)) as http:
            yield Tenant(fake, ctx, http)
