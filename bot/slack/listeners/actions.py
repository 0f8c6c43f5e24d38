"""Buttons on /whois answers: Verify live, Search live, and paging."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.slack import ids, lookups, render
from bot.slack.boundary import guarded
from bot.slack.context import SlackContext
from bot.slack.lookups import WhoisAnswer

Step = Callable[[SlackContext, str, str], WhoisAnswer]


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Add the button listeners to `app`: each acknowledges, then works lazily."""
    for action_id, step in (
        (ids.VERIFY_LIVE, lookups.verify_live),
        (ids.SEARCH_LIVE, lookups.search_live),
        (ids.PAGE_PREVIOUS, lookups.page),
        (ids.PAGE_NEXT, lookups.page),
    ):
        app.action(action_id)(ack=acknowledge, lazy=[guarded(ctx.settings, _replacing(ctx, step))])


async def acknowledge(ack: AsyncAck) -> None:
    """Tell Slack the click arrived (within its 3 seconds); the answer follows."""
    await ack()


def _replacing(ctx: SlackContext, step: Step) -> Callable[..., Awaitable[None]]:
    """A lazy listener: run `step` in a worker thread, then replace the answer with its result."""

    async def replace(body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        user_id = str(body["user"]["id"])
        answer = await asyncio.to_thread(step, ctx, user_id, str(action.get("value") or ""))
        await respond(**render.whois(answer), replace_original=True)

    replace.__name__ = replace.__qualname__ = f"replace_with_{step.__name__}"
    return replace
