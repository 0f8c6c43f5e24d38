"""`mfa-whois serve` with TEAMS_* set serves /api/messages; half of them is one line, exit 2;
without them the route does not exist."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from bot.web import create_app
from phoneindex.db import open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import serving
from tests.bot.teams.conftest import AGENT
from tests.fake_teams import APP_ID, APP_PASSWORD, TENANT, FakeTeams, activity
from tests.serve_process import clean_env, mfa_whois, running

PREFIXES = ("MFA_WHOIS", "AUTH0", "SLACK", "TEAMS", "CLIENT_", "TENANT_ID")


def _env(tmp_path: Path, **teams: str) -> dict[str, str]:
    return clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'index.db'}", **teams)


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
        args = ["serve", "--host", "127.0.0.1", "--no-scheduler"]
        with running(args, tmp_path, env) as served:
            message = activity(fake, text="help", user=AGENT)
            headers = {"Authorization": f"Bearer {fake.token()}"}
            answer = httpx.post(served.base + "/api/messages", json=message, headers=headers)
            [reply] = fake.activities(1)
            unsigned = httpx.post(served.base + "/api/messages", json=message)
            served.stop()
    proc, stderr = served.proc, served.stderr
    assert answer.status_code == 200 and unsigned.status_code == 401
    assert reply.body["text"].startswith("**Usage:** `whois NUMBER`")
    assert fake.token_requests[0]["client_id"] == APP_ID
    assert proc.returncode == 0, stderr
    assert "Teams at /api/messages" in stderr


def test_serve_with_half_the_teams_settings_stops_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, TEAMS_APP_ID=APP_ID, TEAMS_TENANT_ID=TENANT)
    done = subprocess.run(
        [*mfa_whois(), "serve", "--no-scheduler"],
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
