"""Every word the Teams bot says to agents, admins and supervisors, in one voice.

Texts here are Teams markdown in our own words; values from the index or Auth0 are never put
into markdown (bot.teams.render shows them as plain text runs). Times use the Adaptive Card
DATE/TIME functions, so each reader sees their own time zone.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from phoneindex.audit import Allowance

APP = "mfa-whois"
UNKNOWN = "unknown"
NEVER = "never"


def when(stamp: str | None) -> str:
    """A timestamp shown in the reader's time zone (Adaptive Card date functions)."""
    if not stamp:
        return NEVER
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
    rfc = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{{{{DATE({rfc}, SHORT)}}}} {{{{TIME({rfc})}}}}"


def plural(count: int, word: str) -> str:
    """`1 account`, `3 accounts`."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------------------- whois

IDENTITY_REMINDER = (
    "A number match is a routing hint, **not proof of identity**: caller ID can be spoofed and "
    "numbers get recycled. Verify the caller as you always do."
)
USAGE = (
    "**Usage:** `whois NUMBER`, typed any common way, e.g. `whois +1 (415) 555-0100`, "
    "`whois 415-555-0100`, `whois 00 44 20 7946 0958`. Numbers without a country code are read "
    "as {region} numbers. Admins: `reindex` queues a full sync, `reindex status` shows the runs."
)
VERIFY_LIVE = "Verify live"
SEARCH_LIVE = "Search live"
PREVIOUS = "◀ Previous"
NEXT = "Next ▶"
OPEN_IN_AUTH0 = "Open in Auth0"
BLOCKED = "⛔ **Blocked**"
NO_MATCH = "No account in the index has this number."
NO_MATCH_HINT = (
    "**Search live** asks Auth0's user search, which finds passwordless and profile numbers only "
    "(MFA numbers are not searchable)."
)
CHECKING = "Checking with Auth0… the answer replaces this card in a moment."
KINDS = {"mfa": "MFA phone", "passwordless": "passwordless login", "profile": "profile number"}
SOURCES = {
    "export": "Auth0 export",
    "authenticators": "MFA read",
    "logs": "Auth0 logs",
    "action": "Auth0 Action",
    "live": "live check",
}


def welcome(region: str) -> str:
    """The first message in a personal chat, when the bot is added."""
    return "👋 I tell you which Auth0 accounts a phone number belongs to.\n\n" + usage(region)


def usage(region: str, reason: str | None = None) -> str:
    """The usage hint, after why the input was not usable (if it was not)."""
    hint = USAGE.format(region=region)
    return f"⚠️ That is not a usable phone number ({reason}).\n\n{hint}" if reason else hint


def matches(phone: str, count: int) -> str:
    """The first line of an answer."""
    return f"**{phone}**: {plural(count, 'account') if count else 'no account'}"


def page_of(first: int, last: int, total: int) -> str:
    """Which accounts this page shows."""
    return f"Accounts {first:,}–{last:,} of {total:,}, most recent login first."


def login(last_login: str | None, blocked: bool) -> str:
    """Last login, blocked."""
    line = f"Last login: {when(last_login)}"
    return f"{line} · {BLOCKED}" if blocked else line


def linked(phone: dict[str, Any]) -> str:
    """How one account is linked to the number: kind, method, confirmed, source, when."""
    kind = KINDS.get(phone["kind"], "other")
    traits = [str(phone["method"]).upper()] if phone.get("method") in ("sms", "voice") else []
    if phone.get("confirmed") is True:
        traits.append("confirmed")
    elif phone.get("confirmed") is False:
        traits.append("unconfirmed")
    what = f"{kind} ({', '.join(traits)})" if traits else kind
    of = f" of the linked identity `{phone['identity']}`" if phone.get("identity") else ""
    source = SOURCES.get(phone["source"], "other source")
    return f"Linked as **{what}**{of}, from {source}, {when(phone.get('updated_at'))}"


def freshness(fresh: dict[str, Any]) -> str:
    """How fresh the index is."""
    line = (
        f"Index: last full sync {when(fresh.get('last_full_sync'))}, "
        f"last update {when(fresh.get('last_update'))}"
    )
    if fresh.get("stale"):
        line += " · ⚠️ **stale**: no successful full sync for too long"
    return line


def live_note(live: dict[str, Any], kind: str | None) -> str:
    """What a live check did (error texts are not shown here: they are logged)."""
    what = "Searched Auth0 users" if kind == "search" else "Checked with Auth0"
    counted = plural(int(live.get("checked", 0)), "match" if kind == "search" else "account")
    parts = [
        f"{what} {when(live.get('checked_at'))}",
        f"{counted} {'found' if kind == 'search' else 're-read'}",
    ]
    if live.get("deleted"):
        parts.append(f"{plural(int(live['deleted']), 'account')} no longer in Auth0")
    if live.get("errors"):
        parts.append(f"⚠️ {int(live['errors']):,} not checked")
    return ", ".join(parts)


# ---------------------------------------------------------------------------- refusals, errors

NOT_AN_AGENT = (
    "⛔ You are not on the list of agents who may look numbers up. Ask an admin to add your "
    "Entra object id to TEAMS_AGENT_USERS."
)
NOT_AN_ADMIN = "⛔ Only mfa-whois admins may reindex (TEAMS_ADMIN_USERS)."
BAD_BUTTON = "That button does not belong to a current answer; type `whois NUMBER` again."
OTHER_TENANT = "⛔ This bot answers only in the organization it is registered in."
NO_IDENTITY = "⛔ This bot answers only Microsoft Teams users of its organization."
DATABASE_BUSY = "⚠️ The index database is busy or unreachable right now; try again in a minute."


def personal_only(chat_link: str) -> str:
    """What the bot says in a channel or group chat: no account data there."""
    return (
        "Lookups show account data, so I answer them only in a personal chat with me: "
        f"[open the chat]({chat_link}) and type `whois NUMBER`."
    )


def over_limit(allowance: Allowance) -> str:
    """Refusal past the hourly lookup limit."""
    minutes = max(1, math.ceil(allowance.retry_after_seconds / 60))
    return (
        f"⌛ You have made {plural(allowance.used, 'lookup')} in the last hour; the limit is "
        f"{allowance.limit:,}. Try again in {plural(minutes, 'minute')}. "
        "Supervisors have been told."
    )


def not_configured(detail: str) -> str:
    """A feature this installation is not configured for."""
    return f"⚠️ Not available here: {detail}."


def auth0_failed() -> str:
    """The Management API failed a live check."""
    return "⚠️ Auth0 did not answer the live check. The index answer stands."


def internal_error(incident: str) -> str:
    """An unexpected error; the incident id is in the logs too."""
    return f"⚠️ Something went wrong on our side (incident `{incident}`); it is logged."


# ---------------------------------------------------------------------------- reindex

REINDEX_USAGE = (
    "**Usage:** `reindex` queues a full sync (Auth0 export, import, MFA numbers); "
    "`reindex status` shows the running or last runs."
)
STATUS_TITLE = "Full sync status"


def reindex_queued(run: dict[str, Any]) -> str:
    """A full sync was queued for this admin."""
    return (
        f"✅ Full sync #{run['id']} is queued; the scheduler starts it within seconds. "
        "I will message you when it ends; `reindex status` shows how it goes."
    )


def reindex_pending(run: dict[str, Any]) -> str:
    """A full sync was already queued or running."""
    return (
        f"⏳ A full sync is already {run['status']} (#{run['id']}). "
        "I will message you when it ends."
    )


def run_report(run: dict[str, Any], summary: dict[str, Any]) -> str:
    """How a full sync that an admin asked for ended (the error is in `reindex status`)."""
    if run["status"] == "succeeded":
        numbers = summary.get("numbers", {})
        return (
            f"✅ Full sync #{run['id']} succeeded. The index now holds "
            f"{plural(int(summary.get('accounts', 0)), 'account')} and "
            f"{plural(sum(int(n) for n in numbers.values()), 'number')}."
        )
    return (
        f"❌ Full sync #{run['id']} failed. The index is unchanged; supervisors get an alert, "
        "and `mfa-whois status` shows the error."
    )


def run_line(label: str, run: dict[str, Any] | None) -> str:
    """One run in a line (error texts are left to `mfa-whois status`)."""
    if run is None:
        return f"**{label}:** {NEVER}"
    line = f"**{label}:** #{run['id']} {run['status']} {when(run.get('started_at'))}"
    if run.get("finished_at") and run["status"] != "queued":
        line += f", ended {when(run['finished_at'])}"
    return line


def status_lines(doc: dict[str, Any]) -> list[str]:
    """`reindex status`: runs, index size, freshness."""
    numbers = doc.get("numbers", {})
    return [
        run_line("Running", doc.get("running")) if doc.get("running") else "**Running:** nothing",
        *([run_line("Queued", doc["queued"])] if doc.get("queued") else []),
        run_line("Last full sync", doc.get("last_full_sync")),
        run_line("Last MFA enrichment", doc.get("last_enrich")),
        run_line("Last log sync", doc.get("last_incremental_sync")),
        f"**{plural(int(doc.get('accounts', 0)), 'account')}** · numbers: "
        f"{int(numbers.get('mfa', 0)):,} MFA, {int(numbers.get('passwordless', 0)):,} "
        f"passwordless, {int(numbers.get('profile', 0)):,} profile",
        freshness(doc["freshness"]),
    ]


# ---------------------------------------------------------------------------- alerts

ALERT_ICONS = {"failure": "🚨", "warning": "⚠️", "recovery": "✅"}


def alert_headline(severity: str, title: str) -> str:
    """The first line of an alert (title already free of full numbers)."""
    return f"{ALERT_ICONS.get(severity, '🔔')} {title}"


def alert_footer(key: str, at: str | None) -> str:
    """Which incident, and when."""
    return f"{APP} · incident {key} · {when(at)}"
