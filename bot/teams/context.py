"""What the Teams bot gets: the shared answers, who is who in Teams, the token checks and the
connector; built once per process, from TEAMS_* settings only (never generic CLIENT_ID etc.)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.answers import Answers, Asker, Roles
from bot.teams.auth import BotFrameworkAuth
from bot.teams.connector import Connector
from bot.teams.notifier import WorkflowsNotifier
from bot.teams.reindex import RunReporter
from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client
from jobs.runs import Runs
from phoneindex.settings import Settings
from phoneindex.store import Store

SURFACE = "teams"
_CREDENTIALS = ("teams_app_id", "teams_app_password", "teams_tenant_id")


def teams_configured(settings: Settings) -> bool:
    """Whether the bot is on: all of TEAMS_APP_ID, TEAMS_APP_PASSWORD, TEAMS_TENANT_ID set.

    Some but not all of them is a mistake: ConfigError naming the first one missing.
    """
    values = [getattr(settings, name) for name in _CREDENTIALS]
    if all(value is None for value in values):
        return False
    settings.require(*_CREDENTIALS)
    return True


def teams_roles(settings: Settings) -> Roles:
    """Agents and admins as TEAMS_AGENT_USERS and TEAMS_ADMIN_USERS name them (object ids)."""
    return Roles(
        surface=SURFACE,
        agents=settings.teams_agents,
        admins=settings.teams_admins,
        agents_variable="TEAMS_AGENT_USERS",
        admins_variable="TEAMS_ADMIN_USERS",
    )


@dataclass
class TeamsContext:
    """The pieces the Teams bot shares."""

    settings: Settings
    answers: Answers
    roles: Roles
    auth: BotFrameworkAuth
    connector: Connector
    reporter: RunReporter
    owns_answers: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def app_id(self) -> str:
        assert self.settings.teams_app_id is not None
        return self.settings.teams_app_id

    @property
    def tenant_id(self) -> str:
        assert self.settings.teams_tenant_id is not None
        return self.settings.teams_tenant_id

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        answers: Answers | None = None,
        runs: Runs | None = None,
        alerts: Alerts | None = None,
        auth0: Callable[[], Auth0Client] | None = None,
        spool_dir: Path | None = None,
        http: Callable[[], httpx.AsyncClient] | None = None,
        poll_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> TeamsContext:
        """Wire the Teams pieces; `answers` shared with Slack when both run in one process."""
        if not teams_configured(settings):
            settings.require(*_CREDENTIALS)
        owns = answers is None
        if answers is None:
            alerts = alerts or Alerts(
                store, WorkflowsNotifier.from_settings(settings), clock=store.clock
            )
            answers = Answers.build(
                settings, store, alerts, runs=runs, auth0=auth0, spool_dir=spool_dir
            )
        assert settings.teams_app_id and settings.teams_tenant_id and settings.teams_app_password
        auth = BotFrameworkAuth(
            app_id=settings.teams_app_id,
            metadata_url=settings.teams_openid_metadata_url,
            issuer=settings.teams_token_issuer,
            http=http() if http else None,
            monotonic=monotonic,
        )
        connector = Connector(
            app_id=settings.teams_app_id,
            password=settings.teams_app_password.get_secret_value(),
            tenant_id=settings.teams_tenant_id,
            login_url=settings.teams_login_url,
            http=http() if http else None,
        )
        reporter = RunReporter(answers.runs, store, connector, poll_seconds=poll_seconds)
        return cls(settings, answers, teams_roles(settings), auth, connector, reporter, owns)

    def asker(self, object_id: str) -> Asker:
        """A Teams user (Entra object id) as the shared answers know them."""
        return Asker(self.roles, object_id, self.settings.agent_lookups_per_hour)

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a background task alive until it is done (and wait for it on close)."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def aclose(self) -> None:
        """Finish background replies; close the HTTP clients (and the answers if ours)."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=15)
        await self.reporter.aclose()
        await self.auth.aclose()
        await self.connector.aclose()
        if self.owns_answers:
            await asyncio.to_thread(self.answers.close)
