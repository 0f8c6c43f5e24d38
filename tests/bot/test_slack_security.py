"""Slack's request signatures: Bolt checks every request; forged or stale ones get 401."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.slack_workspace import AGENT, SHARED, Workspace, import_sample, open_workspace
from tests.fake_slack import sign

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
