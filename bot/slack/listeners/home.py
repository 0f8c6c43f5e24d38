"""App Home: index size, numbers by kind, freshness, last runs, next full sync."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import ids, overview, render
from bot.slack.context import SlackContext


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Add the App Home listener to `app`."""

    async def ack_event(ack: AsyncAck) -> None:
        await ack()

    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        """Publish a fresh Home tab each time someone opens it (counts only, no account data)."""
        if event.get("tab", "home") != "home":
            return
        doc = await asyncio.to_thread(overview.overview, ctx)
        await client.views_publish(user_id=event["user"], view=render.home(doc))

    # Counting a large index takes seconds: Slack gets its 200 first (lazy listener).
    app.event(ids.HOME_OPENED)(ack=ack_event, lazy=[home_opened])
