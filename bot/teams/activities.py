"""What the bot does with one (already authenticated) activity.

Messages are answered after the HTTP request: the reply is posted to the conversation through
the connector (an index lookup takes milliseconds; a reply never waits on the HTTP answer).
Card buttons arrive as `adaptiveCard/action` invokes and are answered with the updated card in
the invoke response; live checks (seconds, Auth0) answer "checking" at once and replace the
card when done. Account data is shown only in the personal chat, to agents of our tenant.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.answers import BadButton, HelpAsked, Refused, WhoisAnswer, button_phone
from bot.teams import render, texts
from bot.teams.boundary import describe
from bot.teams.context import TeamsContext

log = logging.getLogger(__name__)

INVOKE_CARD_ACTION = "adaptiveCard/action"
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"  # an invoke answer shown as a toast
WHOIS_WORDS = frozenset({"whois", "/whois", "lookup"})
REINDEX_WORDS = frozenset({"reindex", "/reindex"})
HELP = frozenset({"help", "/help", "?"})
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]{0,200}>")

Later = Callable[[], Awaitable[None]]


class NotOurs(Refused):
    """Another tenant, or no Entra identity: nothing is read for them."""

    def __init__(self, words: str) -> None:
        super().__init__(words)
        self.words = words


class BadActivity(ValueError):
    """An activity without the fields every activity has (answered 400)."""


@dataclass(frozen=True)
class Turn:
    """The parts of one inbound activity the bot uses."""

    activity: dict[str, Any]
    type: str
    id: str | None
    service_url: str
    conversation_id: str
    conversation_type: str  # personal, channel, groupChat
    tenant_id: str | None
    user_id: str | None  # from.aadObjectId, trusted because the token was valid

    @classmethod
    def parse(cls, activity: dict[str, Any]) -> Turn:
        """The turn; BadActivity when the activity lacks its type, serviceUrl or conversation."""
        conversation = activity.get("conversation")
        sender = activity.get("from")
        if not isinstance(conversation, dict) or not isinstance(sender, dict):
            raise BadActivity("no conversation or sender")
        if not activity.get("type") or not activity.get("serviceUrl") or not conversation.get("id"):
            raise BadActivity("no type, serviceUrl or conversation id")
        channel_data = activity.get("channelData")
        tenant = conversation.get("tenantId")
        if not tenant and isinstance(channel_data, dict):
            tenant = _object(channel_data.get("tenant")).get("id")
        return cls(
            activity=activity,
            type=str(activity["type"]),
            id=str(activity["id"]) if activity.get("id") else None,
            service_url=str(activity["serviceUrl"]),
            conversation_id=str(conversation["id"]),
            # No type: not known to be personal, so no account data.
            conversation_type=str(conversation.get("conversationType") or "unknown"),
            tenant_id=str(tenant) if tenant else None,
            user_id=str(sender["aadObjectId"]) if sender.get("aadObjectId") else None,
        )


def _object(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (a malformed activity's part)."""
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Outcome:
    """The HTTP answer (status, JSON body or none) and any work to do after it."""

    status: int = 200
    body: dict[str, Any] | None = None
    later: Later | None = None


def clean(text: str) -> str:
    """The typed words: @mentions removed, HTML tags and entities undone, spaces collapsed."""
    words = _TAG.sub(" ", _MENTION.sub(" ", text))
    return " ".join(html.unescape(words).replace("\xa0", " ").split())


async def handle(ctx: TeamsContext, activity: dict[str, Any]) -> Outcome:
    """The answer to one activity; other activity types are acknowledged and ignored."""
    turn = Turn.parse(activity)
    if turn.type == "message":
        return Outcome(later=lambda: _answer_message(ctx, turn))
    if turn.type == "invoke" and activity.get("name") == INVOKE_CARD_ACTION:
        return await _card_action(ctx, turn)
    if turn.type == "conversationUpdate" and _bot_added(ctx, turn):
        return Outcome(later=lambda: _welcome(ctx, turn))
    return Outcome()


def _bot_added(ctx: TeamsContext, turn: Turn) -> bool:
    """Whether this update says the bot itself was just added to a personal chat of our tenant."""
    added = turn.activity.get("membersAdded") or []
    bot_ids = {f"28:{ctx.app_id}", ctx.app_id}
    ours = turn.tenant_id == ctx.tenant_id and turn.conversation_type == "personal"
    return ours and any(isinstance(m, dict) and m.get("id") in bot_ids for m in added)


async def _welcome(ctx: TeamsContext, turn: Turn) -> None:
    """Greet a user who installed the bot with how to use it."""
    await send(ctx, turn, render.message(texts.welcome(ctx.settings.default_region)))


def _gate(ctx: TeamsContext, turn: Turn) -> str:
    """The asking user's object id, if they are a user of our tenant; NotOurs otherwise."""
    if turn.tenant_id != ctx.tenant_id:
        raise NotOurs(texts.OTHER_TENANT)
    if not turn.user_id:
        raise NotOurs(texts.NO_IDENTITY)
    return turn.user_id


# ---------------------------------------------------------------------------- messages


async def _answer_message(ctx: TeamsContext, turn: Turn) -> None:
    """Work out the reply (refusals included) and post it to the conversation."""
    try:
        reply = await _reply(ctx, turn)
    except Exception as exc:
        reply = render.message(describe(exc, ctx.settings))
    await send(ctx, turn, reply)


async def _reply(ctx: TeamsContext, turn: Turn) -> dict[str, Any]:
    user_id = _gate(ctx, turn)
    if turn.conversation_type != "personal":
        return render.message(texts.personal_only(chat_link(ctx.app_id)))
    asker = ctx.asker(user_id)
    command, _, rest = clean(str(turn.activity.get("text") or "")).partition(" ")
    word = command.lower()
    if word in REINDEX_WORDS:
        return await _reindex(ctx, turn, user_id, rest)
    if word in HELP:
        raise HelpAsked()
    text = rest if word in WHOIS_WORDS else f"{command} {rest}".strip()
    answer = await ctx.answers.reading_index(lambda: ctx.answers.whois(asker, text))
    return answer_message(answer)


async def _reindex(ctx: TeamsContext, turn: Turn, user_id: str, rest: str) -> dict[str, Any]:
    asker = ctx.asker(user_id)
    ctx.answers.require_admin(asker)
    request = rest.strip().lower()
    if request == "status":
        return render.status(await asyncio.to_thread(ctx.answers.run_status, asker))
    if request:
        return render.message(texts.REINDEX_USAGE)
    queued = await asyncio.to_thread(ctx.answers.queue_full_sync, asker)
    ctx.reporter.watch(int(queued.run["id"]), (turn.service_url, turn.conversation_id))
    return render.reindex(queued)


def answer_message(answer: WhoisAnswer) -> dict[str, Any]:
    """The answer card as a message activity."""
    return render.card_message(render.whois(answer), render.summary(answer))


def chat_link(app_id: str) -> str:
    """A deep link that opens the personal chat with the bot."""
    return f"https://teams.microsoft.com/l/chat/0/0?users=28:{app_id}"


async def send(ctx: TeamsContext, turn: Turn, activity: dict[str, Any]) -> None:
    """Post `activity` to the turn's conversation; a failure is logged, never raised."""
    reply = activity | {"conversation": {"id": turn.conversation_id}}
    if turn.id:
        reply["replyToId"] = turn.id
    try:
        await ctx.connector.send(turn.service_url, turn.conversation_id, reply)
    except Exception as exc:
        log.warning("could not post the reply to Teams: %s", exc)


# ---------------------------------------------------------------------------- card buttons


async def _card_action(ctx: TeamsContext, turn: Turn) -> Outcome:
    """Pages in the invoke response; live checks say "checking" and update the card after."""
    action = _object(_object(turn.activity.get("value")).get("action"))
    verb, data = action.get("verb"), _object(action.get("data"))
    try:
        user_id = _gate(ctx, turn)
        if turn.conversation_type != "personal" or verb not in render.VERBS:
            raise BadButton()
        asker = ctx.asker(user_id)
        phone = button_phone(str(data.get("phone") or ""))
        if verb == render.VERB_PAGE:
            page = _page(data.get("page"))
            answer = await ctx.answers.reading_index(lambda: ctx.answers.page(asker, phone, page))
            return _card_response(render.whois(answer))
        ctx.answers.require_agent(asker)
        check = ctx.answers.verify_live if verb == render.VERB_VERIFY else ctx.answers.search_live
        later = lambda: _live(ctx, turn, lambda: check(asker, phone), phone)  # noqa: E731
        return Outcome(body=_invoke(render.CARD_CONTENT_TYPE, render.checking(phone)), later=later)
    except Exception as exc:
        return Outcome(body=_invoke(MESSAGE_TYPE, describe(exc, ctx.settings)))


async def _live(
    ctx: TeamsContext, turn: Turn, check: Callable[[], WhoisAnswer], phone: str
) -> None:
    """Run the live check and put its answer (or the refusal) in place of the card."""
    try:
        reply = answer_message(await ctx.answers.waiting_on_auth0(check))
    except Exception as exc:
        content = render.card(
            [render.text(f"**{phone}**"), render.text(describe(exc, ctx.settings))]
        )
        reply = render.card_message(content, texts.VERIFY_LIVE)
    card_id = turn.activity.get("replyToId")
    if not card_id:
        await send(ctx, turn, reply)
        return
    try:
        await ctx.connector.update(turn.service_url, turn.conversation_id, str(card_id), reply)
    except Exception as exc:
        log.warning("could not update the card in Teams: %s", exc)


def _page(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadButton()
    try:
        return int(value)
    except ValueError:
        raise BadButton() from None


def _card_response(card: dict[str, Any]) -> Outcome:
    return Outcome(body=_invoke(render.CARD_CONTENT_TYPE, card))


def _invoke(kind: str, value: object) -> dict[str, Any]:
    """The body of an adaptiveCard/action invoke response."""
    return {"statusCode": 200, "type": kind, "value": value}
