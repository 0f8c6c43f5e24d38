"""Another process's scheduler trying to pull logs all along: who may take the writer lease."""

from __future__ import annotations

import threading
import time

from jobs.runs import AlreadyRunning, Busy, Runs


class LogSyncContender:
    """Tries `runs.exclusive("incremental")` every 10 ms from `start()` to `stop()`."""

    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self.taken: list[float] = []  # when it got the lease (monotonic)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._try)

    def start(self) -> None:
        """Start trying (once; later calls do nothing)."""
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def stop(self) -> None:
        """Stop trying and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _try(self) -> None:
        while not self._stop.is_set():
            try:
                with self.runs.exclusive("incremental", "scheduler"):
                    self.taken.append(time.monotonic())
            except (AlreadyRunning, Busy):
                pass
            time.sleep(0.01)
