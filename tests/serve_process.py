"""`mfa-whois serve` as a real child process, for tests that need the command itself (signals,
workers, logging, settings read from the environment) rather than the app in-process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Settings a developer's shell may hold; a child starts from none of them.
SETTING_PREFIXES = ("MFA_WHOIS", "AUTH0", "SLACK", "TEAMS", "CLIENT_", "TENANT_ID", "DATABASE_URL")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mfa_whois() -> list[str]:
    """How to run `mfa-whois`: the installed console script, else the module."""
    exe = shutil.which("mfa-whois")
    return [exe] if exe else [sys.executable, "-m", "bot.cli"]


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without any of our settings, plus `settings` and a free PORT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    return env | {"PORT": str(free_port())} | settings


@dataclass
class Served:
    """A running `mfa-whois` process answering on `base`; its output once stopped."""

    proc: subprocess.Popen[str]
    base: str
    stdout: str = ""
    stderr: str = field(default="")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Ask it to stop (a graceful shutdown) and collect what it printed."""
        self.proc.send_signal(sig)
        self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        self.stdout = self.stdout or ""


@contextmanager
def running(
    args: list[str], cwd: Path, env: dict[str, str], *, start_timeout: float = 30
) -> Iterator[Served]:
    """`mfa-whois ARGS` (a `serve` command: PORT comes from `env`) once /healthz answers.

    Leaving the block stops it with SIGTERM if the test did not (`Served.stop`); a process that
    will not stop is killed.
    """
    proc = subprocess.Popen(
        [*mfa_whois(), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(proc, f"http://127.0.0.1:{env['PORT']}")
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                served.stderr = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"serve exited with {proc.returncode}: {served.stderr}")
            try:
                httpx.get(f"{served.base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        yield served
        if proc.poll() is None:
            served.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
