"""Every word the Slack app says to agents, admins and supervisors, in one voice.

The words every surface shares are in bot.wording, said here in mrkdwn (`*bold*`, emoji codes,
`<!date^…>` times); what only Slack says (slash commands, mentions, App Home) is written here.
Values from the index or Auth0 arrive here already escaped for mrkdwn (render.esc).
"""

from __future__ import annotations

import math
from datetime import datetime
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
    """A timestamp Slack shows in the reader's time zone (plain UTC where it cannot)."""
    if not stamp:
        return NEVER
    at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{math.floor(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


MRKDWN = wording.Markup(
    strong="*",
    paragraph="\n",
    icons=wording.Icons(
        warning=":warning:",
        refused=":no_entry:",
        blocked=":no_entry_sign:",
        over_limit=":hourglass:",
        pending=":hourglass_flowing_sand:",
        done=":white_check_mark:",
        failed=":x:",
        alarm=":rotating_light:",
        bell=":bell:",
    ),
    when=when,
)


def user(user_id: str) -> str:
    """A Slack user mention."""
    return f"<@{user_id}>"


# ---------------------------------------------------------------------------- /whois

WHOIS_EXAMPLES = ("+1 (415) 555-0100", "415-555-0100", "00 44 20 7946 0958", "tel:+14155550100")
IDENTITY_REMINDER = ":information_source: " + wording.identity_reminder(MRKDWN)
BLOCKED = wording.blocked(MRKDWN)
NO_MATCH_HINT = wording.no_match_hint(MRKDWN)


def usage(region: str, reason: str | None = None) -> str:
    """The usage hint, after why the input was not usable (if it was not)."""
    return wording.usage(MRKDWN, "/whois", WHOIS_EXAMPLES, region, reason)


USAGE = usage("{region}")  # the hint with its region left open, as the docs and tests quote it


def matches(phone: str, count: int) -> str:
    """The first line of an answer."""
    return wording.matches(MRKDWN, phone, count)


def account_details(connection: str | None, last_login: str | None, blocked: bool) -> str:
    """Connection, last login, blocked."""
    return f"Connection: {connection or UNKNOWN} · {wording.login(MRKDWN, last_login, blocked)}"


def linked(phone: dict[str, Any]) -> str:
    """How one account is linked to the number, naming the linked identity if there is one."""
    return wording.linked(MRKDWN, phone, phone.get("identity"))


def freshness(fresh: dict[str, Any]) -> str:
    """How fresh the index is."""
    return wording.freshness(MRKDWN, fresh)


def live_note(live: dict[str, Any], kind: str | None) -> str:
    """What a live check did, with why some accounts were not checked."""
    note = wording.live_note(MRKDWN, live, kind, live.get("error") or UNKNOWN)
    return f":satellite_antenna: {note}"


# ---------------------------------------------------------------------------- refusals, errors

NOT_AN_AGENT = wording.not_an_agent(MRKDWN, "Slack user id", "SLACK_AGENT_USERS")
NOT_AN_ADMIN = wording.not_an_admin(MRKDWN, "run /reindex", "SLACK_ADMIN_USERS")
BAD_BUTTON = wording.bad_button("run /whois")
OTHER_WORKSPACE = ":no_entry: This app answers only in the Slack workspace it is installed in."
DATABASE_BUSY = wording.database_busy(MRKDWN)


def over_limit(allowance: Allowance) -> str:
    """Refusal past the hourly lookup limit."""
    return wording.over_limit(MRKDWN, allowance)


def not_configured(detail: str) -> str:
    """A feature this installation is not configured for."""
    return wording.not_configured(MRKDWN, detail)


def auth0_failed(detail: str) -> str:
    """The Management API failed a live check."""
    return wording.auth0_failed(MRKDWN, detail)


def failed(detail: str) -> str:
    """A known error, in its own words."""
    return f"{MRKDWN.icons.warning} {detail}"


def internal_error(incident: str) -> str:
    """An unexpected error; the incident id is in the logs too."""
    return wording.internal_error(MRKDWN, incident)


# ---------------------------------------------------------------------------- /reindex

REINDEX_USAGE = wording.reindex_usage(MRKDWN, "/reindex")
STATUS_ICONS = {
    "queued": MRKDWN.icons.pending,
    "running": ":arrows_counterclockwise:",
    "succeeded": MRKDWN.icons.done,
    "failed": MRKDWN.icons.failed,
}


def requester(requested_by: str) -> str:
    """Who asked for a run: a Slack mention for `slack:U…`, else as recorded."""
    if requested_by.startswith("slack:"):
        who, _, rest = requested_by.removeprefix("slack:").partition(" ")
        return user(who) + (f" {rest}" if rest else "")
    return requested_by


def run_line(run: dict[str, Any] | None) -> str:
    """One run in a line, with who asked and its error."""
    if run is None:
        return NEVER
    line = wording.run_line(
        MRKDWN, run, requester(str(run["requested_by"])), run.get("error") or None
    )
    return f"{STATUS_ICONS.get(run['status'], '')} {line}"


def reindex_queued(run: dict[str, Any]) -> str:
    """A full sync was queued for this admin."""
    return wording.reindex_queued(MRKDWN, run, "/reindex status")


def reindex_pending(run: dict[str, Any]) -> str:
    """A full sync was already queued or running."""
    return wording.reindex_pending(MRKDWN, run, requester(str(run["requested_by"])))


def run_report(run: dict[str, Any], summary: dict[str, Any]) -> str:
    """How a full sync that an admin asked for ended, with its error."""
    return wording.run_report(MRKDWN, run, summary, run.get("error") or UNKNOWN)


# ---------------------------------------------------------------------------- overview

HOME_TITLE = f"{APP}: the phone index"
HOME_HOW = (
    "Type `/whois NUMBER` in any conversation to see every Auth0 account linked to a phone "
    "number. Answers are visible only to you."
)
HOME_NOT_YOURS = (
    ":lock: The phone index is not available to you. Agents and admins of this workspace see "
    "it here; ask an admin if you need it."
)
RUNS_TITLE = "Runs"


def index_size(doc: dict[str, Any]) -> str:
    """Accounts and numbers by kind, and a warning if MFA numbers came back masked."""
    line = wording.index_size(MRKDWN, doc)
    masked = int(doc.get("masked_mfa_numbers") or 0)
    if masked:
        line += (
            f"\n:warning: {plural(masked, 'MFA number')} came back masked: set the tenant flag "
            "`disable_management_api_sms_obfuscation`, then run `mfa-whois enrich --all`."
        )
    return line


def runs(doc: dict[str, Any]) -> str:
    """The running run, the queued one, the last of each kind and the last log-stream push."""
    lines = wording.run_lines(MRKDWN, doc, run_line)
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


def alert_headline(severity: str, title: str) -> str:
    """The first line of an alert."""
    return wording.alert_headline(MRKDWN, severity, MRKDWN.bold(title))


def alert_footer(key: str, at: str | None) -> str:
    """Which incident, and when."""
    return wording.alert_footer(MRKDWN, MRKDWN.code(key), at)
