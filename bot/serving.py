"""The long-running processes' assembly: the web app with its Slack, Teams and API pieces
sharing one Answers, the scheduler embedded in `serve` and `socket`, and `serve --workers N`'s
worker processes (uvicorn's app factory, `bot.serving:worker_app`)."""

from __future__ import annotations

import atexit
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from bot import cli_render as say
from bot.context import Context, notifier
from jobs.httplog import redact_httpx_logs
from jobs.logmask import mask_error_logs
from phoneindex.errors import ConfigError
from phoneindex.settings import load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bot.answers import Answers
    from bot.slack.context import SlackContext
    from bot.teams.context import TeamsContext
    from jobs.schedule import Deps

err = Console(stderr=True, highlight=False, soft_wrap=True)
WORKER_APP = f"{__name__}:worker_app"


WORKER_LOG_LEVEL = "MFA_WHOIS_WORKER_LOG_LEVEL"  # set by `serve` for its worker processes


def worker_app() -> FastAPI:
    """One worker process of `serve --workers N` (uvicorn's app factory): the web app alone."""
    from bot.accesslog import mask_access_log

    logging.basicConfig(
        level=int(os.environ.get(WORKER_LOG_LEVEL, logging.WARNING)),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    mask_access_log()
    redact_httpx_logs()
    mask_error_logs()
    web, _, _ = web_app(Context(load_settings()), None, build=True)
    assert web is not None
    return web


def web_app(
    c: Context, embedded: Embedded | None, *, build: bool
) -> tuple[FastAPI | None, bool, bool]:
    """The web app (None unless `build`: configuration checked only), Slack on, Teams on.

    One Answers (limits, audit trail, alerts) serves Slack, Teams and the API in the process.
    """
    from bot.teams.context import teams_configured
    from bot.web import create_app, slack_configured

    on_teams = teams_configured(c.settings)  # half-configured Teams stops here, in one line
    on_slack = slack_configured(c.settings)
    if not build:
        return None, on_slack, on_teams
    slack = slack_context(c, embedded) if on_slack else None
    wanted = on_teams or bool(c.settings.api_key_entries)
    answers = slack.answers if slack else (answers_for(c, embedded) if wanted else None)
    teams = teams_context(c, embedded, answers) if on_teams else None
    web = create_app(c.settings, store=c.store, slack=slack, teams=teams, answers=answers)
    _freeze_startup_heap()
    return web, on_slack, on_teams


def _freeze_startup_heap() -> None:
    """Leave what start-up built (~150,000 objects: modules, phone metadata, the app) out of the
    garbage collector's full passes: each took 35-60 ms, and every request in flight waited."""
    import gc

    gc.collect()
    gc.freeze()


def metrics_dir() -> None:
    """PROMETHEUS_MULTIPROC_DIR for the workers: as set (emptied), else a fresh directory."""
    import shutil
    import tempfile

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        for stale in Path(given).glob("*.db"):  # counters of an earlier run
            stale.unlink()
        return
    made = tempfile.mkdtemp(prefix="mfa-whois-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    atexit.register(shutil.rmtree, made, True)


async def socket_mode(slack: SlackContext) -> None:
    """Connect to Slack over a WebSocket and serve until cancelled."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.slack.app import build_app

    token = slack.settings.slack_app_token
    assert token is not None
    bolt = build_app(slack)
    handler = AsyncSocketModeHandler(bolt, token.get_secret_value())
    try:
        await handler.start_async()  # type: ignore[no-untyped-call]
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await slack.aclose()


@dataclass
class Embedded:
    """The scheduler run inside this process, and what its jobs share."""

    deps: Deps
    scheduler: Any


def embedded(c: Context, *, wanted: bool) -> Embedded | None:
    """The in-process scheduler, when wanted and Auth0 is configured (else logged why not)."""
    from jobs.schedule import build_scheduler

    if not wanted:
        return None
    try:
        c.settings.require("auth0_domain", "auth0_client_id", "auth0_client_secret")
    except ConfigError as exc:
        logging.getLogger("mfa-whois").warning("scheduler not started: %s", exc)
        return None
    deps = c.deps()
    return Embedded(deps, build_scheduler(c.settings, deps, blocking=False))


def slack_context(c: Context, embedded: Embedded | None) -> SlackContext:
    """The Slack pieces, sharing this process's runs, alerts and Auth0 client."""
    from bot.slack.context import SlackContext
    from jobs.alerts import Alerts

    deps = embedded.deps if embedded else None
    slack = SlackContext.build(
        c.settings,
        c.store,
        runs=c.runs,
        alerts=deps.alerts if deps else Alerts(c.store, notifier(c.settings)),
        auth0=deps.client if deps else None,
        scheduler_embedded=embedded is not None,
    )
    if deps is not None:  # the scheduler reports the runs admins asked for as soon as they end
        deps.on_full_sync_end = slack.reporter.on_full_sync_end
        # and ends over-limit incidents knowing the refusals still waiting to be written
        deps.recent_refusal = slack.answers.trail.recent_refusal
    return slack


def answers_for(c: Context, embedded: Embedded | None) -> Answers:
    """The chat and API rules without Slack, sharing this process's alerts and Auth0 client."""
    from bot.answers import Answers
    from jobs.alerts import Alerts

    deps = embedded.deps if embedded else None
    answers = Answers.build(
        c.settings,
        c.store,
        deps.alerts if deps else Alerts(c.store, notifier(c.settings)),
        runs=c.runs,
        auth0=deps.client if deps else None,
    )
    if deps is not None:  # over-limit incidents end knowing the refusals not yet written
        deps.recent_refusal = answers.trail.recent_refusal
    return answers


def teams_context(c: Context, embedded: Embedded | None, answers: Answers | None) -> TeamsContext:
    """The Teams pieces, sharing this process's answers, runs, alerts and Auth0 client."""
    from bot.teams.context import TeamsContext
    from jobs.alerts import Alerts

    deps = embedded.deps if embedded else None
    alerts = deps.alerts if deps else None
    if answers is None and alerts is None:  # answers given: they carry the alerts already
        alerts = Alerts(c.store, notifier(c.settings))
    return TeamsContext.build(
        c.settings,
        c.store,
        answers=answers,
        runs=c.runs,
        alerts=alerts,
        auth0=deps.client if deps else None,
    )


@contextmanager
def scheduler_running(embedded: Embedded | None) -> Iterator[None]:
    """Run the scheduler (if any) around the block; stop it cleanly afterwards.

    A fresh install (no full sync from Auth0 yet) gets one at once, not at the next cron time.
    """
    from jobs.schedule import queue_first_full_sync

    if embedded is None:
        yield
        return
    first = queue_first_full_sync(embedded.deps)
    if first is not None:
        err.print(say.first_sync_queued(first.id), markup=False)
    embedded.scheduler.start()
    try:
        yield
    finally:
        embedded.deps.stopping.set()  # running jobs end at their next wait and close their runs
        embedded.scheduler.shutdown(wait=True)
        embedded.deps.close()
