"""Slash commands: /whois (agents) and /reindex (admins)."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.slack import ids, reindex, render, texts
from bot.slack.boundary import guarded
from bot.slack.context import SlackContext


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Add the slash command listeners to `app`."""

    async def whois(ack: AsyncAck, command: dict[str, Any]) -> None:
        """Answer in the acknowledgement itself: the index lookup takes milliseconds."""
        asker, text = ctx.asker(command["user_id"]), command.get("text") or ""
        answer = await ctx.answers.reading_index(lambda: ctx.answers.whois(asker, text))
        await ack(**render.whois(answer))

    async def reindex_ack(ack: AsyncAck, command: dict[str, Any]) -> None:
        """Refusal, usage or status in the acknowledgement; queueing follows lazily."""
        ctx.answers.require_admin(ctx.asker(command["user_id"]))
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
        asker = ctx.asker(user_id)
        request = reindex.parse(command.get("text") or "")
        if request == "usage" or not ctx.roles.is_admin(user_id):
            return  # the acknowledgement already answered (usage or refusal)
        if request == "status":
            doc = await asyncio.to_thread(ctx.answers.run_status, asker)
            await respond(**render.status(doc))
            return
        queued = await asyncio.to_thread(ctx.answers.queue_full_sync, asker)
        ctx.reporter.watch(int(queued.run["id"]), user_id)
        await respond(**render.reindex(queued))

    app.command(ids.WHOIS)(whois)
    app.command(ids.REINDEX)(ack=reindex_ack, lazy=[guarded(ctx.settings, reindex_later)])
