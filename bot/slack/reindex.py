"""/reindex: queue a full sync for the scheduler, show its status, report how it ended.

How the admin hears back (RunReporter): when the scheduler runs in this process
(`mfa-whois serve` without --no-scheduler, `mfa-whois socket`), it calls
`on_full_sync_end` as soon as the run ends. When it runs elsewhere (`web` + `clock` in the
Procfile), this process polls the run every few seconds, for a bounded time. Either way the
report goes to whoever asked (`requested_by` is `slack:<user id>`) as a direct message. A restart
of this process while polling loses the report, not the run: `/reindex status` still shows it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.slack.render import run_report
from jobs.runs import Runs
from phoneindex.store import Store

log = logging.getLogger(__name__)

REQUESTER_PREFIX = "slack:"
FINISHED = frozenset({"succeeded", "failed"})
_REMEMBERED = 1000  # reported run ids kept to avoid a second report

Request = Literal["queue", "status", "usage"]


def parse(text: str) -> Request:
    """What `/reindex TEXT` asks for."""
    words = text.strip().lower()
    if not words:
        return "queue"
    return "status" if words == "status" else "usage"


def requester(requested: str | None) -> str | None:
    """The Slack user id in a run's `requested_by`, if a Slack user asked for it."""
    if not requested or not requested.startswith(REQUESTER_PREFIX):
        return None
    user = requested.removeprefix(REQUESTER_PREFIX).split(" ", 1)[0]
    return user if user.isalnum() else None


class RunReporter:
    """Tells the admins who asked for a full sync how it ended, by direct message."""

    def __init__(
        self,
        runs: Runs,
        store: Store,
        client: WebClient | None,
        *,
        polling: bool,
        poll_seconds: float = 5.0,
        max_watch: timedelta = timedelta(hours=26),
    ) -> None:
        self.runs = runs
        self.store = store
        self.client = client
        self.polling = polling
        self.poll_seconds = poll_seconds
        self.max_watch = max_watch
        self._watchers: dict[int, set[str]] = {}
        self._reported: dict[int, None] = {}
        self._polled: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()

    def watch(self, run_id: int, user_id: str) -> None:
        """Report run `run_id` to `user_id` when it ends (call from the event loop)."""
        with self._lock:
            self._watchers.setdefault(run_id, set()).add(user_id)
            start = self.polling and run_id not in self._polled
            self._polled.add(run_id)
        if start:
            task = asyncio.get_running_loop().create_task(self._poll(run_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def on_full_sync_end(self, run: dict[str, Any]) -> None:
        """The scheduler's Deps.on_full_sync_end hook: report a finished run (worker thread)."""
        users = self._take(run)
        if users:
            text = run_report(run, self.store.summary())
            for user in sorted(users):
                self._post(user, text)

    async def aclose(self) -> None:
        """Stop polling (reports not sent yet are lost; the runs themselves go on)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _poll(self, run_id: int) -> None:
        deadline = time.monotonic() + self.max_watch.total_seconds()
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll_seconds)
            run = await asyncio.to_thread(self.runs.get, run_id)
            if run is None:
                log.warning("run %s disappeared; not reporting it", run_id)
                return
            if run["status"] in FINISHED:
                await asyncio.to_thread(self.on_full_sync_end, run)
                return
        log.info("stopped watching run %s after %s", run_id, self.max_watch)

    def _take(self, run: dict[str, Any]) -> set[str]:
        """Who to tell about `run`; empty if it was reported already."""
        run_id = int(run["id"])
        with self._lock:
            if run_id in self._reported:
                return set()
            self._reported[run_id] = None
            while len(self._reported) > _REMEMBERED:
                del self._reported[next(iter(self._reported))]
            users = self._watchers.pop(run_id, set())
            self._polled.discard(run_id)
        asker = requester(run.get("requested_by"))
        return users | {asker} if asker else users

    def _post(self, user_id: str, message: dict[str, Any]) -> None:
        if self.client is None:
            log.warning("cannot report run to %s: SLACK_BOT_TOKEN is not set", user_id)
            return
        try:
            self.client.chat_postMessage(channel=user_id, **message)
        except (SlackClientError, OSError) as exc:
            log.warning("could not report a full sync to %s: %s", user_id, type(exc).__name__)
