"""Buttons on /whois answers: Verify live, Search live, and paging (each one a lookup)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.answers import Answers, Asker, BadButton, WhoisAnswer
from bot.slack import ids, render
from bot.slack.boundary import guarded
from bot.slack.context import SlackContext

Step = Callable[[Answers, Asker, str], WhoisAnswer]


def register(app: AsyncApp, ctx: SlackContext) -> None:
    """Add the button listeners to `app`: each acknowledges, then works lazily."""
    for action_id, step in (
        (ids.VERIFY_LIVE, verify_live),
        (ids.SEARCH_LIVE, search_live),
        (ids.PAGE_PREVIOUS, page),
        (ids.PAGE_NEXT, page),
    ):
        app.action(action_id)(ack=acknowledge, lazy=[guarded(ctx.settings, _replacing(ctx, step))])


async def acknowledge(ack: AsyncAck) -> None:
    """Tell Slack the click arrived (within its 3 seconds); the answer follows."""
    await ack()


def verify_live(answers: Answers, asker: Asker, value: str) -> WhoisAnswer:
    """The Verify live button carries the number."""
    return answers.verify_live(asker, value)


def search_live(answers: Answers, asker: Asker, value: str) -> WhoisAnswer:
    """The Search live button carries the number."""
    return answers.search_live(asker, value)


def page(answers: Answers, asker: Asker, value: str) -> WhoisAnswer:
    """A page button carries `<number> <page>`."""
    phone, _, number = value.partition(" ")
    if not number.isdigit():
        raise BadButton()
    return answers.page(asker, phone, int(number))


def _replacing(ctx: SlackContext, step: Step) -> Callable[..., Awaitable[None]]:
    """A lazy listener: run `step` in a worker thread, then replace the answer with its result."""

    async def replace(body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        asker = ctx.asker(str(body["user"]["id"]))
        value = str(action.get("value") or "")
        answer = await ctx.answers.waiting_on_auth0(lambda: step(ctx.answers, asker, value))
        await respond(**render.whois(answer), replace_original=True)

    replace.__name__ = replace.__qualname__ = f"replace_with_{step.__name__}"
    return replace
