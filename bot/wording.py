"""The words every chat surface says, written once; each surface's `texts` adds only its own.

Slack (mrkdwn) and Teams (markdown) say the same things and differ in markup: how emphasis is
written, which icons look right, how a time is shown to each reader, how paragraphs break. A
`Markup` carries those differences, and the functions here take one, so a wording change reaches
every surface at once and the surfaces cannot drift apart.

No value from the index or Auth0 is put into markup here. The few functions that can show one
(a linked identity, an error text) take it as an argument the surface has made safe (Slack
escapes it for mrkdwn), or go without it so the surface's renderer can show it as plain text
(Teams text runs). A phone number shown is the agent's own query in E.164; who asked for a run
is our own record of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from phoneindex.audit import Allowance

APP = "mfa-whois"
UNKNOWN = "unknown"
NEVER = "never"


@dataclass(frozen=True)
class Icons:
    """The icon a surface shows for each mood (Slack emoji codes, Unicode elsewhere)."""

    warning: str
    refused: str
    blocked: str
    over_limit: str
    pending: str
    done: str
    failed: str
    alarm: str
    bell: str


@dataclass(frozen=True)
class Markup:
    """How one surface writes emphasis, code, paragraphs, icons and times."""

    strong: str  # what goes either side of bold words
    paragraph: str  # what separates two paragraphs
    icons: Icons
    when: Callable[[str | None], str]  # an ISO timestamp as each reader should see it

    def bold(self, words: str) -> str:
        """`words` in bold."""
        return f"{self.strong}{words}{self.strong}"

    def code(self, words: str) -> str:
        """`words` in a monospace span (commands, ids)."""
        return f"`{words}`"


def plural(count: int, word: str) -> str:
    """`1 account`, `3 accounts`, `2 matches`."""
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {word}{'es' if word.endswith(('s', 'sh', 'ch', 'x', 'z')) else 's'}"


# ---------------------------------------------------------------------------- whois

VERIFY_LIVE = "Verify live"
SEARCH_LIVE = "Search live"
PREVIOUS = "◀ Previous"
NEXT = "Next ▶"
OPEN_IN_AUTH0 = "Open in Auth0"
NO_MATCH = "No account in the index has this number."
KINDS = {"mfa": "MFA phone", "passwordless": "passwordless login", "profile": "profile number"}
SOURCES = {
    "export": "Auth0 export",
    "authenticators": "MFA read",
    "logs": "Auth0 logs",
    "action": "Auth0 Action",
    "live": "live check",
}
METHODS = ("sms", "voice")


def identity_reminder(m: Markup) -> str:
    """Under every answer that found accounts: a match does not say who is calling."""
    return (
        f"A number match is a routing hint, {m.bold('not proof of identity')}: caller ID can be "
        "spoofed and numbers get recycled. Verify the caller as you always do."
    )


def no_match_hint(m: Markup) -> str:
    """Under an answer that found nothing: what the live search can and cannot find."""
    return (
        f"{m.bold(SEARCH_LIVE)} asks Auth0's user search, which finds passwordless and profile "
        "numbers only (MFA numbers are not searchable)."
    )


def usage(
    m: Markup,
    command: str,
    examples: Sequence[str],
    region: str,
    reason: str | None = None,
    also: str | None = None,
) -> str:
    """How to ask (`command` as the surface takes it, `also` what else it takes), after why the
    input was not usable if it was not."""
    typed = [m.code(f"{command} {example}") for example in examples]
    listed = f"{', '.join(typed[:-1])} or {typed[-1]}" if len(typed) > 1 else "".join(typed)
    hint = (
        f"{m.bold('Usage:')} {m.code(command + ' NUMBER')}, typed any common way, e.g. {listed}. "
        f"Numbers without a country code are read as {region} numbers."
    )
    if also:
        hint += f" {also}"
    if not reason:
        return hint
    return f"{m.icons.warning} That is not a usable phone number ({reason}).{m.paragraph}{hint}"


def matches(m: Markup, phone: str, count: int) -> str:
    """The first line of an answer."""
    return f"{m.bold(phone)}: {plural(count, 'account') if count else 'no account'}"


def page_of(first: int, last: int, total: int) -> str:
    """Which accounts this page shows."""
    return f"Accounts {first:,}–{last:,} of {total:,}, most recent login first."


def blocked(m: Markup) -> str:
    """The mark of a blocked account."""
    return f"{m.icons.blocked} {m.bold('Blocked')}"


def login(m: Markup, last_login: str | None, is_blocked: bool) -> str:
    """Last login, and blocked if it is."""
    line = f"Last login: {m.when(last_login)}"
    return f"{line} · {blocked(m)}" if is_blocked else line


def linked(m: Markup, phone: dict[str, Any], identity: str | None = None) -> str:
    """How one account is linked to the number: kind, method, confirmed, identity, source, when.

    Kind, method and source are shown only as our own words (a value outside the contract's
    vocabulary reads "other"); `identity` is shown only if the surface passes it, made safe.
    """
    kind = KINDS.get(phone["kind"], "other")
    traits = [str(phone["method"]).upper()] if phone.get("method") in METHODS else []
    if phone.get("confirmed") is True:
        traits.append("confirmed")
    elif phone.get("confirmed") is False:
        traits.append("unconfirmed")
    what = f"{kind} ({', '.join(traits)})" if traits else kind
    of = f" of the linked identity {m.code(identity)}" if identity else ""
    source = SOURCES.get(phone["source"], "other source")
    return f"Linked as {m.bold(what)}{of}, from {source}, {m.when(phone.get('updated_at'))}"


def freshness(m: Markup, fresh: dict[str, Any]) -> str:
    """How fresh the index is."""
    line = (
        f"Index: last full sync {m.when(fresh.get('last_full_sync'))}, "
        f"last update {m.when(fresh.get('last_update'))}"
    )
    if fresh.get("stale"):
        line += f" · {m.icons.warning} {m.bold('stale')}: no successful full sync for too long"
    return line


def live_note(m: Markup, live: dict[str, Any], kind: str | None, error: str | None = None) -> str:
    """What a live check did; `error` (made safe) follows the count of accounts not checked."""
    search = kind == "search"
    what = "Searched Auth0 users" if search else "Checked with Auth0"
    counted = plural(int(live.get("checked", 0)), "match" if search else "account")
    parts = [
        f"{what} {m.when(live.get('checked_at'))}",
        f"{counted} {'found' if search else 're-read'}",
    ]
    if live.get("deleted"):
        parts.append(f"{plural(int(live['deleted']), 'account')} no longer in Auth0")
    if live.get("errors"):
        detail = f" ({error})" if error is not None else ""
        parts.append(f"{m.icons.warning} {int(live['errors']):,} not checked{detail}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------- refusals, errors


def not_an_agent(m: Markup, whose_id: str, variable: str) -> str:
    """Refusal to someone who is not an agent: which id of theirs goes into which setting."""
    return (
        f"{m.icons.refused} You are not on the list of agents who may look numbers up. Ask an "
        f"admin to add your {whose_id} to {variable}."
    )


def not_an_admin(m: Markup, doing: str, variable: str) -> str:
    """Refusal of a reindex to someone who is not an admin."""
    return f"{m.icons.refused} Only {APP} admins may {doing} ({variable})."


def bad_button(ask_again: str) -> str:
    """A button that no current answer carries."""
    return f"That button does not belong to a current answer; {ask_again} again."


def database_busy(m: Markup) -> str:
    """The index database did not answer."""
    return (
        f"{m.icons.warning} The index database is busy or unreachable right now; try again in a "
        "minute."
    )


def over_limit(m: Markup, allowance: Allowance) -> str:
    """Refusal past the hourly lookup limit."""
    minutes = max(1, math.ceil(allowance.retry_after_seconds / 60))
    return (
        f"{m.icons.over_limit} You have made {plural(allowance.used, 'lookup')} in the last "
        f"hour; the limit is {allowance.limit:,}. Try again in {plural(minutes, 'minute')}. "
        "Supervisors have been told."
    )


def not_configured(m: Markup, detail: str) -> str:
    """A feature this installation is not configured for."""
    return f"{m.icons.warning} Not available here: {detail}."


def auth0_failed(m: Markup, detail: str | None = None) -> str:
    """The Management API failed a live check; `detail` (made safe) says how, if shown."""
    how = f": {detail}" if detail is not None else ""
    return f"{m.icons.warning} Auth0 did not answer the live check{how}. The index answer stands."


def internal_error(m: Markup, incident: str) -> str:
    """An unexpected error; the incident id is in the logs too."""
    return (
        f"{m.icons.warning} Something went wrong on our side (incident {m.code(incident)}); "
        "it is logged."
    )


# ---------------------------------------------------------------------------- reindex, status

STATUS_TITLE = "Full sync status"
LAST_RUNS = (
    ("Last full sync", "last_full_sync"),
    ("Last MFA enrichment", "last_enrich"),
    ("Last log sync", "last_incremental_sync"),
)


def reindex_usage(m: Markup, command: str) -> str:
    """How to ask for a full sync (`command` as the surface takes it)."""
    return (
        f"{m.bold('Usage:')} {m.code(command)} queues a full sync (Auth0 export, import, MFA "
        f"numbers); {m.code(command + ' status')} shows the running or last runs."
    )


def reindex_queued(m: Markup, run: dict[str, Any], status_command: str) -> str:
    """A full sync was queued for this admin."""
    return (
        f"{m.icons.done} Full sync #{run['id']} is queued; the scheduler starts it within "
        f"seconds. I will message you when it ends; {m.code(status_command)} shows how it goes."
    )


def reindex_pending(m: Markup, run: dict[str, Any], asked_by: str | None = None) -> str:
    """A full sync was already queued or running; `asked_by` (made safe) is who asked, if shown."""
    who = f", asked by {asked_by}" if asked_by is not None else ""
    return (
        f"{m.icons.pending} A full sync is already {run['status']} (#{run['id']}{who}). "
        "I will message you when it ends."
    )


def run_report(
    m: Markup, run: dict[str, Any], summary: dict[str, Any], error: str | None = None
) -> str:
    """How a full sync that an admin asked for ended; `error` (made safe) is said if given,
    else the admin is told where to read it."""
    if run["status"] == "succeeded":
        numbers = summary.get("numbers", {})
        return (
            f"{m.icons.done} Full sync #{run['id']} succeeded. The index now holds "
            f"{plural(int(summary.get('accounts', 0)), 'account')} and "
            f"{plural(sum(int(n) for n in numbers.values()), 'number')}."
        )
    if error is not None:
        return (
            f"{m.icons.failed} Full sync #{run['id']} failed: {error}. The index is unchanged; "
            "supervisors get an alert."
        )
    return (
        f"{m.icons.failed} Full sync #{run['id']} failed. The index is unchanged; supervisors "
        f"get an alert, and {m.code(APP + ' status')} shows the error."
    )


def run_line(
    m: Markup, run: dict[str, Any], asked_by: str | None = None, error: str | None = None
) -> str:
    """One run in a line: id, status, started, who asked (if shown), ended, error (if shown)."""
    line = f"#{run['id']} {run['status']} {m.when(run.get('started_at'))}"
    if asked_by is not None:
        line += f", asked by {asked_by}"
    if run.get("finished_at") and run["status"] != "queued":
        line += f", ended {m.when(run['finished_at'])}"
    if error:
        line += f": {error}"
    return line


def run_lines(m: Markup, doc: dict[str, Any], line: Callable[[dict[str, Any]], str]) -> list[str]:
    """The running run, the queued one and the last of each kind, each as `line` says it."""
    lines = [f"{m.bold('Running:')} {line(doc['running']) if doc.get('running') else 'nothing'}"]
    if doc.get("queued"):
        lines.append(f"{m.bold('Queued:')} {line(doc['queued'])}")
    for label, key in LAST_RUNS:
        run = doc.get(key)
        lines.append(f"{m.bold(label + ':')} {line(run) if run else NEVER}")
    return lines


def index_size(m: Markup, doc: dict[str, Any]) -> str:
    """Accounts and numbers by kind."""
    numbers = doc.get("numbers", {})
    return (
        f"{m.bold(plural(int(doc.get('accounts', 0)), 'account'))} · numbers: "
        f"{int(numbers.get('mfa', 0)):,} MFA, {int(numbers.get('passwordless', 0)):,} "
        f"passwordless, {int(numbers.get('profile', 0)):,} profile"
    )


# ---------------------------------------------------------------------------- alerts


def alert_icon(m: Markup, severity: str) -> str:
    """The icon of an alert's severity (a bell for any other)."""
    icons = {"failure": m.icons.alarm, "warning": m.icons.warning, "recovery": m.icons.done}
    return icons.get(severity, m.icons.bell)


def alert_headline(m: Markup, severity: str, title: str) -> str:
    """The first line of an alert (`title` already made safe and free of full numbers)."""
    return f"{alert_icon(m, severity)} {title}"


def alert_footer(m: Markup, key: str, at: str | None) -> str:
    """Which incident (`key` as the surface shows it), and when."""
    return f"{APP} · incident {key} · {m.when(at)}"
