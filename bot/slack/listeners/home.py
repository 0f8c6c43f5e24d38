"""App Home: index size, numbers by kind, freshness, last runs, next full sync (agents, admins)."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers import NotAnAgent
from bot.slack import ids, render
from bot.slack.context import SlackContext


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Add the App Home listener to `app`."""

    async def ack_event(ack: AsyncAck) -> None:
        await ack()

    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        """Publish the Home tab each time someone opens it: the overview, or "not for you"."""
        if event.get("tab", "home") != "home":
            return
        try:
            doc = await asyncio.to_thread(ctx.answers.overview, ctx.asker(event["user"]))
        except NotAnAgent:
            view = render.home_refused()
        else:
            view = render.home(doc)
        await client.views_publish(user_id=event["user"], view=view)

    # Counting a large index takes seconds: Slack gets its 200 first (lazy listener).
    app.event(ids.HOME_OPENED)(ack=ack_event, lazy=[home_opened])
