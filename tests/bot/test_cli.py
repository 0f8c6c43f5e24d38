"""The `mfa-whois` command as a user runs it: a real process, real database, exit codes."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.runs import Runs
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "users-export.ndjson"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MFA_WHOIS", "AUTH0"))}
    full_env.pop("DATABASE_URL", None)
    full_env.update(env)
    exe = shutil.which("mfa-whois") or ""
    cmd = [exe, *args] if exe else [sys.executable, "-m", "bot.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def imported(db_url: str, tmp_path: Path) -> dict[str, str]:
    env = {"DATABASE_URL": db_url}
    done = run(["import", str(SAMPLE)], tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 35 accounts: 13 passwordless and 17 profile numbers")
    return env


def test_quick_start_on_the_embedded_default(tmp_path: Path) -> None:
    assert run(["import", str(SAMPLE)], tmp_path).returncode == 0
    assert (tmp_path / "mfa-whois.db").exists()
    found = run(["lookup", "(415) 555-0100"], tmp_path)
    assert found.returncode == 0
    assert "+14155550100: 3 accounts" in found.stdout
    assert "Jane Doe <jane@example.com>" in found.stdout
    assert "not proof of identity" in found.stdout


def test_lookup_json_lists_every_account(imported: dict[str, str], tmp_path: Path) -> None:
    done = run(["lookup", "00 44 20 7946 0958", "--json"], tmp_path, **imported)
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    assert doc["query"] == "00 44 20 7946 0958"
    assert doc["phone"] == "+442079460958"
    assert len(doc["accounts"]) == 3
    assert doc["freshness"]["stale"] is False
    assert doc["freshness"]["last_full_sync"] is not None


def test_exit_codes_none_and_unusable(imported: dict[str, str], tmp_path: Path) -> None:
    miss = run(["lookup", "+1 202 555 0199", "--json"], tmp_path, **imported)
    assert miss.returncode == 1
    assert json.loads(miss.stdout)["accounts"] == []

    for text in ("anonymous", "12345", "hello"):
        bad = run(["lookup", text], tmp_path, **imported)
        assert bad.returncode == 2
        assert bad.stdout == ""
        assert bad.stderr.startswith("mfa-whois: not a usable phone number: ")
        assert len(bad.stderr.strip().splitlines()) == 1


def test_status_json_follows_the_contract(imported: dict[str, str], tmp_path: Path) -> None:
    done = run(["status", "--json"], tmp_path, **imported)
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    assert doc["accounts"] == 35
    assert doc["numbers"] == {"mfa": 0, "passwordless": 12, "profile": 15}
    assert doc["masked_mfa_numbers"] == 0
    assert doc["last_full_sync"]["status"] == "succeeded"
    assert doc["last_full_sync"]["kind"] == "full"
    assert doc["last_enrich"] is None and doc["last_incremental_sync"] is None
    assert doc["running"] is None and doc["stale"] is False
    human = run(["status"], tmp_path, **imported)
    assert "accounts: 35" in human.stdout


def test_a_broken_file_is_one_line_and_changes_nothing(
    imported: dict[str, str], tmp_path: Path
) -> None:
    data = gzip.compress(SAMPLE.read_bytes() * 50)
    broken = tmp_path / "export.json.gz"
    broken.write_bytes(data[: len(data) - 40])

    done = run(["import", str(broken)], tmp_path, **imported)

    assert done.returncode == 2
    assert done.stderr.startswith("mfa-whois: error: export.json.gz, line ")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    status = json.loads(run(["status", "--json"], tmp_path, **imported).stdout)
    assert status["accounts"] == 35
    assert status["last_full_sync"]["status"] == "failed"
    assert "export.json.gz" in status["last_full_sync"]["error"]


def test_bad_configuration_names_the_variable(tmp_path: Path) -> None:
    done = run(["status"], tmp_path, MFA_WHOIS_DEFAULT_REGION="Atlantis")
    assert done.returncode == 2
    assert done.stderr.startswith("mfa-whois: error: MFA_WHOIS_DEFAULT_REGION: ")
    done = run(["status"], tmp_path, DATABASE_URL="not-a-url")
    assert done.returncode == 2
    assert done.stderr.startswith("mfa-whois: error: DATABASE_URL: ")


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    done = run(["status"], tmp_path, DATABASE_URL="postgres://nobody:secret@127.0.0.1:1/x")
    assert done.returncode == 3
    assert done.stderr.startswith("mfa-whois: error: cannot open the database")
    assert "secret" not in done.stderr and "Traceback" not in done.stderr


def test_a_second_writer_is_told_who_holds_the_lease(
    imported: dict[str, str], tmp_path: Path
) -> None:
    engine = open_database(imported["DATABASE_URL"])
    runs = Runs(engine, Store(engine))
    holder = runs.new_holder()
    runs.acquire(holder, runs.start("full", "scheduler"))
    try:
        done = run(["import", str(SAMPLE)], tmp_path, **imported)
    finally:
        runs.release(holder)
        engine.dispose()
    assert done.returncode == 3
    assert "a full sync is already running (run 2, requested by scheduler" in done.stderr
