"""/whois and its buttons: who may ask, the hourly limit, the index lookup, live checks, audit.

Plain functions of plain values (no `ack`, no request bodies); they run in a worker thread.
Refusals are raised (bot.slack.errors) and turned into words by the app's error boundary.
Audit rows and alerts are written after the answer (SlackContext.writes), never before it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.slack import texts
from bot.slack.dashboard import user_link
from bot.slack.errors import BadButton, HelpAsked, NotAnAgent, OverLimit
from jobs.auth0 import Auth0Client
from jobs.live import live_lookup, live_search
from phoneindex.audit import Allowance
from phoneindex.errors import ConfigError
from phoneindex.numbers import to_e164

if TYPE_CHECKING:
    from bot.slack.context import SlackContext

# live_lookup or live_search: (store, client, phone, *, default_region) -> lookup document
LiveCheck = Callable[..., dict[str, Any]]
VIA = "slack"
VIA_LIVE = "slack-live"
HELP_WORDS = frozenset({"", "help", "?", "-h", "--help"})
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class WhoisAnswer:
    """A lookup document to show, with the dashboard link of each account."""

    doc: dict[str, Any]
    links: dict[str, str] = field(default_factory=dict)
    page: int = 0
    live: str | None = None  # "verify" or "search" when the answer comes from a live check


def whois(ctx: SlackContext, user_id: str, text: str) -> WhoisAnswer:
    """`/whois TEXT` by `user_id`: every account linked to the number, from the index."""
    require_agent(ctx, user_id)
    if text.strip().lower() in HELP_WORDS:
        raise HelpAsked()
    phone = to_e164(text, ctx.settings.default_region)
    check_limit(ctx, user_id, phone, VIA)
    doc = ctx.store.lookup(phone, query=text.strip())
    record(ctx, user_id, VIA, phone, len(doc["accounts"]))
    return _answer(ctx, doc)


def page(ctx: SlackContext, user_id: str, value: str) -> WhoisAnswer:
    """Another page of a /whois answer (the lookup was audited when it was asked)."""
    require_agent(ctx, user_id)
    phone, _, number = value.partition(" ")
    if not number.isdigit():
        raise BadButton()
    doc = ctx.store.lookup(button_phone(phone))
    return _answer(ctx, doc, page=int(number))


def verify_live(ctx: SlackContext, user_id: str, value: str) -> WhoisAnswer:
    """Re-read every account linked to the number from the Management API (interactive)."""
    return _live(ctx, user_id, value, live_lookup, "verify")


def search_live(ctx: SlackContext, user_id: str, value: str) -> WhoisAnswer:
    """Search Auth0 users by the number (passwordless and profile numbers only)."""
    return _live(ctx, user_id, value, live_search, "search")


def _live(ctx: SlackContext, user_id: str, value: str, check: LiveCheck, live: str) -> WhoisAnswer:
    """A live check for an agent within the hourly limit, audited, as a whois answer."""
    require_agent(ctx, user_id)
    phone = button_phone(value)
    client = auth0_client(ctx)
    check_limit(ctx, user_id, phone, VIA_LIVE)
    doc = check(ctx.store, client, phone, default_region=ctx.settings.default_region)
    record(ctx, user_id, VIA_LIVE, phone, len(doc["accounts"]))
    return _answer(ctx, doc, live=live)


def require_agent(ctx: SlackContext, user_id: str) -> None:
    """NotAnAgent when SLACK_AGENT_USERS is set and does not name the user."""
    agents = ctx.settings.agent_users
    if agents and user_id not in agents:
        raise NotAnAgent(user_id)


def check_limit(ctx: SlackContext, user_id: str, phone: str, via: str) -> None:
    """OverLimit past MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR; supervisors hear of it once."""
    allowance = ctx.audit.allow(user_id, ctx.settings.agent_lookups_per_hour)
    key = limit_alert_key(user_id)
    if allowance.allowed:
        ctx.writes.submit("limit recovery", lambda: _recovered(ctx, user_id, key))
        return
    ctx.writes.submit("limit refusal", lambda: _refused(ctx, user_id, phone, via, allowance))
    raise OverLimit(user_id, allowance)


def limit_alert_key(user_id: str) -> str:
    """The alert incident of one agent over the limit."""
    return f"lookups.{user_id}"


def record(ctx: SlackContext, user_id: str, via: str, phone: str, accounts: int) -> None:
    """Add the lookup to the audit trail (keyed hash of the number) after the answer."""
    at = ctx.audit.clock()  # when it happened, not when the deferred write gets its turn
    ctx.writes.submit(
        "audit record",
        lambda: ctx.audit.record(actor=user_id, via=via, phone=phone, accounts=accounts, at=at),
    )


def button_phone(value: str) -> str:
    """The E.164 number a button carries; BadButton for anything else."""
    if not _E164.fullmatch(value):
        raise BadButton()
    return value


def auth0_client(ctx: SlackContext) -> Auth0Client:
    """The shared Management API client; ConfigError naming the missing variable."""
    if ctx.auth0 is None:
        ctx.settings.require("auth0_domain", "auth0_client_id", "auth0_client_secret")
        raise ConfigError("live checks have no Auth0 client in this process")
    return ctx.auth0()


def _answer(
    ctx: SlackContext, doc: dict[str, Any], *, page: int = 0, live: str | None = None
) -> WhoisAnswer:
    domain = ctx.settings.auth0_domain
    links = {
        acc["user_id"]: link
        for acc in doc["accounts"]
        if (link := user_link(domain, acc["user_id"])) is not None
    }
    return WhoisAnswer(doc, links, page, live)


def _refused(ctx: SlackContext, user_id: str, phone: str, via: str, allowance: Allowance) -> None:
    """Record the refused attempt, and alert the supervisors (once per incident)."""
    ctx.audit.record_refusal(actor=user_id, via=via, phone=phone)
    title, text = texts.limit_alert(user_id, allowance)
    ctx.alerts.open(limit_alert_key(user_id), title, text, severity="warning")


def _recovered(ctx: SlackContext, user_id: str, key: str) -> None:
    """Close the agent's over-the-limit incident, if one is open."""
    title, text = texts.limit_recovered(user_id)
    ctx.alerts.close(key, title, text)
