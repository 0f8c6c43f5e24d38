"""Slack and Teams word an answer the same way: only markup, icons and time formats differ."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from bot import wording
from bot.answers import WhoisAnswer
from bot.slack import render as slack_render
from bot.slack import texts as slack_texts
from bot.teams import render as teams_render
from bot.teams import texts as teams_texts
from phoneindex.audit import Allowance
from tests.fake_slack import iter_texts
from tests.fake_teams import texts_of

PHONE = "+14155550188"
STAMP = "2026-11-27T09:00:00Z"
PHONES = [
    {"kind": "mfa", "method": "sms", "confirmed": True, "source": "authenticators",
     "updated_at": STAMP},
    {"kind": "passwordless", "method": None, "confirmed": False, "source": "logs",
     "updated_at": STAMP},
    {"kind": "profile", "method": None, "confirmed": None, "source": "action",
     "updated_at": None},
]  # fmt: skip
ACCOUNT = {"user_id": "auth0|4c8a96a1a663761fa8e7a4f3", "email": "alex@example.com",
           "name": "Alex Kim", "connection": "sms", "blocked": True, "last_login": STAMP,
           "phones": PHONES}  # fmt: skip
FRESH = {"last_full_sync": STAMP, "last_update": STAMP, "stale": True}


def plain(text: str) -> str:
    """What a reader sees of `text`, without markup, icons or the surface's time format."""
    text = re.sub(r"<!date\^\d+\^[^|>]*\|[^>]*>", "<time>", text)  # Slack
    text = re.sub(r"\{\{DATE\([^)]*\)\}\} \{\{TIME\([^)]*\)\}\}", "<time>", text)  # Teams
    text = re.sub(r":[a-z_]+:", "", text).replace("*", "")
    text = "".join(c for c in text if unicodedata.category(c) not in ("So", "Mn"))
    return " ".join(text.split())


def slack_lines(answer: WhoisAnswer) -> list[str]:
    blocks = [b for b in slack_render.whois(answer)["blocks"] if b["type"] != "actions"]
    return [plain(line) for text in iter_texts(blocks) for line in text.split("\n")]


def teams_lines(answer: WhoisAnswer) -> list[str]:
    return [plain(text) for text in texts_of(teams_render.whois(answer))]


def slack_buttons(answer: WhoisAnswer) -> list[str]:
    [actions] = [b for b in slack_render.whois(answer)["blocks"] if b["type"] == "actions"]
    return [e["text"]["text"] for e in actions["elements"]]


def teams_buttons(answer: WhoisAnswer) -> list[str]:
    return [a["title"] for a in teams_render.whois(answer).get("actions", [])]


def starting(lines: list[str], words: str) -> list[str]:
    return [line for line in lines if line.startswith(words)]


def test_one_answer_reads_the_same_on_slack_and_teams() -> None:
    doc: dict[str, Any] = {"phone": PHONE, "accounts": [ACCOUNT], "freshness": FRESH}
    answer = WhoisAnswer(doc)
    slack, teams = slack_lines(answer), teams_lines(answer)

    for words in (f"{PHONE}:", "Linked as", "Index:", "A number match"):
        assert starting(slack, words) == starting(teams, words), words
    assert starting(teams, f"{PHONE}:") == [f"{PHONE}: 1 account"]
    assert starting(teams, "A number match") == [
        "A number match is a routing hint, not proof of identity: caller ID can be spoofed and "
        "numbers get recycled. Verify the caller as you always do."
    ]
    assert starting(teams, "Linked as") == [
        "Linked as MFA phone (SMS, confirmed), from MFA read, <time>",
        "Linked as passwordless login (unconfirmed), from Auth0 logs, <time>",
        "Linked as profile number, from Auth0 Action, never",
    ]
    [last_login] = starting(teams, "Last login:")
    assert last_login == "Last login: <time> · Blocked"
    assert f"Connection: sms · {last_login}" in slack
    assert starting(teams, "Index:") == [
        "Index: last full sync <time>, last update <time> · stale: no successful full sync for "
        "too long"
    ]
    assert slack_buttons(answer) == teams_buttons(answer) == ["Verify live"]


def test_an_answer_without_accounts_reads_the_same_on_slack_and_teams() -> None:
    answer = WhoisAnswer({"phone": PHONE, "accounts": [], "freshness": FRESH})
    slack, teams = slack_lines(answer), teams_lines(answer)

    assert (
        starting(slack, "Search live")
        == starting(teams, "Search live")
        == [
            "Search live asks Auth0's user search, which finds passwordless and profile numbers "
            "only (MFA numbers are not searchable)."
        ]
    )
    assert f"{PHONE}: no account" in slack and f"{PHONE}: no account" in teams
    assert slack_buttons(answer) == teams_buttons(answer) == ["Search live"]


def test_refusals_and_errors_read_the_same_on_slack_and_teams() -> None:
    allowance = Allowance(allowed=False, used=30, limit=30, retry_after_seconds=61)
    pairs = [
        (slack_texts.over_limit(allowance), teams_texts.over_limit(allowance)),
        (slack_texts.DATABASE_BUSY, teams_texts.DATABASE_BUSY),
        (slack_texts.internal_error("1a2b3c4d"), teams_texts.internal_error("1a2b3c4d")),
        (slack_texts.not_configured("X is not set"), teams_texts.not_configured("X is not set")),
    ]
    for slack, teams in pairs:
        assert plain(slack) == plain(teams)
    assert plain(teams_texts.over_limit(allowance)) == (
        "You have made 30 lookups in the last hour; the limit is 30. Try again in 2 minutes. "
        "Supervisors have been told."
    )


def test_counts_read_as_english() -> None:
    assert wording.plural(1, "match") == "1 match"
    assert wording.plural(2, "match") == "2 matches"
    assert wording.plural(1_000, "account") == "1,000 accounts"
    assert wording.plural(0, "lookup") == "0 lookups"
