"""The sync commands end to end: the real `mfa-whois` process against a local fake Auth0."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from jobs.runs import Runs
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.test_cli import run
from tests.fake_auth0 import FakeAuth0, make_log, make_phone_method, make_user
from tests.serve_process import free_port, mfa_whois

SHARED = "+14155550100"


def tenant() -> FakeAuth0:
    jane = make_user(
        "auth0|jane",
        email="jane@example.com",
        name="Jane Doe",
        multifactor=["guardian"],
        multifactor_last_modified="2026-01-02T10:00:00Z",
    )
    sam = make_user("auth0|sam", email="sam@example.com", phone_number=SHARED)
    sms = make_user("sms|abc", phone_number=SHARED)
    return FakeAuth0(
        users=[jane, sam, sms],
        auth_methods={"auth0|jane": [make_phone_method(SHARED, "voice")]},
        export_polls_to_complete=1,
        rate=50,
        burst=50,
    )  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with tenant() as server:
        yield server


def env_for(fake: FakeAuth0, db_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "AUTH0_DOMAIN": fake.base_url,
        "AUTH0_CLIENT_ID": fake.client_id,
        "AUTH0_CLIENT_SECRET": fake.client_secret,
        "AUTH0_AUDIENCE": fake.audience,
        "MFA_WHOIS_AUTH0_MAX_RPS": "20",
    }


def lookup(env: dict[str, str], cwd: Path, number: str = SHARED) -> dict[str, object]:
    done = run(["lookup", number, "--json"], cwd, **env)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def kinds(doc: dict[str, object]) -> dict[str, list[str]]:
    return {a["user_id"]: [p["kind"] for p in a["phones"]] for a in doc["accounts"]}  # type: ignore[attr-defined,index]


def test_reindex_imports_the_tenant_and_reads_mfa_numbers(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    env = env_for(fake, db_url)
    done = run(["reindex"], tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert "imported 3 accounts" in done.stdout
    assert "MFA enrichment (1 slice): read 1 accounts (0 re-read whole" in done.stdout
    assert kinds(lookup(env, tmp_path)) == {
        "auth0|jane": ["mfa"], "auth0|sam": ["profile"], "sms|abc": ["passwordless"],
    }  # fmt: skip
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    assert status["last_full_sync"]["status"] == "succeeded"
    assert status["last_enrich"]["status"] == "succeeded"
    assert status["numbers"] == {"mfa": 1, "passwordless": 1, "profile": 1}

    # Nothing changed: a second enrich reads no authentication methods.
    fake.clear_requests()
    assert run(["enrich"], tmp_path, **env).returncode == 0
    assert fake.requests_for("/api/v2/users/auth0|jane/authentication-methods") == []


def test_a_failed_export_is_one_line_leaves_the_index_and_alerts(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    env = env_for(fake, db_url)
    assert run(["reindex", "--no-enrich"], tmp_path, **env).returncode == 0
    before = lookup(env, tmp_path)
    fake.export_outcome = "failed"

    done = run(["reindex"], tmp_path, **env)

    assert done.returncode == 3
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("mfa-whois: error: Auth0 export job job_") and "failed" in last
    assert "ALERT [failure] Full sync failed" in done.stderr  # logged: no Slack channel set
    assert "Traceback" not in done.stderr and "4155550100" not in done.stderr
    assert lookup(env, tmp_path)["accounts"] == before["accounts"]
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    assert status["last_full_sync"]["status"] == "failed"
    assert "failed" in status["last_full_sync"]["error"]


def test_auth0_down_fails_with_the_contracts_message(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    env = env_for(fake, db_url)
    fake.fail_next(50, status=503, path_prefix="/api/v2/logs")
    done = run(["sync"], tmp_path, **env)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1] == (
        "mfa-whois: error: Auth0 answered 503 for GET /api/v2/logs"
    )
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    assert status["last_incremental_sync"]["error"] == "Auth0 answered 503 for GET /api/v2/logs"


def test_sync_applies_log_events_after_the_first_checkpoint(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    env = env_for(fake, db_url)
    assert run(["reindex", "--no-enrich"], tmp_path, **env).returncode == 0
    with fake.lock:
        fake.logs.append(make_log("s", "auth0|sam"))
    first = run(["sync"], tmp_path, **env)
    assert first.returncode == 0, first.stderr
    when = datetime.now(UTC)
    with fake.lock:
        fake.logs.append(make_log(
            "gd_enrollment_complete", "auth0|sam", date=when,
            authenticator={"type": "sms", "phone_number": "+1 2125550147"},
        ))  # fmt: skip
        fake.logs.append(make_log("sdu", "sms|abc", date=when))
    done = run(["sync"], tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert kinds(lookup(env, tmp_path, "+12125550147")) == {"auth0|sam": ["mfa"]}
    assert "sms|abc" not in kinds(lookup(env, tmp_path))
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    assert status["log_checkpoint"] == fake.logs[-1]["log_id"]


def test_missing_auth0_settings_name_the_variable(tmp_path: Path) -> None:
    done = run(["reindex"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mfa-whois: error: AUTH0_DOMAIN is not set; it is needed for this command"
    )


def test_lookup_live_confirms_accounts_with_the_management_api(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    env = env_for(fake, db_url)
    assert run(["reindex"], tmp_path, **env).returncode == 0
    fake.remove_user("auth0|sam")  # deleted in Auth0 since the last sync
    done = run(["lookup", SHARED, "--json", "--live"], tmp_path, **env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert sorted(kinds(doc)) == ["auth0|jane", "sms|abc"]
    assert fake.requests_for("/api/v2/users/auth0|jane")
    # Live lookups are audited: who, through what, a keyed hash, never the number.
    trail = run(["audit", "--json"], tmp_path, **env)
    entries = [json.loads(line) for line in trail.stdout.splitlines()]
    assert [(e["via"], e["accounts"]) for e in entries] == [("cli-live", 2)]
    assert entries[0]["actor"].startswith("cli:")
    assert "4155550100" not in trail.stdout


def test_an_old_export_file_neither_fakes_freshness_nor_beats_newer_log_facts(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    env = env_for(fake, db_url)
    exported = [dict(user) for user in fake.users]  # the tenant as a file saw it, 10 days ago
    with fake.lock:
        fake.logs.append(make_log("s", "auth0|sam"))
    assert run(["sync"], tmp_path, **env).returncode == 0  # the log checkpoint starts here
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with fake.lock:  # since then: sms|abc was deleted, sam changed his number
        fake.logs.append(make_log("sdu", "sms|abc", date=yesterday))
        fake.logs.append(make_log(
            "scpn", "auth0|sam", date=yesterday,
            body={"old_phone_number": SHARED, "new_phone_number": "+12125550147"},
        ))  # fmt: skip
    assert run(["sync"], tmp_path, **env).returncode == 0

    old = tmp_path / "old-export.ndjson"
    old.write_text("".join(json.dumps(user) + "\n" for user in exported))
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
    os.utime(old, (ten_days_ago.timestamp(), ten_days_ago.timestamp()))
    done = run(["import", str(old)], tmp_path, **env)

    assert done.returncode == 0, done.stderr
    when = ten_days_ago.strftime("%Y-%m-%d %H:%M")
    assert f"; data as of {when}" in done.stdout and "(the file's modification time)" in done.stdout
    shared = kinds(lookup(env, tmp_path))
    assert "sms|abc" not in shared and "auth0|sam" not in shared  # the newer facts hold
    assert kinds(lookup(env, tmp_path, "+12125550147")) == {"auth0|sam": ["profile"]}
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    last = status["last_full_sync"]
    assert last["requested_by"] == "import:old-export.ndjson" and last["source"] == "file"
    assert status["data_source"] == "file:old-export.ndjson"
    assert status["data_as_of"] == ten_days_ago.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert status["stale"] is True  # a 10-day-old export does not make the index fresh
    human = run(["status"], tmp_path, **env).stdout
    assert "imported from the file old-export.ndjson" in human


def test_import_as_of_is_shown_and_a_future_one_refused(db_url: str, tmp_path: Path) -> None:
    from tests.bot.test_cli import SAMPLE

    env = {"DATABASE_URL": db_url}
    done = run(["import", str(SAMPLE), "--as-of", "2026-11-20T08:00Z"], tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("; data as of 2026-11-20 08:00Z (--as-of)")
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    assert status["data_as_of"] == "2026-11-20T08:00:00Z"
    assert status["last_full_sync"]["counts"]["as_of"] == "2026-11-20T08:00:00Z"

    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    refused = run(["import", str(SAMPLE), "--as-of", future], tmp_path, **env)
    assert refused.returncode == 2 and "is in the future" in refused.stderr


def test_an_older_file_after_a_newer_one_is_refused_and_changes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    from tests.bot.test_cli import SAMPLE

    env = {"DATABASE_URL": db_url}
    first = run(["import", str(SAMPLE), "--as-of", "2026-11-20T08:00Z"], tmp_path, **env)
    assert first.returncode == 0, first.stderr
    older = tmp_path / "older.ndjson"
    older.write_text(
        SAMPLE.read_text() + '{"user_id": "sms|gone", "phone_number": "+14155550199"}\n'
    )
    done = run(["import", str(older), "--as-of", "2026-11-10T08:00Z"], tmp_path, **env)
    assert done.returncode == 2
    assert "older.ndjson: its data (as of 2026-11-10T08:00:00Z) is older than the export" in (
        done.stderr
    )
    assert run(["lookup", "+14155550199"], tmp_path, **env).returncode == 1
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    assert status["data_as_of"] == "2026-11-20T08:00:00Z"
    assert status["data_source"] == "file:users-export.ndjson"


def _start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MFA_WHOIS", "AUTH0"))}
    full_env = {k: v for k, v in full_env.items() if not k.startswith("SLACK")}
    return subprocess.Popen(
        [*mfa_whois(), *args], cwd=cwd, env=full_env | env, stderr=subprocess.PIPE, text=True
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


def _wait_for_full_sync(db_url: str, proc: subprocess.Popen[str]) -> dict[str, object]:
    engine = open_database(db_url)
    runs = Runs(engine, Store(engine))
    try:
        deadline = time.monotonic() + 30
        while (done := runs.last("full")) is None:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "no full sync started"
            time.sleep(0.2)
        return done
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", [["clock"], ["serve", "--host", "127.0.0.1"]])
def test_a_fresh_install_starts_its_first_full_sync_at_once(
    fake: FakeAuth0, db_url: str, tmp_path: Path, command: list[str]
) -> None:
    env = env_for(fake, db_url) | {"MFA_WHOIS_LOG_POLL_SECONDS": "0", "PORT": str(free_port())}
    proc = _start(command, tmp_path, env)
    first = _wait_for_full_sync(db_url, proc)
    stderr = _stop(proc)
    assert proc.returncode == 0, stderr
    assert first["status"] == "succeeded" and first["requested_by"] == "scheduler (first sync)"
    assert "one is queued (run 1) and starts now; watch it with `mfa-whois status`" in stderr
    assert "imported 3 accounts" not in stderr and "Traceback" not in stderr
    assert kinds(lookup(env, tmp_path))["sms|abc"] == ["passwordless"]

    again = _start(command, tmp_path, env)  # the next start: no second "first" sync
    time.sleep(2)
    stderr = _stop(again)
    assert "no full sync from Auth0 yet" not in stderr
    status = json.loads(run(["status", "--json"], tmp_path, **env).stdout)
    assert status["last_full_sync"]["id"] == first["id"] and status["queued"] is None


def test_clock_serves_its_own_metrics_when_asked(
    fake: FakeAuth0, db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = env_for(fake, db_url) | {"MFA_WHOIS_LOG_POLL_SECONDS": "0"}
    proc = _start(["clock", "--metrics-port", str(port)], tmp_path, env)
    try:
        _wait_for_full_sync(db_url, proc)  # the first full sync: export job calls to Auth0
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        stderr = _stop(proc)
    sent = re.search(r'^mfa_whois_auth0_requests_total\{outcome="ok"\} (\S+)$', text, re.M)
    assert sent and float(sent.group(1)) >= 2  # the scheduler's own requests, counted here
    assert re.search(r"^mfa_whois_index_accounts 3\.0$", text, re.M), text[:2000]
    assert "Traceback" not in stderr
