"""Slash commands: /whois (agents) and /reindex (admins)."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.slack import ids, lookups, overview, reindex, render, texts
from bot.slack.boundary import guarded
from bot.slack.context import SlackContext


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Add the slash command listeners to `app`."""

    async def whois(ack: AsyncAck, command: dict[str, Any]) -> None:
        """Answer in the acknowledgement itself: the index lookup takes milliseconds."""
        user_id, text = command["user_id"], command.get("text") or ""
        answer = await asyncio.to_thread(lookups.whois, ctx, user_id, text)
        await ack(**render.whois(answer))

    async def reindex_ack(ack: AsyncAck, command: dict[str, Any]) -> None:
        """Refusal, usage or status in the acknowledgement; queueing follows lazily."""
        reindex.require_admin(ctx, command["user_id"])
        request = reindex.parse(command.get("text") or "")
        if request == "usage":
            await ack(**render.message(texts.REINDEX_USAGE))
        else:
            # Queueing writes to the database and counting a large index takes seconds:
            # both answers come through respond, after Slack's 3 seconds are safe.
            await ack()

    async def reindex_later(command: dict[str, Any], respond: AsyncRespond) -> None:
        """Status, or queue the full sync, answer, and report its end to the admin later."""
        user_id = command["user_id"]
        request = reindex.parse(command.get("text") or "")
        if request == "usage" or not reindex.is_admin(ctx, user_id):
            return  # the acknowledgement already answered (usage or refusal)
        if request == "status":
            doc = await asyncio.to_thread(overview.overview, ctx)
            await respond(**render.status(doc))
            return
        answer = await asyncio.to_thread(reindex.queue_full_sync, ctx, user_id)
        ctx.reporter.watch(int(answer.run["id"]), user_id)
        await respond(**render.reindex(answer))

    app.command(ids.WHOIS)(whois)
    app.command(ids.REINDEX)(ack=reindex_ack, lazy=[guarded(ctx.settings, reindex_later)])
