"""`mfa-whois audit` prints the lookup audit trail; `socket` names what it is missing."""

from __future__ import annotations

import json
from pathlib import Path

from phoneindex.audit import Audit
from phoneindex.db import open_database
from tests.bot.test_cli import run
from tests.conftest import T0, Clock


def test_audit_prints_the_trail_newest_first_without_numbers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    engine = open_database(url)
    clock = Clock(T0)
    audit = Audit(engine, secret_key="k", clock=clock)
    audit.record(actor="U0AGENT001", via="slack", phone="+14155550100", accounts=3)
    clock.advance(hours=2)
    audit.record(actor="U0AGENT002", via="slack-live", phone="+14155550100", accounts=2)
    engine.dispose()
    env = {"DATABASE_URL": url, "MFA_WHOIS_SECRET_KEY": "k"}

    lines = run(["audit", "--json"], tmp_path, **env).stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["actor"], e["via"], e["accounts"]) for e in entries] == [
        ("U0AGENT002", "slack-live", 2),
        ("U0AGENT001", "slack", 3),
    ]
    assert set(entries[0]) == {"at", "actor", "via", "phone_hash", "accounts"}
    assert entries[0]["at"] == "2026-11-27T11:00:00Z"
    assert entries[0]["phone_hash"] == entries[1]["phone_hash"]

    human = run(["audit"], tmp_path, **env)
    assert human.returncode == 0
    assert "U0AGENT002" in human.stdout and entries[0]["phone_hash"] in human.stdout
    assert "4155550100" not in human.stdout + "".join(lines)

    since = run(["audit", "--json", "--since", "2026-11-27T10:00Z"], tmp_path, **env)
    assert [json.loads(line)["actor"] for line in since.stdout.splitlines()] == ["U0AGENT002"]
    none = run(["audit", "--since", "2027-01-01"], tmp_path, **env)
    assert none.stdout.strip() == "no lookups recorded since 2027-01-01"

    bad = run(["audit", "--since", "yesterday"], tmp_path, **env)
    assert bad.returncode == 2 and "'yesterday' is not an ISO date or time" in bad.stderr


def test_socket_mode_names_the_missing_token(tmp_path: Path) -> None:
    done = run(["socket"], tmp_path, SLACK_BOT_TOKEN="xoxb-1")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mfa-whois: error: SLACK_APP_TOKEN is not set; it is needed for this command"
    )
