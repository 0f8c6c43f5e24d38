"""The index at a glance (App Home, `/reindex status`): size, freshness, runs, next full sync."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobs.schedule import cron_trigger
from phoneindex.errors import ConfigError
from phoneindex.settings import Settings
from phoneindex.store import iso

if TYPE_CHECKING:
    from bot.slack.context import SlackContext


def overview(ctx: SlackContext) -> dict[str, Any]:
    """The status document plus freshness and when the next full sync is due."""
    doc = ctx.runs.status_document()
    doc["freshness"] = ctx.store.freshness()
    doc["next_full_sync"] = next_full_sync(ctx.settings, ctx.clock())
    doc["log_poll_seconds"] = ctx.settings.log_poll_seconds
    return doc


def next_full_sync(settings: Settings, now: datetime) -> str | None:
    """When MFA_WHOIS_FULL_SYNC_CRON fires next (None if it is malformed)."""
    try:
        trigger = cron_trigger(settings.full_sync_cron)
    except ConfigError:
        return None
    return iso(trigger.get_next_fire_time(None, now))
