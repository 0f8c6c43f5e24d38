"""Supervisor alerts in SLACK_ALERT_CHANNEL, through the Slack notifier behind jobs.alerts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.context import notifier
from bot.slack.notifier import SlackNotifier
from jobs.alerts import Alerts, LoggingNotifier
from jobs.auth0 import Auth0Client
from jobs.reindex import ExportFailed, full_sync
from jobs.runs import Runs
from phoneindex.db import open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import ALERTS, workspace_settings
from tests.bot.test_slack_reindex import tenant
from tests.fake_auth0 import FakeAuth0
from tests.fake_slack import FakeSlack, visible_text


def sync(store: Store, fake: FakeAuth0, alerts: Alerts) -> None:
    settings = load_settings(auth0_domain=fake.base_url)
    full_sync(
        store=store,
        runs=Runs(store.engine, store),
        client_factory=lambda: Auth0Client(
            fake.base_url, fake.client_id, fake.client_secret, audience=fake.audience, max_rps=50
        ),
        alerts=alerts,
        settings=settings,
        requested_by="slack:U0ADMIN001",
        poll_interval=0.01,
        sleep=lambda _seconds: None,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))


def test_a_failed_sync_alerts_the_channel_once_then_recovers(store: Store) -> None:
    with FakeSlack() as slack:
        alerts = Alerts(store, SlackNotifier.from_settings(workspace_settings(slack, store)))
        with tenant(export_outcome="failed") as broken:
            for _ in range(2):
                with pytest.raises(ExportFailed):
                    sync(store, broken, alerts)
        with tenant() as working:
            sync(store, working, alerts)
        messages = slack.messages(ALERTS)

    assert len(messages) == 2  # once per incident, then the recovery
    failure, recovery = (visible_text(m) for m in messages)
    assert failure.startswith(":rotating_light: *Full sync failed*")
    assert "requested by <@U0ADMIN001> failed: Auth0 export job" in failure
    assert "The index is unchanged." in failure and "incident `sync.full`" in failure
    assert recovery.startswith(":white_check_mark: *Full sync works again*")
    assert messages[0]["text"].startswith("Full sync failed: Run 1 requested by")


def test_alerts_never_show_a_full_phone_number(store: Store) -> None:
    with FakeSlack() as slack:
        alerts = Alerts(store, SlackNotifier.from_settings(workspace_settings(slack, store)))
        alerts.open("test", "Odd number +14155550100", "Auth0 sent +14155550100 <masked?> & more")
        [message] = slack.messages(ALERTS)
    shown = str(message)
    assert "4155550100" not in shown
    assert "+1 ••• ••• 0100" in visible_text(message)
    assert "&lt;masked?&gt; &amp; more" in visible_text(message)


def test_slack_down_never_fails_the_sync_and_the_alert_is_retried(store: Store) -> None:
    with FakeSlack() as slack:
        alerts = Alerts(store, SlackNotifier.from_settings(workspace_settings(slack, store)))
        slack.fail("chat.postMessage", "channel_not_found")
        assert alerts.open("sync.full", "Full sync failed", "Run 1 failed.") is False
        assert not alerts.is_open("sync.full")  # not sent, so not recorded: tried again
        assert alerts.open("sync.full", "Full sync failed", "Run 2 failed.") is True
        refused, delivered = slack.messages(ALERTS)  # the first one Slack refused
        assert "\nRun 2 failed.\n" in visible_text(delivered)


def test_alerts_go_to_slack_only_when_configured(store: Store) -> None:
    with FakeSlack() as slack:
        settings = workspace_settings(slack, store)
        assert isinstance(notifier(settings), SlackNotifier)
        assert isinstance(notifier(load_settings(slack_bot_token="xoxb-1")), LoggingNotifier)
        assert isinstance(notifier(load_settings(slack_alert_channel=ALERTS)), LoggingNotifier)
