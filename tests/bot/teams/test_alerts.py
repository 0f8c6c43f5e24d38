"""Supervisor alerts to a Teams Workflows webhook, alone or fanned out with Slack's channel."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bot.context import notifier
from bot.teams.notifier import WorkflowsNotifier
from jobs.alerts import Alerts, FanOut
from phoneindex.db import open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import ALERTS, workspace_settings
from tests.bot.teams.cards import MAX_WORKFLOW_POST, valid_card
from tests.fake_slack import FakeSlack, visible_text
from tests.fake_teams import FakeTeams, texts_of


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))


def test_a_workflows_alert_is_a_message_with_one_adaptive_card(store: Store) -> None:
    with FakeTeams() as teams:
        settings = load_settings(teams_alert_webhook_url=teams.webhook_url)
        alerts = Alerts(store, notifier(settings))
        assert alerts.open("test", "Odd number +14155550100", "Auth0 sent +14155550100 *bold*")
        assert not alerts.open("test", "Odd number +14155550100", "again")  # once per incident
        assert alerts.close("test", "Works again", "All good.")
        failure, recovery = teams.alerts(2)

    assert failure.method == "POST" and failure.path == "/workflow?sig=secret-signature"
    assert set(failure.body) == {"type", "attachments"} and failure.body["type"] == "message"
    [attachment] = failure.body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = valid_card(attachment["content"], MAX_WORKFLOW_POST)
    words = list(texts_of(card))
    assert words[0] == "🚨 Odd number +1 ••• ••• 0100"
    assert words[1] == "Auth0 sent +1 ••• ••• 0100 *bold*"  # a text run: shown as typed
    assert "incident test" in words[2]
    assert "4155550100" not in json.dumps(failure.body)
    assert list(texts_of(recovery.body["attachments"][0]["content"]))[0] == "✅ Works again"


def test_one_fan_out_to_slack_and_teams_and_one_channel_down_does_not_repeat_it(
    store: Store,
) -> None:
    with FakeSlack() as slack, FakeTeams() as teams:
        both = workspace_settings(slack, store, teams_alert_webhook_url=teams.webhook_url)
        fan_out = notifier(both)
        assert isinstance(fan_out, FanOut)
        alerts = Alerts(store, fan_out)
        assert alerts.open("sync.full", "Full sync failed", "Run 1 failed.")
        teams.webhook_status = 500  # Teams refuses the recovery; Slack takes it: delivered
        assert alerts.close("sync.full", "Full sync works again", "Run 2 succeeded.")
        assert not alerts.is_open("sync.full")
        slack_messages = slack.messages(ALERTS)
        teams_posts = teams.alerts(2)

    assert len(slack_messages) == 2 and len(teams_posts) == 2  # one each per message
    assert "Full sync failed" in visible_text(slack_messages[0])
    assert "Full sync works again" in visible_text(slack_messages[1])
    assert [list(texts_of(p.body["attachments"][0]["content"]))[0] for p in teams_posts[:2]] == [
        "🚨 Full sync failed",
        "✅ Full sync works again",
    ]


def test_the_alert_is_retried_when_no_channel_took_it(store: Store) -> None:
    with FakeTeams() as teams:
        alerts = Alerts(store, WorkflowsNotifier(teams.webhook_url))
        teams.webhook_status = 400
        assert alerts.open("sync.full", "Full sync failed", "Run 1 failed.") is False
        assert not alerts.is_open("sync.full")
        teams.webhook_status = 202
        assert alerts.open("sync.full", "Full sync failed", "Run 2 failed.") is True


def test_the_webhook_url_is_a_secret_never_shown() -> None:
    settings = load_settings(teams_alert_webhook_url="https://x.example/workflow?sig=s3cr3t")
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in repr(notifier(settings))
    assert notifier(load_settings()).__class__.__name__ == "LoggingNotifier"


def test_a_fan_out_that_no_channel_took_is_retried(store: Store) -> None:
    with FakeSlack() as slack, FakeTeams() as teams:
        both = workspace_settings(slack, store, teams_alert_webhook_url=teams.webhook_url)
        alerts = Alerts(store, notifier(both))
        slack.fail("chat.postMessage", "channel_not_found")
        teams.webhook_status = 500
        assert alerts.open("sync.full", "Full sync failed", "Run 1 failed.") is False
        assert not alerts.is_open("sync.full")
        teams.webhook_status = 202
        assert alerts.open("sync.full", "Full sync failed", "Run 2 failed.") is True
        delivered = teams.alerts(2)[1]
    assert "Run 2 failed." in list(texts_of(delivered.body["attachments"][0]["content"]))


def test_the_webhook_signature_stays_out_of_the_logs(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # -v and more: httpx logs every request's URL at INFO
    with FakeTeams() as teams:
        alerts = Alerts(store, notifier(load_settings(teams_alert_webhook_url=teams.webhook_url)))
        assert alerts.open("test", "Sync failed", "Auth0 answered 503")
        teams.alerts(1)
    assert "/workflow" in caplog.text  # the request was logged...
    assert "secret-signature" not in caplog.text  # ...without its signature
