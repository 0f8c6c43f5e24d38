"""Where supervisors' alerts go: every configured chat channel, else the log."""

from __future__ import annotations

from bot.slack.notifier import SlackNotifier
from bot.teams.notifier import WorkflowsNotifier
from jobs.alerts import FanOut, LoggingNotifier, Notifier
from phoneindex.settings import Settings


def notifier(settings: Settings) -> Notifier:
    """SLACK_ALERT_CHANNEL and/or TEAMS_ALERT_WEBHOOK_URL when set (one fan-out), else the log."""
    channels: list[Notifier] = [
        n
        for n in (SlackNotifier.from_settings(settings), WorkflowsNotifier.from_settings(settings))
        if n is not None
    ]
    if not channels:
        return LoggingNotifier()
    return channels[0] if len(channels) == 1 else FanOut(channels)
