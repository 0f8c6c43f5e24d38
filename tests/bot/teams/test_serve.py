"""`mfa-whois serve` with TEAMS_* set serves /api/messages; half of them is one line, exit 2;
without them the route does not exist."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.web import create_app
from phoneindex.db import open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import serving
from tests.bot.teams.conftest import AGENT
from tests.bot.test_web import _free_port
from tests.fake_teams import APP_ID, APP_PASSWORD, TENANT, FakeTeams, activity

PREFIXES = ("MFA_WHOIS", "AUTH0", "SLACK", "TEAMS", "CLIENT_", "TENANT_ID")


def _command() -> list[str]:
    exe = shutil.which("mfa-whois")
    return [exe] if exe else [sys.executable, "-m", "bot.cli"]


def _env(tmp_path: Path, **teams: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'index.db'}", "PORT": str(_free_port())}
    return env | teams


def test_serve_answers_teams_with_the_teams_settings(tmp_path: Path) -> None:
    with FakeTeams() as fake:
        env = _env(
            tmp_path,
            TEAMS_APP_ID=APP_ID,
            TEAMS_APP_PASSWORD=APP_PASSWORD,
            TEAMS_TENANT_ID=TENANT,
            TEAMS_OPENID_METADATA_URL=fake.metadata_url,
            TEAMS_LOGIN_URL=fake.base_url,
            CLIENT_ID="auth0-style-generic-id",  # never read
        )
        cmd = [*_command(), "serve", "--host", "127.0.0.1", "--no-scheduler"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{env['PORT']}"
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    httpx.get(base + "/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "serve did not start"
                    time.sleep(0.1)
            message = activity(fake, text="help", user=AGENT)
            headers = {"Authorization": f"Bearer {fake.token()}"}
            answer = httpx.post(base + "/api/messages", json=message, headers=headers)
            [reply] = fake.activities(1)
            unsigned = httpx.post(base + "/api/messages", json=message)
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert answer.status_code == 200 and unsigned.status_code == 401
    assert reply.body["text"].startswith("**Usage:** `whois NUMBER`")
    assert fake.token_requests[0]["client_id"] == APP_ID
    assert proc.returncode == 0, stderr
    assert "Teams at /api/messages" in stderr


def test_serve_with_half_the_teams_settings_stops_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, TEAMS_APP_ID=APP_ID, TEAMS_TENANT_ID=TENANT)
    done = subprocess.run(
        [*_command(), "serve", "--no-scheduler"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mfa-whois: error: TEAMS_APP_PASSWORD is not set; it is needed for this command"
    )


def test_without_teams_settings_there_is_no_api_messages_route(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    store = Store(open_database(url))
    with serving(create_app(load_settings(database_url=url), store=store)) as http:
        assert http.post("/api/messages", json={}).status_code == 404
    store.engine.dispose()
