"""Every word the Teams bot says to agents, admins and supervisors, in one voice.

The words every surface shares are in bot.wording, said here in Teams markdown (`**bold**`,
Unicode emoji); what only Teams says (typed commands, the welcome, personal chats) is written
here. Texts here are Teams markdown in our own words; values from the index or Auth0 are never
put into markdown (bot.teams.render shows them as plain text runs). Times use the Adaptive Card
DATE/TIME functions, so each reader sees their own time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot import wording
from phoneindex.audit import Allowance

# The shared words, as this module's own (callers need only one texts module).
APP = wording.APP
KINDS = wording.KINDS
NEVER = wording.NEVER
NEXT = wording.NEXT
NO_MATCH = wording.NO_MATCH
OPEN_IN_AUTH0 = wording.OPEN_IN_AUTH0
PREVIOUS = wording.PREVIOUS
SEARCH_LIVE = wording.SEARCH_LIVE
SOURCES = wording.SOURCES
STATUS_TITLE = wording.STATUS_TITLE
UNKNOWN = wording.UNKNOWN
VERIFY_LIVE = wording.VERIFY_LIVE
page_of = wording.page_of
plural = wording.plural


def when(stamp: str | None) -> str:
    """A timestamp shown in the reader's time zone (Adaptive Card date functions)."""
    if not stamp:
        return NEVER
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    rfc = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{{{{DATE({rfc}, SHORT)}}}} {{{{TIME({rfc})}}}}"


MARKDOWN = wording.Markup(
    strong="**",
    paragraph="\n\n",
    icons=wording.Icons(
        warning="⚠️",
        refused="⛔",
        blocked="⛔",
        over_limit="⌛",
        pending="⏳",
        done="✅",
        failed="❌",
        alarm="🚨",
        bell="🔔",
    ),
    when=when,
)


# ---------------------------------------------------------------------------- whois

WHOIS_EXAMPLES = ("+1 (415) 555-0100", "415-555-0100", "00 44 20 7946 0958")
ADMIN_HINT = "Admins: `reindex` queues a full sync, `reindex status` shows the runs."
IDENTITY_REMINDER = wording.identity_reminder(MARKDOWN)
BLOCKED = wording.blocked(MARKDOWN)
NO_MATCH_HINT = wording.no_match_hint(MARKDOWN)
CHECKING = "Checking with Auth0… the answer replaces this card in a moment."


def usage(region: str, reason: str | None = None) -> str:
    """The usage hint, after why the input was not usable (if it was not)."""
    return wording.usage(MARKDOWN, "whois", WHOIS_EXAMPLES, region, reason, also=ADMIN_HINT)


USAGE = usage("{region}")  # the hint with its region left open, as the docs and tests quote it


def welcome(region: str) -> str:
    """The first message in a personal chat, when the bot is added."""
    return "👋 I tell you which Auth0 accounts a phone number belongs to.\n\n" + usage(region)


def matches(phone: str, count: int) -> str:
    """The first line of an answer."""
    return wording.matches(MARKDOWN, phone, count)


def login(last_login: str | None, blocked: bool) -> str:
    """Last login, blocked."""
    return wording.login(MARKDOWN, last_login, blocked)


def linked(phone: dict[str, Any]) -> str:
    """How one account is linked to the number; render names a linked identity in a text run."""
    return wording.linked(MARKDOWN, phone)


def freshness(fresh: dict[str, Any]) -> str:
    """How fresh the index is."""
    return wording.freshness(MARKDOWN, fresh)


def live_note(live: dict[str, Any], kind: str | None) -> str:
    """What a live check did (error texts are not shown here: they are logged)."""
    return wording.live_note(MARKDOWN, live, kind)


# ---------------------------------------------------------------------------- refusals, errors

NOT_AN_AGENT = wording.not_an_agent(MARKDOWN, "Entra object id", "TEAMS_AGENT_USERS")
NOT_AN_ADMIN = wording.not_an_admin(MARKDOWN, "reindex", "TEAMS_ADMIN_USERS")
BAD_BUTTON = wording.bad_button("type `whois NUMBER`")
OTHER_TENANT = "⛔ This bot answers only in the organization it is registered in."
NO_IDENTITY = "⛔ This bot answers only Microsoft Teams users of its organization."
DATABASE_BUSY = wording.database_busy(MARKDOWN)


def personal_only(chat_link: str) -> str:
    """What the bot says in a channel or group chat: no account data there."""
    return (
        "Lookups show account data, so I answer them only in a personal chat with me: "
        f"[open the chat]({chat_link}) and type `whois NUMBER`."
    )


def over_limit(allowance: Allowance) -> str:
    """Refusal past the hourly lookup limit."""
    return wording.over_limit(MARKDOWN, allowance)


def not_configured(detail: str) -> str:
    """A feature this installation is not configured for."""
    return wording.not_configured(MARKDOWN, detail)


def auth0_failed() -> str:
    """The Management API failed a live check (how is logged, not shown)."""
    return wording.auth0_failed(MARKDOWN)


def internal_error(incident: str) -> str:
    """An unexpected error; the incident id is in the logs too."""
    return wording.internal_error(MARKDOWN, incident)


# ---------------------------------------------------------------------------- reindex

REINDEX_USAGE = wording.reindex_usage(MARKDOWN, "reindex")


def reindex_queued(run: dict[str, Any]) -> str:
    """A full sync was queued for this admin."""
    return wording.reindex_queued(MARKDOWN, run, "reindex status")


def reindex_pending(run: dict[str, Any]) -> str:
    """A full sync was already queued or running."""
    return wording.reindex_pending(MARKDOWN, run)


def run_report(run: dict[str, Any], summary: dict[str, Any]) -> str:
    """How a full sync that an admin asked for ended (the error is in `mfa-whois status`)."""
    return wording.run_report(MARKDOWN, run, summary)


def run_line(run: dict[str, Any]) -> str:
    """One run in a line (who asked and error texts are left to `mfa-whois status`)."""
    return wording.run_line(MARKDOWN, run)


def status_lines(doc: dict[str, Any]) -> list[str]:
    """`reindex status`: runs, index size, freshness."""
    return [
        *wording.run_lines(MARKDOWN, doc, run_line),
        wording.index_size(MARKDOWN, doc),
        freshness(doc["freshness"]),
    ]


# ---------------------------------------------------------------------------- alerts


def alert_headline(severity: str, title: str) -> str:
    """The first line of an alert (title already free of full numbers)."""
    return wording.alert_headline(MARKDOWN, severity, title)


def alert_footer(key: str, at: str | None) -> str:
    """Which incident, and when."""
    return wording.alert_footer(MARKDOWN, key, at)
