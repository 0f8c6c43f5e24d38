"""The HTTP service: /healthz for load balancers, and `mfa-whois serve` as a process."""

from __future__ import annotations

import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bot.web import create_app
from phoneindex.db import PG_MAX_OVERFLOW, PG_POOL_SIZE, PG_POOL_TIMEOUT_S, open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import import_sample, serving
from tests.bot.test_cli import SAMPLE, run
from tests.serve_process import clean_env, running

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/mfa_whois"


def test_healthz_answers_ok_with_the_index_freshness(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    store = Store(open_database(url))
    import_sample(store)
    with serving(create_app(load_settings(database_url=url), store=store)) as http:
        health = http.get("/healthz")
        slack = http.post("/slack/events", content=b"{}")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["stale"] is False
    assert body["last_full_sync"].endswith("Z") and body["last_update"].endswith("Z")
    assert slack.status_code == 404  # Slack not configured: no route
    store.engine.dispose()


def test_healthz_says_when_the_last_full_sync_came_from_an_old_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    old = tmp_path / "users-export.ndjson"
    shutil.copy(SAMPLE, old)
    week_ago = (datetime.now(UTC) - timedelta(days=7)).replace(microsecond=0)
    os.utime(old, (week_ago.timestamp(), week_ago.timestamp()))
    assert run(["import", str(old)], tmp_path, DATABASE_URL=url).returncode == 0
    store = Store(open_database(url))
    with serving(create_app(load_settings(database_url=url), store=store)) as http:
        body = http.get("/healthz").json()
    assert body["last_full_sync"] == week_ago.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["last_full_sync_source"] == "file:users-export.ndjson"
    assert body["stale"] is True  # the import ran just now; its data is a week old
    store.engine.dispose()


def test_healthz_503_when_the_database_is_unreachable() -> None:
    with serving(create_app(load_settings(database_url=UNREACHABLE_PG))) as http:
        health = http.get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable", "error": "the database is unreachable"}


def test_serve_runs_the_service_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'index.db'}")
    with running(["serve", "--host", "127.0.0.1"], tmp_path, env) as served:
        assert httpx.get(f"{served.base}/healthz").status_code == 200
        served.stop()
    assert served.proc.returncode == 0, served.stderr
    assert "scheduler not started: AUTH0_DOMAIN is not set" in served.stderr
    assert "Slack off" in served.stderr and "scheduler off" in served.stderr


def test_serve_on_postgresql_has_room_for_lookups_and_the_scheduler(pg_url: str) -> None:
    store = Store(open_database(pg_url))
    engine = store.engine
    assert engine.pool.size() == PG_POOL_SIZE and PG_POOL_SIZE + PG_MAX_OVERFLOW >= 20
    held = [engine.connect() for _ in range(5)]  # the in-process scheduler's 5 job threads
    try:
        with serving(create_app(load_settings(database_url=pg_url), store=store)) as http:
            started = time.monotonic()
            with ThreadPoolExecutor(25) as pool:  # a burst of 50 requests at once
                codes = list(pool.map(lambda _: http.get("/healthz").status_code, range(50)))
            assert codes == [200] * 50 and time.monotonic() - started < 5
            held += [engine.connect() for _ in range(PG_POOL_SIZE + PG_MAX_OVERFLOW - 5)]
            started = time.monotonic()
            exhausted = http.get("/healthz", timeout=30)
            waited = time.monotonic() - started
        assert exhausted.status_code == 503  # every connection taken: a quick, clear answer
        assert waited < PG_POOL_TIMEOUT_S + 3
    finally:
        for conn in held:
            conn.close()
        engine.dispose()


def test_serve_with_two_workers_answers_and_adds_up_their_metrics(tmp_path: Path) -> None:
    key = "pbx-0123456789abcdef0123456789"
    env = clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'index.db'}", MFA_WHOIS_API_KEYS=f"pbx:{key}"
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    assert run(["import", str(SAMPLE)], tmp_path, **env).returncode == 0
    args = ["-v", "serve", "--host", "127.0.0.1", "--no-scheduler", "--workers", "2"]
    with running(args, tmp_path, env) as served:
        auth = {"Authorization": f"Bearer {key}"}
        with ThreadPoolExecutor(8) as pool:  # new connections: both workers take some
            answers = list(
                pool.map(
                    lambda _: httpx.get(
                        f"{served.base}/api/v1/lookup",
                        params={"phone": "+14155550100"},
                        headers=auth,
                    ),
                    range(40),
                )
            )
        metrics = httpx.get(f"{served.base}/metrics").text
        served.stop()
    stdout, stderr, proc = served.stdout, served.stderr, served.proc
    assert [a.status_code for a in answers] == [200] * 40
    found = re.search(r'mfa_whois_lookups_total\{outcome="found",surface="api"\} (\S+)', metrics)
    assert found and float(found.group(1)) == 40  # every worker's lookups, whoever is scraped
    assert "2 workers" in stderr
    pids = set(re.findall(r"Started server process \[(\d+)\]", stderr))
    assert len(pids) == 2
    output = stdout + stderr
    assert "GET /api/v1/lookup?phone=•••00" in output  # each worker's access log, masked
    assert "+14155550100" not in output and "4155550100" not in output
    assert proc.returncode == 0, stderr
