"""Verify live and Search live: the buttons re-check against the Management API (a fake tenant)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from bot.slack import ids
from jobs.auth0 import Auth0Client
from phoneindex.store import Store
from tests.bot.slack_workspace import (
    AGENT,
    OTHER_AGENT,
    SAMPLE,
    SHARED,
    SHARED_IDS,
    STRANGER,
    Workspace,
    buttons,
    import_sample,
    open_workspace,
)
from tests.fake_auth0 import FakeAuth0, make_user
from tests.fake_slack import visible_text

JOHN = SHARED_IDS[2]
NEW = "+12025550199"


def tenant() -> FakeAuth0:
    """The sample's users of the shared number, John since moved to another number."""
    users = [json.loads(line) for line in SAMPLE.read_text().splitlines() if SHARED in line]
    for user in users:
        if user["user_id"] == JOHN:
            user["phone_number"] = "+14155550111"
    users.append(make_user("sms|5f0c1e2d3a4b5c6d7e8f9012", phone_number=NEW, name="New Caller"))
    return FakeAuth0(users=users, rate=50, burst=50)


@pytest.fixture
def live(store: Store) -> Iterator[tuple[Workspace, FakeAuth0]]:
    import_sample(store)
    with tenant() as fake:
        client = Auth0Client(
            fake.base_url, fake.client_id, fake.client_secret, audience=fake.audience, max_rps=50
        )
        with open_workspace(store, auth0=lambda: client) as ws:
            yield ws, fake
        client.close()


def test_verify_live_rechecks_and_updates_the_answer(live: tuple[Workspace, FakeAuth0]) -> None:
    ws, fake = live
    first = ws.send.command("/whois", SHARED, AGENT).json()
    assert "3 accounts" in visible_text(first)

    clicked = ws.send.click(ids.VERIFY_LIVE, buttons(first)[ids.VERIFY_LIVE], AGENT, response="v")
    assert clicked.status_code == 200

    [updated] = ws.slack.responses("v")
    assert updated["replace_original"] is True
    assert updated["response_type"] == "ephemeral"
    seen = visible_text(updated)
    assert f"*{SHARED}*: 2 accounts" in seen
    assert JOHN not in seen  # Auth0 says John's number changed
    assert "Checked with Auth0" in seen and "3 accounts re-read" in seen
    assert "Linked as *profile number (confirmed)*, from live check" in seen
    assert fake.requests_for("/api/v2/users/")
    vias = [(e["via"], e["accounts"]) for e in ws.audit()]
    assert vias == [("slack-live", 2), ("slack", 3)]


def test_search_live_offered_on_no_match(live: tuple[Workspace, FakeAuth0]) -> None:
    ws, _fake = live
    miss = ws.send.command("/whois", "(202) 555-0199", AGENT).json()
    seen = visible_text(miss)
    assert f"*{NEW}*: no account" in seen and "Search live" in seen
    assert "not proof of identity" not in seen
    assert buttons(miss) == {ids.SEARCH_LIVE: NEW}

    ws.send.click(ids.SEARCH_LIVE, NEW, AGENT, response="s")
    [found] = ws.slack.responses("s")
    seen = visible_text(found)
    assert found["replace_original"] is True
    assert f"*{NEW}*: 1 account" in seen and "New Caller" in seen
    assert "Searched Auth0 users" in seen and "1 match found" in seen
    assert "not proof of identity" in seen


def test_live_checks_refuse_outsiders(live: tuple[Workspace, FakeAuth0]) -> None:
    ws, fake = live
    ws.send.click(ids.VERIFY_LIVE, SHARED, STRANGER, response="x")
    [refusal] = ws.slack.responses("x")
    assert "not on the list of agents" in visible_text(refusal)
    assert refusal["replace_original"] is False
    assert not fake.requests_for("/api/v2/users")


def test_live_checks_need_auth0_settings(store: Store) -> None:
    import_sample(store)
    with open_workspace(store) as ws:  # AUTH0_DOMAIN only: no client id or secret
        ws.send.click(ids.VERIFY_LIVE, SHARED, AGENT, response="n")
        [answer] = ws.slack.responses("n")
    assert "Not available here: AUTH0_CLIENT_ID is not set" in visible_text(answer)


def test_a_slow_live_check_holds_up_nobody(live: tuple[Workspace, FakeAuth0]) -> None:
    ws, fake = live
    fake.delay_next(1, 3.0, "/api/v2/users/")

    started = time.monotonic()
    assert ws.send.click(ids.VERIFY_LIVE, SHARED, AGENT, response="slow").status_code == 200
    meanwhile = ws.send.command("/whois", SHARED, OTHER_AGENT).json()
    answered = time.monotonic() - started

    assert answered < 2.0  # the click's ack and another agent's /whois did not wait for it
    assert "3 accounts" in visible_text(meanwhile)
    [updated] = ws.slack.responses("slow")
    assert time.monotonic() - started >= 3.0
    assert "2 accounts" in visible_text(updated)
