"""Every word the Slack app says to agents, admins and supervisors, in one voice.

Values from the index or Auth0 arrive here already escaped for mrkdwn (render.esc).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from phoneindex.audit import Allowance

# ---------------------------------------------------------------------------- shared words

APP = "mfa-whois"
UNKNOWN = "unknown"
NEVER = "never"


def when(stamp: str | None) -> str:
    """A timestamp Slack shows in the reader's time zone (plain UTC where it cannot)."""
    if not stamp:
        return NEVER
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{math.floor(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def plural(count: int, word: str) -> str:
    """`1 account`, `3 accounts`."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def user(user_id: str) -> str:
    """A Slack user mention."""
    return f"<@{user_id}>"


# ---------------------------------------------------------------------------- /whois

IDENTITY_REMINDER = (
    ":information_source: A number match is a routing hint, *not proof of identity*: caller ID "
    "can be spoofed and numbers get recycled. Verify the caller as you always do."
)
USAGE = (
    "*Usage:* `/whois NUMBER`, typed any common way, e.g. `/whois +1 (415) 555-0100`, "
    "`/whois 415-555-0100`, `/whois 00 44 20 7946 0958` or `/whois tel:+14155550100`. "
    "Numbers without a country code are read as {region} numbers."
)
VERIFY_LIVE = "Verify live"
SEARCH_LIVE = "Search live"
PREVIOUS = "◀ Previous"
NEXT = "Next ▶"
OPEN_IN_AUTH0 = "Open in Auth0"
BLOCKED = ":no_entry_sign: *Blocked*"
NO_MATCH = "No account in the index has this number."
NO_MATCH_HINT = (
    "*Search live* asks Auth0's user search, which finds passwordless and profile numbers only "
    "(MFA numbers are not searchable)."
)
KINDS = {"mfa": "MFA phone", "passwordless": "passwordless login", "profile": "profile number"}
SOURCES = {
    "export": "Auth0 export",
    "authenticators": "MFA read",
    "logs": "Auth0 logs",
    "action": "Auth0 Action",
    "live": "live check",
}


def usage(region: str, reason: str | None = None) -> str:
    """The usage hint, after why the input was not usable (if it was not)."""
    hint = USAGE.format(region=region)
    return f":warning: That is not a usable phone number ({reason}).\n{hint}" if reason else hint


def matches(phone: str, count: int) -> str:
    """The first line of an answer."""
    found = plural(count, "account") if count else "no account"
    return f"*{phone}*: {found}"


def page_of(first: int, last: int, total: int) -> str:
    """Which accounts this page shows."""
    return f"Accounts {first:,}–{last:,} of {total:,}, most recent login first."


def account_details(connection: str | None, last_login: str | None, blocked: bool) -> str:
    """Connection, last login, blocked."""
    parts = [f"Connection: {connection or UNKNOWN}", f"Last login: {when(last_login)}"]
    if blocked:
        parts.append(BLOCKED)
    return " · ".join(parts)


def linked(phone: dict[str, Any]) -> str:
    """How one account is linked to the number: kind, method, confirmed, source, when."""
    kind = KINDS.get(phone["kind"], phone["kind"])
    traits = [str(phone["method"]).upper()] if phone.get("method") else []
    if phone.get("confirmed") is True:
        traits.append("confirmed")
    elif phone.get("confirmed") is False:
        traits.append("unconfirmed")
    what = f"{kind} ({', '.join(traits)})" if traits else kind
    of = f" of the linked identity `{phone['identity']}`" if phone.get("identity") else ""
    source = SOURCES.get(phone["source"], phone["source"])
    return f"Linked as *{what}*{of}, from {source}, {when(phone.get('updated_at'))}"


def freshness(fresh: dict[str, Any]) -> str:
    """How fresh the index is."""
    line = (
        f"Index: last full sync {when(fresh.get('last_full_sync'))}, "
        f"last update {when(fresh.get('last_update'))}"
    )
    if fresh.get("stale"):
        line += " · :warning: *stale*: no successful full sync for too long"
    return line


def live_note(live: dict[str, Any], kind: str | None) -> str:
    """What a live check did."""
    what = "Searched Auth0 users" if kind == "search" else "Checked with Auth0"
    parts = [f":satellite_antenna: {what} {when(live.get('checked_at'))}"]
    if kind != "search":
        parts.append(f"{plural(int(live.get('checked', 0)), 'account')} re-read")
    else:
        parts.append(f"{plural(int(live.get('checked', 0)), 'match')} found")
    if live.get("deleted"):
        parts.append(f"{plural(int(live['deleted']), 'account')} no longer in Auth0")
    if live.get("errors"):
        parts.append(
            f":warning: {int(live['errors']):,} not checked ({live.get('error') or UNKNOWN})"
        )
    return ", ".join(parts)


# ---------------------------------------------------------------------------- refusals, errors

NOT_AN_AGENT = (
    ":no_entry: You are not on the list of agents who may look numbers up. Ask an admin to add "
    "your Slack user id to SLACK_AGENT_USERS."
)
NOT_AN_ADMIN = ":no_entry: Only mfa-whois admins may run /reindex (SLACK_ADMIN_USERS)."
BAD_BUTTON = "That button does not belong to a current answer; run /whois again."
OTHER_WORKSPACE = ":no_entry: This app answers only in the Slack workspace it is installed in."
DATABASE_BUSY = (
    ":warning: The index database is busy or unreachable right now; try again in a minute."
)


def over_limit(allowance: Allowance) -> str:
    """Refusal past the hourly lookup limit."""
    minutes = max(1, math.ceil(allowance.retry_after_seconds / 60))
    return (
        f":hourglass: You have made {plural(allowance.used, 'lookup')} in the last hour; the "
        f"limit is {allowance.limit:,}. Try again in {plural(minutes, 'minute')}. "
        "Supervisors have been told."
    )


def not_configured(detail: str) -> str:
    """A feature this installation is not configured for."""
    return f":warning: Not available here: {detail}."


def auth0_failed(detail: str) -> str:
    """The Management API failed a live check."""
    return f":warning: Auth0 did not answer the live check: {detail}. The index answer stands."


def failed(detail: str) -> str:
    """A known error, in its own words."""
    return f":warning: {detail}"


def internal_error(incident: str) -> str:
    """An unexpected error; the incident id is in the logs too."""
    return f":warning: Something went wrong on our side (incident `{incident}`); it is logged."


# ---------------------------------------------------------------------------- /reindex

REINDEX_USAGE = (
    "*Usage:* `/reindex` queues a full sync (Auth0 export, import, MFA numbers); "
    "`/reindex status` shows the running or last runs."
)
RUN_WORDS = {"full": "Full sync", "enrich": "MFA enrichment", "incremental": "Log sync"}
STATUS_ICONS = {
    "queued": ":hourglass_flowing_sand:",
    "running": ":arrows_counterclockwise:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
}


def requester(requested_by: str) -> str:
    """Who asked for a run: a Slack mention for `slack:U…`, else as recorded."""
    if requested_by.startswith("slack:"):
        who, _, rest = requested_by.removeprefix("slack:").partition(" ")
        return user(who) + (f" {rest}" if rest else "")
    return requested_by


def run_line(run: dict[str, Any] | None) -> str:
    """One run in a line."""
    if run is None:
        return NEVER
    icon = STATUS_ICONS.get(run["status"], "")
    line = (
        f"{icon} #{run['id']} {run['status']} {when(run.get('started_at'))}, "
        f"asked by {requester(str(run['requested_by']))}"
    )
    if run.get("finished_at") and run["status"] != "queued":
        line += f", ended {when(run['finished_at'])}"
    if run.get("error"):
        line += f": {run['error']}"
    return line


def reindex_queued(run: dict[str, Any]) -> str:
    """A full sync was queued for this admin."""
    return (
        f":white_check_mark: Full sync #{run['id']} is queued; the scheduler starts it within "
        "seconds. I will message you when it ends. `/reindex status` shows how it goes."
    )


def reindex_pending(run: dict[str, Any]) -> str:
    """A full sync was already queued or running."""
    return (
        f":hourglass_flowing_sand: A full sync is already {run['status']} (#{run['id']}, asked by "
        f"{requester(str(run['requested_by']))}). I will message you when it ends."
    )


def run_report(run: dict[str, Any], summary: dict[str, Any]) -> str:
    """How a full sync that an admin asked for ended."""
    if run["status"] == "succeeded":
        numbers = summary.get("numbers", {})
        return (
            f":white_check_mark: Full sync #{run['id']} succeeded. The index now holds "
            f"{plural(int(summary.get('accounts', 0)), 'account')} and "
            f"{plural(sum(int(n) for n in numbers.values()), 'number')}."
        )
    return (
        f":x: Full sync #{run['id']} failed: {run.get('error') or UNKNOWN}. The index is "
        "unchanged; supervisors get an alert."
    )


# ---------------------------------------------------------------------------- overview

HOME_TITLE = "mfa-whois: the phone index"
HOME_HOW = (
    "Type `/whois NUMBER` in any conversation to see every Auth0 account linked to a phone "
    "number. Answers are visible only to you."
)
HOME_NOT_YOURS = (
    ":lock: The phone index is not available to you. Agents and admins of this workspace see "
    "it here; ask an admin if you need it."
)
STATUS_TITLE = "Full sync status"
RUNS_TITLE = "Runs"


def index_size(doc: dict[str, Any]) -> str:
    """Accounts and numbers by kind."""
    numbers = doc.get("numbers", {})
    line = (
        f"*{plural(int(doc.get('accounts', 0)), 'account')}* · numbers: "
        f"{int(numbers.get('mfa', 0)):,} MFA, {int(numbers.get('passwordless', 0)):,} "
        f"passwordless, {int(numbers.get('profile', 0)):,} profile"
    )
    masked = int(doc.get("masked_mfa_numbers") or 0)
    if masked:
        line += (
            f"\n:warning: {plural(masked, 'MFA number')} came back masked: set the tenant flag "
            "`disable_management_api_sms_obfuscation`, then run `mfa-whois enrich --all`."
        )
    return line


def runs(doc: dict[str, Any]) -> str:
    """The running run, the queued one and the last of each kind."""
    lines = [f"*Running:* {run_line(doc['running']) if doc.get('running') else 'nothing'}"]
    if doc.get("queued"):
        lines.append(f"*Queued:* {run_line(doc['queued'])}")
    for label, key in (
        ("Last full sync", "last_full_sync"),
        ("Last MFA enrichment", "last_enrich"),
        ("Last log sync", "last_incremental_sync"),
    ):
        lines.append(f"*{label}:* {run_line(doc.get(key))}")
    push = doc.get("last_push")
    if push:
        lines.append(
            f"*Last log-stream push:* {when(push.get('at'))}: {push.get('events', 0):,} events, "
            f"{push.get('changes', 0):,} changes"
        )
    return "\n".join(lines)


def schedule(doc: dict[str, Any]) -> str:
    """When the next full sync is due, and the log polling."""
    due = when(doc.get("next_full_sync")) if doc.get("next_full_sync") else UNKNOWN
    polls = int(doc.get("log_poll_seconds") or 0)
    logs = f"Auth0 logs every {polls:,} s" if polls else "Auth0 logs pushed only"
    return f"Next scheduled full sync: {due} (when a scheduler runs) · {logs}"


# ---------------------------------------------------------------------------- alerts

ALERT_ICONS = {
    "failure": ":rotating_light:",
    "warning": ":warning:",
    "recovery": ":white_check_mark:",
}


def alert_headline(severity: str, title: str) -> str:
    """The first line of an alert."""
    return f"{ALERT_ICONS.get(severity, ':bell:')} *{title}*"


def alert_footer(key: str, at: str | None) -> str:
    """Which incident, and when."""
    return f"{APP} · incident `{key}` · {when(at)}"
