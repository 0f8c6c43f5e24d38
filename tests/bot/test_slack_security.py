"""Who may talk to the app: Slack's signature on every request (forged or stale: 401), and only
the app's own workspace (the bot token's auth.test team and Enterprise Grid organization)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.slack import ids
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.slack_workspace import (
    ADMIN,
    AGENT,
    SHARED,
    Workspace,
    import_sample,
    open_workspace,
)
from tests.fake_slack import sign, visible_text

DOCUMENTED_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmib"
    b"IGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    store = Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))
    import_sample(store)
    with open_workspace(store) as workspace:
        yield workspace
    store.engine.dispose()


def test_signing_matches_slacks_documented_example() -> None:
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", DOCUMENTED_BODY) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_forged_and_stale_requests_are_rejected(ws: Workspace) -> None:
    body = ws.send.command_body("/whois", SHARED, AGENT, "cmd")
    form = "application/x-www-form-urlencoded"
    now = int(time.time())

    forged = ws.send.send(body, form, signature=sign("not-the-secret", str(now), body))
    tampered = ws.send.send(
        body.replace(b"U0AGENT001", b"U0AGENT002"),
        form,
        signature=sign(ws.send.secret, str(now), body),
    )
    stale = ws.send.send(body, form, timestamp=now - 6 * 60)
    future = ws.send.send(body, form, timestamp=now + 6 * 60)
    unsigned = ws.http.post("/slack/events", content=body, headers={"Content-Type": form})

    for answer in (forged, tampered, stale, future, unsigned):
        assert answer.status_code == 401
        assert "jane" not in answer.text.lower()
    assert ws.audit() == []
    assert ws.slack.calls == []  # not even auth.test: nothing reached a listener

    assert ws.send.send(body, form, timestamp=now - 4 * 60).status_code == 200


OTHER_TEAM = "T0OTHER001"
GRID = "E0GRID0001"
OTHER_GRID = "E0OTHER001"


def assert_refused_without_data(ws: Workspace, answer: httpx.Response) -> None:
    assert answer.status_code == 200
    seen = answer.text
    for leak in ("Jane", "jane@example.com", "auth0|", "sms|", "4155550100", "account"):
        assert leak not in seen


def test_requests_from_another_workspace_are_refused_without_account_data(
    ws: Workspace,
) -> None:
    command = ws.send.command("/whois", SHARED, AGENT, team_id=OTHER_TEAM)
    assert_refused_without_data(ws, command)
    assert "only in the Slack workspace it is installed in" in visible_text(command.json())

    click = ws.send.click(ids.PAGE_NEXT, f"{SHARED} 0", AGENT, team_id=OTHER_TEAM, response="x")
    assert_refused_without_data(ws, click)
    home = ws.send.event({"type": "app_home_opened", "user": AGENT, "tab": "home"}, team_id="T0X")
    assert home.status_code == 200
    reindex = ws.send.command("/reindex", "status", ADMIN, team_id=OTHER_TEAM)
    assert_refused_without_data(ws, reindex)

    # The app's own workspace still gets its answers (and nothing else was ever answered).
    assert "3 accounts" in visible_text(ws.send.command("/whois", SHARED, AGENT).json())
    ws.settle()
    assert [e["via"] for e in ws.audit()] == ["slack"]
    assert ws.slack.calls_to("views.publish") == []
    assert ws.slack.calls_to("respond:x") == []
    assert [c.method for c in ws.slack.calls] == ["auth.test"]  # the app's own team, once


def test_enterprise_grid_requests_must_come_from_the_apps_organization(tmp_path: Path) -> None:
    store = Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))
    import_sample(store)
    with open_workspace(store, enterprise_id=GRID) as ws:  # installed in one Grid workspace
        foreign = ws.send.command("/whois", SHARED, AGENT, enterprise_id=OTHER_GRID)
        assert_refused_without_data(ws, foreign)
        sibling = ws.send.command("/whois", SHARED, AGENT, team_id=OTHER_TEAM)
        assert_refused_without_data(ws, sibling)  # another workspace of the same organization
        assert "3 accounts" in visible_text(ws.send.command("/whois", SHARED, AGENT).json())
    with open_workspace(store, team_id=GRID, enterprise_id=GRID) as ws:  # installed org-wide
        sibling = ws.send.command("/whois", SHARED, AGENT, team_id=OTHER_TEAM)
        assert "3 accounts" in visible_text(sibling.json())
        foreign = ws.send.command("/whois", SHARED, AGENT, enterprise_id=OTHER_GRID)
        assert_refused_without_data(ws, foreign)
    store.engine.dispose()
