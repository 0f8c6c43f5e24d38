"""What every Slack listener gets: the shared answers, who is who on Slack, the run reporter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot.answers import OVERVIEW_SECONDS, Answers, Asker, Roles
from bot.slack.notifier import SlackNotifier, sync_client
from bot.slack.reindex import RunReporter
from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client
from jobs.runs import Runs
from phoneindex.settings import Settings
from phoneindex.store import Store

SURFACE = "slack"


def slack_roles(settings: Settings) -> Roles:
    """Agents and admins as SLACK_AGENT_USERS and SLACK_ADMIN_USERS name them."""
    return Roles(
        surface=SURFACE,
        agents=frozenset(settings.agent_users),
        admins=frozenset(settings.admin_users),
        agents_variable="SLACK_AGENT_USERS",
        admins_variable="SLACK_ADMIN_USERS",
    )


@dataclass
class SlackContext:
    """The pieces the Slack surfaces share; built once per process."""

    settings: Settings
    answers: Answers
    roles: Roles
    reporter: RunReporter

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        *,
        runs: Runs | None = None,
        alerts: Alerts | None = None,
        auth0: Callable[[], Auth0Client] | None = None,
        scheduler_embedded: bool = False,
        poll_seconds: float = 5.0,
        max_watch: timedelta = timedelta(hours=26),
        spool_dir: Path | None = None,
        overview_seconds: float = OVERVIEW_SECONDS,
    ) -> SlackContext:
        """Wire the Slack pieces around an open index (see RunReporter for `scheduler_embedded`)."""
        alerts = alerts or Alerts(store, SlackNotifier.from_settings(settings), clock=store.clock)
        answers = Answers.build(
            settings,
            store,
            alerts,
            runs=runs,
            auth0=auth0,
            spool_dir=spool_dir,
            overview_seconds=overview_seconds,
        )
        reporter = RunReporter(
            answers.runs,
            store,
            sync_client(settings),
            polling=not scheduler_embedded,
            poll_seconds=poll_seconds,
            max_watch=max_watch,
        )
        return cls(settings, answers, slack_roles(settings), reporter)

    def asker(self, user_id: str) -> Asker:
        """A Slack user as the shared answers know them."""
        return Asker(self.roles, user_id, self.settings.agent_lookups_per_hour)

    async def aclose(self) -> None:
        """Stop watching runs; finish the alerts and audit writes; close the Auth0 client."""
        await self.reporter.aclose()
        await asyncio.to_thread(self.answers.close)
