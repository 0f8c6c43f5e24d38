"""Everything the command line says to people, in one voice."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from phoneindex.store import READ_FAILURES_SHOWN

HINT = "A number match is a routing hint, not proof of identity."
USAGE_EXAMPLES = "e.g. +1 (415) 555-0100, 415-555-0100, 00 44 20 7946 0958, tel:+14155550100"


def _when(stamp: str | None) -> str:
    return stamp.replace("T", " ").replace(":00Z", "Z") if stamp else "never"


def _link(phone: dict[str, Any]) -> str:
    parts = [phone["kind"]]
    if phone.get("method"):
        parts.append(phone["method"])
    if phone.get("confirmed") is True:
        parts.append("confirmed")
    elif phone.get("confirmed") is False:
        parts.append("unconfirmed")
    if phone.get("identity"):
        parts.append(f"of the linked identity {escape(str(phone['identity']))}")
    return f"{' '.join(parts)}, from {phone['source']} ({_when(phone.get('updated_at'))})"


def freshness_line(fresh: dict[str, Any]) -> str:
    """`index: last full sync ..., last update ...` with a STALE warning when it is."""
    line = (
        f"index: last full sync {_when(fresh.get('last_full_sync'))}, "
        f"last update {_when(fresh.get('last_update'))}"
    )
    return line + (" [bold red](STALE)[/]" if fresh.get("stale") else "")


def print_lookup(console: Console, doc: dict[str, Any]) -> None:
    """The lookup document for a person at a terminal."""
    accounts = doc["accounts"]
    count = f"{len(accounts)} account{'s' if len(accounts) != 1 else ''}"
    console.print(f"[bold]{escape(doc['phone'])}[/]: {count}")
    for acc in accounts:
        who = " ".join(
            escape(str(x))
            for x in (acc.get("name"), f"<{acc['email']}>" if acc.get("email") else None)
            if x
        )
        console.print(f"\n[bold cyan]{escape(acc['user_id'])}[/]  {who}")
        details = [
            f"connection {escape(acc.get('connection') or 'unknown')}",
            f"last login {_when(acc.get('last_login'))}",
        ]
        if acc.get("blocked"):
            details.append("[bold red]BLOCKED[/]")
        console.print("  " + " · ".join(details))
        for phone in acc["phones"]:
            console.print(f"  linked: {escape(_link(phone))}")
    console.print("\n" + freshness_line(doc["freshness"]))
    if accounts:
        console.print(f"[dim]{HINT}[/]")


def print_status(console: Console, doc: dict[str, Any]) -> None:
    """The status document for a person at a terminal."""
    numbers = doc["numbers"]
    console.print(
        f"accounts: {doc['accounts']:,}   numbers: {numbers['mfa']:,} mfa, "
        f"{numbers['passwordless']:,} passwordless, {numbers['profile']:,} profile"
    )
    if doc.get("masked_mfa_numbers"):
        console.print(
            f"[yellow]{doc['masked_mfa_numbers']:,} MFA numbers came back masked[/]: set the "
            "tenant flag disable_management_api_sms_obfuscation to true, then run "
            "`mfa-whois enrich --all`"
        )
    if doc.get("failing_reads"):
        console.print(
            f"[yellow]accounts whose reads keep failing: {doc['failing_reads']:,}[/] "
            f"({READ_FAILURES_SHOWN}+ failed reads in a row, each tried again after a backoff; "
            "the log names them)"
        )
    for label, key in (
        ("last full sync", "last_full_sync"),
        ("last enrich", "last_enrich"),
        ("last log sync", "last_incremental_sync"),
    ):
        console.print(f"{label}: {run_line(doc.get(key))}")
    console.print(f"last log-stream push: {push_line(doc.get('last_push'))}")
    console.print(f"last Action event: {action_line(doc.get('last_action'))}")
    if doc.get("data_as_of"):
        console.print(f"index data as of: {data_line(doc)}")
    running = doc.get("running")
    console.print(f"running: {run_line(running) if running else 'nothing'}")
    console.print(f"log checkpoint: {checkpoint_line(doc)}")
    stale = "[bold red]yes[/]" if doc.get("stale") else "no"
    console.print(f"stale: {stale}   last update: {_when(doc.get('last_update'))}")


def checkpoint_line(doc: dict[str, Any]) -> str:
    """The log checkpoint and how far behind the tenant's log the index may be."""
    checkpoint = doc.get("log_checkpoint")
    if checkpoint is None:
        return "none yet"
    where = escape(checkpoint) if checkpoint else "the start of the Auth0 log"
    age = doc.get("log_checkpoint_age_seconds")
    if age is None:
        return where
    return f"{where} (log events applied up to {_age(age)} ago)"


def _age(seconds: int) -> str:
    """A duration in its largest whole unit: `40 s`, `12 min`, `5 h`, `3 days`."""
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def run_line(run: dict[str, Any] | None) -> str:
    """One run in a few words."""
    if run is None:
        return "never"
    line = (
        f"#{run['id']} {run['status']} ({_when(run.get('started_at'))}, by {run['requested_by']})"
    )
    if run.get("error"):
        line += f": {escape(run['error'])}"
    return line


def push_line(push: dict[str, Any] | None) -> str:
    """The last log-stream delivery: when, how many events and changes, what was not mapped."""
    if not push:
        return "never"
    line = f"{_when(push.get('at'))}: {push.get('events', 0):,} events, "
    line += f"{push.get('changes', 0):,} changes"
    unmapped = push.get("unmapped_types") or {}
    if unmapped:
        ranked = sorted(unmapped.items(), key=lambda item: (-item[1], item[0]))
        line += "; not mapped: " + ", ".join(f"{name} {n:,}" for name, n in ranked[:4])
        line += f", +{len(ranked) - 4} more" if len(ranked) > 4 else ""
    if push.get("bad"):
        line += f"; {push['bad']:,} malformed events skipped"
    return escape(line)


def action_line(action: dict[str, Any] | None) -> str:
    """The last Action event: when, its type and changes, and the last 24 hours by type."""
    if not action:
        return "never"
    line = f"{_when(action.get('at'))}: {action.get('type')}, {action.get('changes', 0):,} changes"
    if action.get("reread"):
        line += ", account re-read queued"
    if action.get("withheld_numbers"):
        line += f", {action['withheld_numbers']:,} masked or unusable numbers not indexed"
    if action.get("ignored"):
        line += f" (ignored: {action['ignored']})"
    counts = action.get("events_24h") or {}
    if counts:
        line += "; last 24 h: " + ", ".join(f"{kind} {n:,}" for kind, n in counts.items())
    return escape(line)


def data_line(doc: dict[str, Any]) -> str:
    """When the index's last full sync was true, and where it came from."""
    source = doc.get("data_source") or "auth0"
    where = f"imported from the file {source[5:]}" if source.startswith("file:") else "Auth0 export"
    return f"{_when(doc.get('data_as_of'))} ({escape(where)})"


def import_summary(summary: str, as_of: str | None, given: bool) -> str:
    """The one line `mfa-whois import` prints."""
    whence = "--as-of" if given else "the file's modification time"
    return f"{summary}; data as of {_when(as_of)} ({whence})"


def enrich_summary(summary: str, slices: int) -> str:
    """The line after an enrichment done in time slices."""
    return f"MFA enrichment ({slices} slice{'s' if slices != 1 else ''}): {summary}"


def first_sync_queued(run_id: int) -> str:
    """What `serve`, `socket` and `clock` say when a fresh install gets its first full sync."""
    return (
        f"mfa-whois: no full sync from Auth0 yet: one is queued (run {run_id}) and starts now; "
        "watch it with `mfa-whois status`"
    )


CHECKPOINT_EXPIRED = (
    "mfa-whois: the log checkpoint was older than Auth0's log retention; a full sync is queued "
    "for the scheduler (or run `mfa-whois reindex` now)"
)


def phase_detail(phase: str, done: int, total: int) -> str:
    """The words beside a full sync's progress bar."""
    if phase == "export":
        return f"Auth0 export job {done}%"
    if phase == "download":
        return f"{done / 1e6:,.1f} MB"
    if phase == "import":
        return f"{done / 1e6:,.1f} of {total / 1e6:,.1f} MB" if total else ""
    return f"{done:,} of {total:,} accounts" if total else f"{done:,} accounts"


def clock_started(settings: Any) -> str:
    """What `mfa-whois clock` says when it starts."""
    polls = (
        f"logs every {settings.log_poll_seconds} s"
        if settings.log_poll_seconds
        else "no log polling (push only)"
    )
    return (
        f"mfa-whois clock: full sync on '{settings.full_sync_cron}' (UTC), {polls}; "
        "Ctrl-C or SIGTERM stops it"
    )


def serve_started(host: str, port: int, scheduler: bool, slack: bool) -> str:
    """What `mfa-whois serve` says when it starts."""
    parts = [
        f"mfa-whois serve: http://{host}:{port}",
        "Slack at /slack/events" if slack else "Slack off (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET)",
        "scheduler on" if scheduler else "scheduler off",
    ]
    return "; ".join(parts) + "; Ctrl-C or SIGTERM stops it"


def socket_started(scheduler: bool) -> str:
    """What `mfa-whois socket` says when it starts."""
    return (
        "mfa-whois socket: connecting to Slack over Socket Mode; "
        f"scheduler {'on' if scheduler else 'off'}; Ctrl-C or SIGTERM stops it"
    )


def print_audit(console: Console, entries: list[dict[str, Any]], since: str | None) -> None:
    """The audit trail for a person at a terminal, newest first."""
    if not entries:
        console.print("no lookups recorded" + (f" since {escape(since)}" if since else ""))
        return
    for entry in entries:
        count = entry["accounts"]
        console.print(
            f"{_when(entry['at'])}  {escape(str(entry['via'])):<13} "
            f"{escape(str(entry['actor'])):<16} {entry['phone_hash']}  "
            f"{count} account{'s' if count != 1 else ''}"
        )
    console.print(
        f"[dim]{len(entries)} lookups; numbers appear as keyed hashes (the same number gives "
        "the same hash)[/]"
    )
