"""`whois NUMBER` in Teams as an agent sees it: activities through the real app, a real index,
the reply as the fake connector receives it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from phoneindex.changes import AccountSeen, PhoneLinked
from phoneindex.store import Store
from tests.bot.slack_workspace import SHARED, SHARED_IDS, dashboard_id, import_sample
from tests.bot.teams.cards import MAX_MESSAGE, valid_card
from tests.bot.teams.conftest import ADMIN, AGENT, STRANGER, Tenant, open_tenant
from tests.conftest import T0
from tests.fake_teams import APP_ID, Posted, activity, card_action, texts_of


def card_of(posted: Posted) -> dict[str, Any]:
    [attachment] = posted.body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = valid_card(attachment["content"])
    assert len(json.dumps(posted.body).encode()) < MAX_MESSAGE
    return card


def seen(card: dict[str, Any]) -> str:
    return "\n".join(texts_of(card))


def actions(card: dict[str, Any]) -> dict[str, Any]:
    return {a["title"]: (a["verb"], a["data"]) for a in card.get("actions", [])}


def ask(teams: Tenant, text: str, user: str = AGENT, **kw: Any) -> Posted:
    """Send a message; the one reply posted for it."""
    before = len(teams.fake.connector_calls())
    answer = teams.post(activity(teams.fake, text=text, user=user, **kw))
    assert answer.status_code == 200
    return teams.fake.activities(before + 1)[before]


@pytest.mark.parametrize(
    "text",
    [
        "whois +1 (415) 555-0100",
        "/whois 415-555-0100",
        "<at>mfa-whois</at> whois +14155550100",
        "+1 415 555 0100",
    ],
)
def test_personal_chat_lookup_answers_with_every_account(teams: Tenant, text: str) -> None:
    reply = ask(teams, text)

    assert reply.method == "POST" and reply.path == "/teams/v3/conversations/a:1personal/activities"
    card = card_of(reply)
    words = seen(card)
    assert f"**{SHARED}**: 3 accounts" in words
    for user_id in SHARED_IDS:
        assert user_id in words
        link = f"https://manage.auth0.com/dashboard/us/acme/users/{dashboard_id(user_id)}"
        assert f"[Open in Auth0]({link})" in words
    assert "Jane Doe · jane@example.com" in words
    assert "Connection: Username-Password-Authentication" in words
    assert "Linked as **profile number (confirmed)**, from Auth0 export" in words
    assert "Last login: {{DATE(" in words
    assert "Index: last full sync {{DATE(" in words and "stale" not in words
    assert "not proof of identity" in words
    assert actions(card) == {"Verify live": ("whois.verify", {"phone": SHARED})}
    assert [(e["actor"], e["via"], e["accounts"]) for e in teams.audit()] == [(AGENT, "teams", 3)]


def test_channel_and_group_chat_get_no_account_data(teams: Tenant) -> None:
    for kind in ("channel", "groupChat", ""):
        reply = ask(teams, f"<at>mfa-whois</at> whois {SHARED}", conversation_type=kind)
        assert reply.path == "/teams/v3/conversations/19:chan@thread.tacv2/activities"
        text = reply.body["text"]
        assert "only in a personal chat" in text
        assert f"https://teams.microsoft.com/l/chat/0/0?users=28:{APP_ID}" in text
        assert "attachments" not in reply.body
        for leak in (*SHARED_IDS, "jane@example.com", "Jane"):
            assert leak not in json.dumps(reply.body)
    assert teams.audit() == []


def test_a_user_outside_the_agents_is_refused(teams: Tenant) -> None:
    reply = ask(teams, f"whois {SHARED}", user=STRANGER)

    assert "not on the list of agents" in reply.body["text"]
    assert "TEAMS_AGENT_USERS" in reply.body["text"]
    assert "attachments" not in reply.body and "Jane" not in json.dumps(reply.body)
    assert teams.audit() == []


def test_another_tenant_or_no_entra_identity_is_refused(teams: Tenant) -> None:
    other = ask(teams, f"whois {SHARED}", tenant="99999999-9999-4999-8999-999999999999")
    assert "only in the organization" in other.body["text"]
    nobody = ask(teams, f"whois {SHARED}", user=None)
    assert "only Microsoft Teams users" in nobody.body["text"]
    for reply in (other, nobody):
        assert "attachments" not in reply.body
    assert teams.audit() == []


def test_help_and_unusable_numbers_get_the_usage_hint(teams: Tenant) -> None:
    assert ask(teams, "help").body["text"].startswith("**Usage:** `whois NUMBER`")
    refused = ask(teams, "whois hello").body["text"]
    assert "not a usable phone number (contains no digits)" in refused
    assert "US numbers" in refused
    assert teams.audit() == []


def test_over_the_hourly_limit_refused_and_supervisors_alerted_once(store: Store) -> None:
    import_sample(store)
    with open_tenant(store, MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=2) as teams:
        for _ in range(2):
            assert "3 accounts" in seen(card_of(ask(teams, f"whois {SHARED}")))
            teams.ctx.answers.settle(timeout=10)
        for _ in range(2):
            refused = ask(teams, f"whois {SHARED}").body
            assert "2 lookups in the last hour; the limit is 2" in refused["text"]
            assert "attachments" not in refused
        assert "3 accounts" in seen(card_of(ask(teams, f"whois {SHARED}", user=ADMIN)))

        teams.ctx.answers.settle(timeout=10)
        [alert] = teams.fake.alerts(1)
        assert alert.path == "/workflow?sig=secret-signature"
        assert alert.body["type"] == "message"
        [attachment] = alert.body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        words = seen(attachment["content"])
        assert "An agent is over the lookup limit" in words
        assert f"teams:{AGENT} made 2 lookups in the last hour (limit 2" in words
        assert "4155550100" not in json.dumps(alert.body)
        vias = [e["via"] for e in teams.audit() if e["actor"] == AGENT]
        assert vias == ["teams-refused", "teams-refused", "teams", "teams"]
        assert len(teams.fake.alerts(1)) == 1


@pytest.fixture
def many(store: Store) -> Iterator[Tenant]:
    number = "+12025550123"
    changes: list[Any] = []
    for n in range(23):
        user_id = f"auth0|{n:024d}"
        changes.append(AccountSeen(user_id, T0, email=f"user{n}@example.com"))
        changes.append(PhoneLinked(user_id, number, "profile", "export", T0, None, True))
    store.apply(changes)
    with open_tenant(store) as teams:
        yield teams


def test_pages_are_card_actions_that_update_the_card(many: Tenant) -> None:
    first = card_of(ask(many, "whois +1 202 555 0123"))
    words = seen(first)
    assert "23 accounts" in words and "Accounts 1–10 of 23" in words
    assert words.count("@example.com") == 10
    assert actions(first)["Next ▶"] == ("whois.page", {"phone": "+12025550123", "page": 1})

    verb, data = actions(first)["Next ▶"]
    answer = many.post(card_action(many.fake, user=AGENT, verb=verb, data=data))
    assert answer.status_code == 200
    body = answer.json()
    assert body["statusCode"] == 200
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    second = valid_card(body["value"])
    assert "Accounts 11–20 of 23" in seen(second)
    assert set(actions(second)) == {"Verify live", "◀ Previous", "Next ▶"}
    assert [e["via"] for e in many.audit()] == ["teams-page", "teams"]


def test_card_actions_refuse_outsiders_and_odd_values(many: Tenant) -> None:
    for user, verb, data in (
        (STRANGER, "whois.page", {"phone": "+12025550123", "page": 1}),
        (AGENT, "whois.page", {"phone": "not a number", "page": 1}),
        (AGENT, "whois.page", {"phone": "+12025550123", "page": "x"}),
        (AGENT, "something.else", {"phone": "+12025550123"}),
    ):
        body = many.post(card_action(many.fake, user=user, verb=verb, data=data)).json()
        assert body["type"] == "application/vnd.microsoft.activity.message"
        assert "@example.com" not in json.dumps(body)
    assert many.audit() == []


def test_installing_the_bot_in_a_personal_chat_says_how_to_use_it(teams: Tenant) -> None:
    someone = activity(teams.fake, user=AGENT, type="conversationUpdate")
    someone["membersAdded"] = [{"id": "29:someone-else"}]
    assert teams.post(someone).status_code == 200
    update = activity(teams.fake, user=AGENT, type="conversationUpdate")
    update["membersAdded"] = [{"id": f"28:{APP_ID}"}]
    assert teams.post(update).status_code == 200

    [welcome] = teams.fake.activities(1)
    assert "which Auth0 accounts a phone number belongs to" in welcome.body["text"]
    assert "`whois NUMBER`" in welcome.body["text"]
    time.sleep(0.2)
    assert len(teams.fake.connector_calls()) == 1  # only the bot's own arrival is greeted


def test_a_number_on_a_linked_identity_says_which_identity_once_as_plain_text() -> None:
    from bot.answers import WhoisAnswer
    from bot.teams import render

    identity = "sms|5f0c1a2b3c4d5e6f7a8b9c0d"
    link = {
        "kind": "passwordless",
        "method": None,
        "confirmed": True,
        "source": "export",
        "updated_at": "2026-11-26T03:10:00Z",
        "identity": identity,
    }
    account = {"user_id": "auth0|4c8a96a1a663761fa8e7a4f3", "email": "alex@example.com",
               "name": "Alex Kim", "connection": None, "blocked": False, "last_login": None,
               "phones": [link]}  # fmt: skip
    freshness = {"last_full_sync": None, "last_update": None, "stale": False}
    doc = {"phone": "+14155550188", "accounts": [account], "freshness": freshness}
    card = valid_card(render.whois(WhoisAnswer(doc)))

    words = seen(card)
    assert "Linked as **passwordless login (confirmed)**, from Auth0 export" in words
    assert words.count(identity) == 1
    assert f"of the linked identity {identity}" in words
    markdown = [b["text"] for b in _blocks(card["body"]) if b["type"] == "TextBlock"]
    assert not any(identity in text for text in markdown)  # an Auth0 value: a text run only


def _blocks(elements: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for element in elements:
        yield element
        yield from _blocks(element.get("items", []))
