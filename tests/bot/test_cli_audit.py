"""`mfa-whois audit --actor/--phone`: filters combined with --since and --json, no number shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneindex.audit import Audit
from phoneindex.db import open_database
from tests.bot.test_cli import run
from tests.conftest import T0, Clock

US = "+14155550100"
UK = "+442079460958"


def record_trail(db_url: str, key: str | None) -> str:
    """Four lookups over three hours; the hash of US under the trail's key."""
    engine = open_database(db_url)
    clock = Clock(T0)
    audit = Audit(engine, secret_key=key, clock=clock)
    audit.record(actor="U0AGENT001", via="slack", phone=US, accounts=3)
    clock.advance(hours=1)
    audit.record(actor="connect", via="api", phone=US, accounts=3)
    clock.advance(hours=1)
    audit.record(actor="U0AGENT001", via="slack", phone=UK, accounts=3)
    clock.advance(hours=1)
    audit.record(actor="U0AGENT001", via="slack-page", phone=US, accounts=3)
    us_hash = audit.phone_hash(US)
    engine.dispose()
    return us_hash


def audit_json(tmp_path: Path, env: dict[str, str], *args: str) -> list[dict[str, object]]:
    done = run(["audit", "--json", *args], tmp_path, **env)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_filters_by_number_and_actor_combined_with_since(db_url: str, tmp_path: Path) -> None:
    us_hash = record_trail(db_url, "k")
    env = {"DATABASE_URL": db_url, "MFA_WHOIS_SECRET_KEY": "k"}

    by_number = audit_json(tmp_path, env, "--phone", "(415) 555-0100")
    assert [(e["actor"], e["via"]) for e in by_number] == [
        ("U0AGENT001", "slack-page"),
        ("connect", "api"),
        ("U0AGENT001", "slack"),
    ]
    assert {e["phone_hash"] for e in by_number} == {us_hash}

    # Any way a number is typed is the same number; both filters and --since narrow together.
    both = audit_json(
        tmp_path, env, "--phone", "<tel:+14155550100|(415) 555-0100>", "--actor", "U0AGENT001"
    )
    assert [e["via"] for e in both] == ["slack-page", "slack"]
    recent = audit_json(
        tmp_path,
        env,
        "--actor",
        "U0AGENT001",
        "--phone",
        "415.555.0100",
        "--since",
        "2026-11-27T10:00Z",
    )
    assert [e["via"] for e in recent] == ["slack-page"]

    by_actor = audit_json(tmp_path, env, "--actor", "U0AGENT001")
    assert [e["via"] for e in by_actor] == ["slack-page", "slack", "slack"]
    assert by_actor[1]["phone_hash"] != us_hash
    assert audit_json(tmp_path, env, "--actor", "U0NOBODY") == []


def test_the_number_is_parsed_like_a_lookup_in_the_default_region(
    db_url: str, tmp_path: Path
) -> None:
    record_trail(db_url, "k")
    env = {"DATABASE_URL": db_url, "MFA_WHOIS_SECRET_KEY": "k", "MFA_WHOIS_DEFAULT_REGION": "GB"}
    uk = audit_json(tmp_path, env, "--phone", "020 7946 0958")
    assert [(e["actor"], e["at"]) for e in uk] == [("U0AGENT001", "2026-11-27T11:00:00Z")]


def test_the_generated_key_in_the_database_hashes_the_query(db_url: str, tmp_path: Path) -> None:
    us_hash = record_trail(db_url, None)  # no MFA_WHOIS_SECRET_KEY: the key kept in the database
    env = {"DATABASE_URL": db_url}
    found = audit_json(tmp_path, env, "--phone", "+1 415 555 0100")
    assert len(found) == 3 and {e["phone_hash"] for e in found} == {us_hash}


def test_the_human_listing_never_shows_the_number(db_url: str, tmp_path: Path) -> None:
    us_hash = record_trail(db_url, "k")
    env = {"DATABASE_URL": db_url, "MFA_WHOIS_SECRET_KEY": "k"}
    done = run(["audit", "--phone", "415-555-0100", "--actor", "connect"], tmp_path, **env)
    assert done.returncode == 0
    assert "connect" in done.stdout and us_hash in done.stdout
    assert "4155550100" not in done.stdout and "555-0100" not in done.stdout

    none = run(["audit", "--phone", "415-555-0100", "--actor", "U0NOBODY"], tmp_path, **env)
    assert none.stdout.strip() == "no lookups recorded of that number by U0NOBODY"
    assert "0100" not in none.stdout


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("anonymous", "withheld caller id"), ("12345", "short codes are not indexed"), ("", "empty")],
)
def test_an_unusable_number_is_one_line_and_exit_2(
    typed: str, reason: str, db_url: str, tmp_path: Path
) -> None:
    record_trail(db_url, "k")
    done = run(["audit", "--phone", typed, "--json"], tmp_path, DATABASE_URL=db_url)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"mfa-whois: not a usable phone number: {reason}")
    assert len(done.stderr.strip().splitlines()) == 1
