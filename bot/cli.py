"""`mfa-whois`: the command line.

Exit codes: 0 done (lookup: at least one account), 1 lookup found no account, 2 bad input
(unusable number, unreadable file, bad configuration or arguments), 3 the work failed.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from bot import cli_render as say
from bot.context import Context
from jobs.httplog import redact_httpx_logs
from jobs.logmask import mask_error_logs
from phoneindex.errors import ConfigError, ImportFileError, UnusableNumber, WhoisError
from phoneindex.numbers import to_e164
from phoneindex.settings import load_settings
from phoneindex.store import iso

if TYPE_CHECKING:
    from jobs.schedule import Deps

EXIT_NO_MATCH = 1
EXIT_BAD_INPUT = 2
EXIT_FAILED = 3

app = typer.Typer(
    name="mfa-whois",
    help="Which Auth0 account(s) does this phone number belong to?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.callback()
def _setup(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact_httpx_logs()  # e.g. a Workflows webhook URL's signature, with -v
    mask_error_logs()  # e.g. a database error quoting a row with its number
    ctx.obj = Context(load_settings())


def _ctx(ctx: typer.Context) -> Context:
    obj = ctx.obj
    assert isinstance(obj, Context)
    return obj


@contextmanager
def _progress(
    label: str, *, bytes_: bool = False, rate: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal; silence otherwise (the summary line says the rest)."""
    if not err.is_terminal:
        yield lambda _done, _total: None
        return
    columns: list[Any] = [TextColumn(label), BarColumn()]
    columns += [DownloadColumn()] if bytes_ else [MofNCompleteColumn()]
    if rate:
        columns.append(_RateColumn())
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


class _RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s", style="progress.data.speed")


@contextmanager
def _phases() -> Iterator[Callable[[str, int, int], None]]:
    """Progress of a full sync, one bar per phase (export, download, import, enrich)."""
    if not err.is_terminal:
        yield lambda _phase, _done, _total: None
        return
    columns = [
        TextColumn("{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
    ]
    with Progress(*columns, TimeRemainingColumn(), console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=None, detail="")
            detail = say.phase_detail(phase, done, total)
            bar.update(tasks[phase], completed=done, total=total or None, detail=detail)

        yield update


@contextmanager
def _download_errors() -> Iterator[None]:
    """A broken downloaded export is a failed sync (exit 3), not bad input from the user."""
    try:
        yield
    except ImportFileError as exc:
        raise WhoisError(f"the downloaded Auth0 export is unusable: {exc}") from None


@contextmanager
def _closing(deps: Deps) -> Iterator[None]:
    """Close the shared Auth0 client when the command ends."""
    try:
        yield
    finally:
        deps.close()


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Auth0 export: .json/.ndjson or .csv, maybe .gz")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="When the export was taken (ISO date or time, UTC); default: the file's "
            "modification time.",
        ),
    ] = None,
) -> None:
    """Replace the index's accounts and passwordless/profile numbers with an export file's."""
    from jobs.reindex import import_file

    c = _ctx(ctx)
    if not file.is_file():
        raise ImportFileError(str(file), None, "no such file")
    observed_at, given = _observed_at(file, as_of)
    with _progress("importing", bytes_=True) as progress:
        result = import_file(
            c.store,
            c.runs,
            file,
            observed_at=observed_at,
            default_region=c.settings.default_region,
            progress=progress,
        )
    out.print(say.import_summary(result.summary(), iso(observed_at), given), markup=False)


def _observed_at(file: Path, as_of: str | None) -> tuple[datetime, bool]:
    """When the export's data was true: `--as-of`, else the file's modification time."""
    now = datetime.now(UTC)
    if as_of is not None:
        when = _parse_time(as_of, "--as-of")
        if when > now:
            raise typer.BadParameter(f"{as_of!r} is in the future", param_hint="'--as-of'")
        return when, True
    modified = datetime.fromtimestamp(file.stat().st_mtime, UTC)
    return min(modified, now), False


@app.command()
def lookup(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The phone number, typed any common way.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the lookup document.")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Also confirm each account with the Management API.")
    ] = False,
) -> None:
    """Print every account linked to NUMBER (exit 0 found, 1 none, 2 not a usable number)."""
    c = _ctx(ctx)
    phone = to_e164(number, c.settings.default_region)
    if live:
        from jobs.live import live_lookup, live_search

        deps = c.deps()
        with _closing(deps):
            doc = live_lookup(c.store, deps.client(), phone, query=number)
            if not doc["accounts"]:  # maybe a passwordless/profile number newer than the index
                doc = live_search(c.store, deps.client(), phone, query=number)
        actor = f"cli:{getpass.getuser()}"
        c.audit().record(actor=actor, via="cli-live", phone=phone, accounts=len(doc["accounts"]))
    else:
        doc = c.store.lookup(phone, query=number)
    if as_json:
        out.print_json(json.dumps(doc)) if out.is_terminal else print(json.dumps(doc))
    else:
        say.print_lookup(out, doc)
    if not doc["accounts"]:
        raise typer.Exit(EXIT_NO_MATCH)


@app.command()
def reindex(
    ctx: typer.Context,
    no_enrich: Annotated[
        bool, typer.Option("--no-enrich", help="Skip reading MFA numbers after the import.")
    ] = False,
) -> None:
    """Full sync now: Auth0 export job, download, atomic import, then MFA enrichment.

    The import holds the writer lease; enrichment follows in the scheduler's time slices,
    giving the lease back between them so log syncs take their turns.
    """
    from jobs.schedule import enrich_in_slices, run_full_sync

    deps = _ctx(ctx).deps()
    with _phases() as progress, _closing(deps), _download_errors():
        result = run_full_sync(deps, "cli", enrich=False, progress=progress)
        out.print(result.summary(), markup=False)
        if not no_enrich:
            enriched, slices = enrich_in_slices(
                deps, "cli", progress=lambda done, total: progress("enrich", done, total)
            )
            out.print(say.enrich_summary(enriched.summary(), slices), markup=False)


@app.command()
def enrich(
    ctx: typer.Context,
    everything: Annotated[
        bool, typer.Option("--all", help="Re-read every account with MFA, not just changed ones.")
    ] = False,
) -> None:
    """Read MFA numbers of accounts whose MFA changed (paced, resumable, in time slices)."""
    from jobs.schedule import enrich_in_slices

    deps = _ctx(ctx).deps()
    with _progress("reading MFA numbers", rate=True) as progress, _closing(deps):
        result, slices = enrich_in_slices(deps, "cli", everything=everything, progress=progress)
    out.print(say.enrich_summary(result.summary(), slices), markup=False)


@app.command()
def sync(ctx: typer.Context) -> None:
    """One incremental pass over Auth0 logs since the stored checkpoint."""
    from jobs.schedule import incremental_sync

    deps = _ctx(ctx).deps()
    with _closing(deps):
        result = incremental_sync(deps, "cli")
    out.print(result.summary())
    if result.needs_full_sync:
        err.print(say.CHECKPOINT_EXPIRED, markup=False)


@app.command()
def clock(
    ctx: typer.Context,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Also serve GET /metrics on this port (the scheduler's Auth0 requests and "
            "budget, and the index's numbers), for Prometheus.",
        ),
    ] = None,
) -> None:
    """Run the scheduler alone: full syncs, log pulls, re-fetches, staleness checks."""
    from jobs.schedule import queue_first_full_sync, run_clock

    c = _ctx(ctx)
    deps = c.deps()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from bot.metrics import registry_for

        start_http_server(metrics_port, registry=registry_for(c.store))
    err.print(say.clock_started(deps.settings), markup=False)
    first = queue_first_full_sync(deps)
    if first is not None:
        err.print(say.first_sync_queued(first.id), markup=False)
    run_clock(deps.settings, deps)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[
        int, typer.Option(envvar="PORT", help="Port (default: $PORT, else 8000).")
    ] = 8000,
    no_scheduler: Annotated[
        bool, typer.Option("--no-scheduler", help="Serve only; run `mfa-whois clock` elsewhere.")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the port, each with its own connection pool; the "
            "scheduler, if any, stays in the main process.",
        ),
    ] = 1,
) -> None:
    """The HTTP service (Slack, Teams, the lookup API, hooks, /healthz, /metrics); also the
    scheduler by default."""
    import uvicorn

    from bot import serving
    from bot.accesslog import mask_access_log
    from bot.http11 import NoDelayHttpProtocol

    c = _ctx(ctx)
    if workers > 1:  # before anything counts: every process's metrics go to one directory
        serving.metrics_dir()
    embedded = serving.embedded(c, wanted=not no_scheduler)
    web, slack_on, teams_on = serving.web_app(c, embedded, build=workers == 1)
    started = say.serve_started(host, port, embedded is not None, slack_on, teams_on)
    err.print(started + (f"; {workers} workers" if workers > 1 else ""), markup=False)
    quiet = logging.getLogger().getEffectiveLevel() > logging.INFO
    level = "warning" if quiet else "info"
    os.environ[serving.WORKER_LOG_LEVEL] = str(logging.getLogger().getEffectiveLevel())
    mask_access_log()  # no phone number in the access log, e.g. from GET ...?phone=
    with serving.scheduler_running(embedded):
        try:
            options: dict[str, Any] = {"host": host, "port": port, "log_level": level}
            options["http"] = NoDelayHttpProtocol
            if web is not None:
                uvicorn.run(web, **options)
            else:  # each worker builds the app itself: bot.serving:worker_app
                uvicorn.run(serving.WORKER_APP, factory=True, workers=workers, **options)
        except KeyboardInterrupt:
            pass  # uvicorn passes the stop signal on after its graceful shutdown


@app.command("socket")
def socket_mode(ctx: typer.Context) -> None:
    """Slack over Socket Mode (no public URL needed) plus the scheduler."""
    import asyncio

    from bot import serving

    c = _ctx(ctx)
    c.settings.require("slack_bot_token", "slack_app_token")
    embedded = serving.embedded(c, wanted=True)
    slack = serving.slack_context(c, embedded)
    err.print(say.socket_started(embedded is not None), markup=False)
    with serving.scheduler_running(embedded):
        try:
            asyncio.run(serving.socket_mode(slack))
        except KeyboardInterrupt:
            pass


@app.command()
def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Only entries at or after this ISO date or time (UTC).")
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only lookups by this actor (Slack user id, key name...).")
    ] = None,
    phone: Annotated[
        str | None,
        typer.Option(help="Only lookups of this number (typed any way; matched by its hash)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The lookup audit trail, newest first (keyed hashes of numbers, never the numbers)."""
    c = _ctx(ctx)
    trail = c.audit()
    # Parsed like a lookup, then hashed with the trail's key: the query never holds the number.
    hashed = None if phone is None else trail.phone_hash(to_e164(phone, c.settings.default_region))
    entries = trail.entries(since=_since(since), actor=actor, phone_hash=hashed)
    if as_json:
        for entry in entries:
            print(json.dumps(entry))
    else:
        say.print_audit(out, entries, since, actor=actor, number=phone is not None)


def _since(text: str | None) -> datetime | None:
    """`--since` as an aware UTC datetime (a date or a time without zone is taken as UTC)."""
    return None if text is None else _parse_time(text, "--since")


def _parse_time(text: str, option: str) -> datetime:
    """An ISO date or time option as an aware UTC datetime (no zone given: UTC)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO date or time (e.g. 2026-11-27 or 2026-11-27T09:00Z)",
            param_hint=f"'{option}'",
        ) from None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@app.command("teams-package")
def teams_package(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="The service's public https URL.")],
    zip_path: Annotated[Path, typer.Option("--out", help="Where to write the zip.")] = Path(
        "mfa-whois-teams.zip"
    ),
) -> None:
    """Write the Teams app package (manifest with TEAMS_APP_ID and URL filled in, icons)."""
    from bot.teams.package import public_host, write_package

    settings = _ctx(ctx).settings
    settings.require("teams_app_id")
    assert settings.teams_app_id is not None
    try:
        public_host(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--url'") from None
    written = write_package(zip_path, settings.teams_app_id, url)
    out.print(say.teams_package_written(str(written), url), markup=False)


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status document.")] = False,
) -> None:
    """Index size, last syncs and their outcome, staleness, the log checkpoint."""
    doc = _ctx(ctx).runs.status_document()
    if as_json:
        print(json.dumps(doc))
    else:
        say.print_status(out, doc)


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Create or upgrade the database schema (the Procfile's release step)."""
    c = _ctx(ctx)
    c.store  # noqa: B018  (opening the database creates or migrates the schema)
    out.print("database schema is up to date")


def _exit_code(exc: WhoisError) -> int:
    if isinstance(exc, UnusableNumber | ImportFileError | ConfigError):
        return EXIT_BAD_INPUT
    return EXIT_FAILED


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # a deploy's SIGTERM stops long work like Ctrl-C: cleanly


def main() -> None:
    """Entry point: one error boundary, one line per error, never a traceback."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()  # click handles usage errors (exit 2) and exits itself on success
    except WhoisError as exc:
        prefix = "not a usable phone number: " if isinstance(exc, UnusableNumber) else "error: "
        err.print(f"mfa-whois: {prefix}{exc}", markup=False, highlight=False)
        sys.exit(_exit_code(exc))
    except KeyboardInterrupt:
        err.print("mfa-whois: interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:  # the boundary: unknown errors are one line too
        logging.getLogger("mfa-whois").info("unexpected error", exc_info=True)
        err.print(f"mfa-whois: internal error ({type(exc).__name__}); run with -v for details")
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
