"""Supervisor alerts in SLACK_ALERT_CHANNEL: the Slack side of jobs.alerts.Notifier."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.slack.render import alert as alert_message
from jobs.alerts import Alert
from phoneindex.errors import WhoisError
from phoneindex.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10


class NotifierError(WhoisError):
    """Slack did not take an alert; the alert policy keeps the incident unsent and retries."""


def api_url(settings: Settings) -> str:
    """SLACK_API_URL with the trailing slash the SDK's URL joining needs."""
    return settings.slack_api_url.rstrip("/") + "/"


def sync_client(settings: Settings) -> WebClient | None:
    """A blocking Web API client for worker threads (alerts, run reports); None without a token."""
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        return None
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=api_url(settings),
        timeout=TIMEOUT_SECONDS,
    )
    # chat.postMessage allows about one message a second per channel: wait, then try again.
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return client


class SlackNotifier:
    """Posts each alert to the supervisors' channel; never a full phone number."""

    def __init__(self, client: WebClient, channel: str) -> None:
        self.client = client
        self.channel = channel

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackNotifier | None:
        """The notifier when SLACK_BOT_TOKEN and SLACK_ALERT_CHANNEL are set, else None."""
        client = sync_client(settings)
        if client is None or not settings.slack_alert_channel:
            return None
        return cls(client, settings.slack_alert_channel)

    def send(self, alert: Alert) -> None:
        """Post the alert; NotifierError if Slack did not take it (jobs.alerts logs that)."""
        message = alert_message(alert)
        try:
            self.client.chat_postMessage(channel=self.channel, **message)
        except SlackApiError as exc:
            reason = exc.response.get("error") if exc.response is not None else None
            raise NotifierError(f"Slack refused the alert: {reason or 'unknown error'}") from None
        except (SlackClientError, OSError) as exc:
            raise NotifierError(f"Slack is unreachable: {type(exc).__name__}") from None
        log.info("alert %s (%s) posted to Slack", alert.key, alert.severity)
