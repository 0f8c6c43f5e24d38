"""/whois as an agent sees it: signed requests through the real app, a real index, a fake Slack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.slack import ids
from phoneindex.changes import AccountSeen, PhoneLinked
from phoneindex.store import Store
from tests.bot.slack_workspace import (
    AGENT,
    ALERTS,
    OTHER_AGENT,
    SHARED,
    SHARED_IDS,
    STRANGER,
    Workspace,
    buttons,
    dashboard_id,
    import_sample,
    open_workspace,
)
from tests.conftest import T0
from tests.fake_slack import visible_text


@pytest.fixture
def ws(store: Store) -> Iterator[Workspace]:
    import_sample(store)
    with open_workspace(store, MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=3) as workspace:
        yield workspace


def test_shared_number_lists_every_account_to_the_agent_only(ws: Workspace) -> None:
    answer = ws.send.command("/whois", "+1 (415) 555-0100", AGENT)

    assert answer.status_code == 200
    message = answer.json()
    assert message["response_type"] == "ephemeral"
    seen = visible_text(message)
    assert f"*{SHARED}*: 3 accounts" in seen
    for user_id in SHARED_IDS:
        assert user_id in seen
        assert f"https://manage.auth0.com/dashboard/us/acme/users/{dashboard_id(user_id)}|" in seen
    assert "*Jane Doe* · jane@example.com" in seen
    assert "Connection: Username-Password-Authentication" in seen
    assert "Linked as *profile number (confirmed)*, from Auth0 export" in seen
    assert "Linked as *passwordless login (confirmed)*" in seen
    assert "Last login: <!date^" in seen
    assert "Index: last full sync <!date^" in seen and "stale" not in seen
    assert "not proof of identity" in seen
    assert buttons(message) == {ids.VERIFY_LIVE: SHARED}
    assert len(message["blocks"]) <= 50
    assert ws.slack.calls_to("chat.postMessage") == []  # nothing posted where others see it


def test_slack_tel_markup_and_unusable_input(ws: Workspace) -> None:
    markup = ws.send.command("/whois", f"<tel:{SHARED}|(415) 555-0100>", AGENT).json()
    assert f"*{SHARED}*: 3 accounts" in visible_text(markup)

    for text, reason in (("hello", "contains no digits"), ("anonymous", "withheld caller id")):
        refused = ws.send.command("/whois", text, AGENT).json()
        seen = visible_text(refused)
        assert refused["response_type"] == "ephemeral"
        assert f"not a usable phone number ({reason})" in seen
        assert "/whois +1 (415) 555-0100" in seen and "tel:+14155550100" in seen
        assert "account" not in seen

    hint = visible_text(ws.send.command("/whois", "", AGENT).json())
    assert hint.startswith("*Usage:* `/whois NUMBER`") and "US numbers" in hint
    assert [e["via"] for e in ws.audit()] == ["slack"]  # only the real lookup is audited


def test_a_user_outside_the_agents_is_refused_without_account_data(ws: Workspace) -> None:
    refused = ws.send.command("/whois", SHARED, STRANGER)

    assert refused.status_code == 200
    seen = visible_text(refused.json())
    assert "not on the list of agents" in seen and "SLACK_AGENT_USERS" in seen
    for leak in (*SHARED_IDS, "jane@example.com", "Jane Doe", "4155550100", "account"):
        assert leak not in seen.replace("accounts linked", "")
    assert buttons(refused.json()) == {}
    assert ws.audit() == []


def test_the_audit_trail_keeps_a_keyed_hash_never_the_number(ws: Workspace) -> None:
    ws.send.command("/whois", "(415) 555-0100", AGENT)
    ws.send.command("/whois", "+1 202 555 0199", OTHER_AGENT)

    entries = ws.audit()
    assert [(e["actor"], e["via"], e["accounts"]) for e in entries] == [
        (OTHER_AGENT, "slack", 0),
        (AGENT, "slack", 3),
    ]
    assert entries[1]["phone_hash"] == ws.ctx.answers.trail.audit.phone_hash(SHARED)
    assert entries[0]["phone_hash"] != entries[1]["phone_hash"]
    dumped = json.dumps(entries)
    assert "4155550100" not in dumped and "2025550199" not in dumped


def test_over_the_hourly_limit_refused_and_supervisors_alerted_once(ws: Workspace) -> None:
    for _ in range(3):
        assert "3 accounts" in visible_text(ws.send.command("/whois", SHARED, AGENT).json())
        ws.settle()  # audit rows are written just after each answer

    for _ in range(2):
        refused = visible_text(ws.send.command("/whois", SHARED, AGENT).json())
        assert "3 lookups in the last hour; the limit is 3" in refused
        assert "Jane" not in refused and SHARED_IDS[0] not in refused
    assert "3 accounts" in visible_text(ws.send.command("/whois", SHARED, OTHER_AGENT).json())

    ws.settle()
    alerts = ws.slack.messages(ALERTS)
    assert len(alerts) == 1
    seen = visible_text(alerts[0])
    assert "An agent is over the lookup limit" in seen
    assert f"<@{AGENT}> made 3 lookups in the last hour (limit 3" in seen
    assert "4155550100" not in json.dumps(alerts[0])
    vias = [e["via"] for e in ws.audit() if e["actor"] == AGENT]
    assert vias == ["slack-refused", "slack-refused", "slack", "slack", "slack"]


def test_many_accounts_are_paged_with_buttons(store: Store) -> None:
    number = "+12025550123"
    changes: list[Any] = []
    for n in range(23):
        user_id = f"auth0|{n:024d}"
        changes.append(AccountSeen(user_id, T0, email=f"user{n}@example.com"))
        changes.append(PhoneLinked(user_id, number, "profile", "export", T0, None, True))
    store.apply(changes)

    with open_workspace(store) as ws:
        first = ws.send.command("/whois", number, AGENT).json()
        seen = visible_text(first)
        assert "23 accounts" in seen and "Accounts 1–10 of 23" in seen
        assert seen.count("@example.com") == 10
        assert buttons(first) == {ids.VERIFY_LIVE: number, ids.PAGE_NEXT: f"{number} 1"}

        assert ws.send.click(ids.PAGE_NEXT, f"{number} 2", AGENT, response="p3").status_code == 200
        [last] = ws.slack.responses("p3")
        assert last["replace_original"] is True
        assert "Accounts 21–23 of 23" in visible_text(last)
        assert visible_text(last).count("@example.com") == 3
        assert buttons(last) == {ids.VERIFY_LIVE: number, ids.PAGE_PREVIOUS: f"{number} 1"}
        # A page view reads the index again: it is a lookup, in the audit trail like one.
        entries = ws.audit()
        assert [(e["actor"], e["via"], e["accounts"]) for e in entries] == [
            (AGENT, "slack-page", 23),
            (AGENT, "slack", 23),
        ]
        assert entries[0]["phone_hash"] == ws.ctx.answers.trail.audit.phone_hash(number)


def test_a_page_view_over_the_limit_is_refused_without_account_data(ws: Workspace) -> None:
    for _ in range(2):
        ws.send.command("/whois", SHARED, AGENT)
    ws.send.click(ids.PAGE_NEXT, f"{SHARED} 0", AGENT, response="p1")
    assert "3 accounts" in visible_text(ws.slack.responses("p1")[0])

    ws.send.click(ids.PAGE_NEXT, f"{SHARED} 0", AGENT, response="p2")
    [refusal] = ws.slack.responses("p2")
    seen = visible_text(refusal)
    assert "3 lookups in the last hour; the limit is 3" in seen
    assert refusal.get("replace_original") is False  # the answer on screen stays as it was
    for leak in (*SHARED_IDS, "jane@example.com", "Jane Doe"):
        assert leak not in seen
    vias = [e["via"] for e in ws.audit()]
    assert vias == ["slack-page-refused", "slack-page", "slack", "slack"]


def test_buttons_refuse_outsiders_and_odd_values(ws: Workspace) -> None:
    ws.send.click(ids.PAGE_NEXT, f"{SHARED} 1", STRANGER, response="r1")
    [refusal] = ws.slack.responses("r1")
    assert "not on the list of agents" in visible_text(refusal)
    assert refusal.get("replace_original") is False

    ws.send.click(ids.PAGE_NEXT, "jane@example.com 1", AGENT, response="r2")
    assert "does not belong to a current answer" in visible_text(ws.slack.responses("r2")[0])
