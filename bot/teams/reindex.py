"""Tells the admins who asked for a full sync in Teams how it ended, in their personal chat.

The run is polled every few seconds (for at most a day and a bit) from this process, whichever
process runs the scheduler; a restart of this process loses the report, not the run:
`reindex status` still shows it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from bot.teams import render, texts
from bot.teams.connector import Connector
from jobs.runs import Runs
from phoneindex.store import Store

log = logging.getLogger(__name__)

FINISHED = frozenset({"succeeded", "failed"})

Chat = tuple[str, str]  # (serviceUrl, conversation id) of an admin's personal chat


class RunReporter:
    """Watches full syncs asked for in Teams and reports their end to whoever asked."""

    def __init__(
        self,
        runs: Runs,
        store: Store,
        connector: Connector,
        *,
        poll_seconds: float = 5.0,
        max_watch: timedelta = timedelta(hours=26),
    ) -> None:
        self.runs = runs
        self.store = store
        self.connector = connector
        self.poll_seconds = poll_seconds
        self.max_watch = max_watch
        self._chats: dict[int, set[Chat]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def watch(self, run_id: int, chat: Chat) -> None:
        """Report run `run_id` to `chat` when it ends (call from the event loop)."""
        first = run_id not in self._chats
        self._chats.setdefault(run_id, set()).add(chat)
        if first:
            task = asyncio.get_running_loop().create_task(self._poll(run_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _poll(self, run_id: int) -> None:
        deadline = time.monotonic() + self.max_watch.total_seconds()
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(self.poll_seconds)
                run = await asyncio.to_thread(self.runs.get, run_id)
                if run is None or run["status"] in FINISHED:
                    if run is not None:
                        await self._report(run)
                    return
            log.info("stopped watching run %s after %s", run_id, self.max_watch)
        finally:
            self._chats.pop(run_id, None)

    async def _report(self, run: dict[str, Any]) -> None:
        summary = await asyncio.to_thread(self.store.summary)
        reply = render.message(texts.run_report(run, summary))
        for service_url, conversation_id in sorted(self._chats.get(int(run["id"]), ())):
            try:
                await self.connector.send(service_url, conversation_id, reply)
            except Exception as exc:
                log.warning("could not report full sync %s to Teams: %s", run["id"], exc)

    async def aclose(self) -> None:
        """Stop watching (reports not sent yet are lost; the runs themselves go on)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
