"""A number of a linked SMS identity, as people see it: CLI lookup and the Slack answer text."""

from __future__ import annotations

import json
from pathlib import Path

from bot.slack import texts
from tests.bot.test_cli import SAMPLE, run

LINKED_PHONE = "+14155550188"  # Alex Kim's linked SMS identity in the sample export


def test_the_cli_lists_the_primary_account_and_names_the_identity(
    db_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": db_url}
    assert run(["import", str(SAMPLE)], tmp_path, **env).returncode == 0

    human = run(["lookup", "(415) 555-0188"], tmp_path, **env)
    assert human.returncode == 0, human.stderr
    assert "auth0|4c8a96a1a663761fa8e7a4f3" in human.stdout
    assert "passwordless confirmed of the linked identity sms|6579f3b1c2a94e0d8f1b2c3d" in (
        human.stdout
    )
    doc = json.loads(run(["lookup", LINKED_PHONE, "--json"], tmp_path, **env).stdout)
    [account] = doc["accounts"]
    assert account["phones"][0]["identity"] == "sms|6579f3b1c2a94e0d8f1b2c3d"


def test_the_slack_line_names_the_linked_identity() -> None:
    phone = {"kind": "passwordless", "method": None, "confirmed": True, "source": "export",
             "updated_at": "2026-11-27T09:00:00Z", "identity": "sms|6579f3b1"}  # fmt: skip
    line = texts.linked(phone)
    assert line.startswith("Linked as *passwordless login (confirmed)* of the linked identity")
    assert "`sms|6579f3b1`" in line
    assert "linked identity" not in texts.linked(phone | {"identity": None})
