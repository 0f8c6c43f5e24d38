"""App Home: the index at a glance for agents and admins, published when a user opens the tab."""

from __future__ import annotations

import time
from pathlib import Path

from phoneindex.changes import AccountSeen
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.slack_workspace import (
    ADMIN,
    AGENT,
    STRANGER,
    Workspace,
    import_sample,
    open_workspace,
)
from tests.conftest import T0
from tests.fake_slack import visible_text


def test_app_home_shows_index_size_freshness_and_runs(tmp_path: Path) -> None:
    store = Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))
    import_sample(store)
    with open_workspace(store) as ws:
        assert ws.send.event(
            {"type": "app_home_opened", "user": AGENT, "tab": "messages"}
        ).is_success
        assert ws.send.event({"type": "app_home_opened", "user": AGENT, "tab": "home"}).is_success
        [published] = ws.slack.wait_for("views.publish")

    assert published.params["user_id"] == AGENT
    view = published.params["view"]
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    seen = visible_text(view)
    assert "*35 accounts* · numbers: 0 MFA, 12 passwordless, 15 profile" in seen
    assert "Index: last full sync <!date^" in seen
    assert "*Last full sync:* :white_check_mark: #1 succeeded" in seen
    assert "*Running:* nothing" in seen
    assert "Next scheduled full sync: <!date^" in seen and "03:00 UTC" in seen
    assert "/whois NUMBER" in seen
    assert "@" not in seen.replace("<@", "")  # counts only: no account data on the Home tab
    store.engine.dispose()


def test_app_home_is_not_available_outside_the_agents_and_admins(tmp_path: Path) -> None:
    store = Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))
    import_sample(store)
    with open_workspace(store, slack_agent_users=AGENT, slack_admin_users=ADMIN) as ws:
        for user in (STRANGER, ADMIN):
            assert ws.send.event({"type": "app_home_opened", "user": user, "tab": "home"})
        stranger, admin = ws.slack.wait_for("views.publish", count=2)
        if stranger.params["user_id"] != STRANGER:
            stranger, admin = admin, stranger

    refused = visible_text(stranger.params["view"])
    assert "not available to you" in refused
    for data in ("account", "sync", "#1", "Index", "succeeded"):
        assert data not in refused
    assert "*35 accounts*" in visible_text(admin.params["view"])  # admins see it, agents or not
    store.engine.dispose()


def test_the_overview_is_counted_at_most_every_few_seconds(tmp_path: Path) -> None:
    store = Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))
    import_sample(store)

    def opened(ws: Workspace, count: int) -> str:
        assert ws.send.event({"type": "app_home_opened", "user": AGENT, "tab": "home"})
        return visible_text(ws.slack.wait_for("views.publish", count=count)[-1].params["view"])

    with open_workspace(store, overview_seconds=1.0) as ws:
        assert "*35 accounts*" in opened(ws, 1)
        store.apply([AccountSeen("auth0|000000000000000000000036", T0, email="new@example.com")])
        assert "*35 accounts*" in opened(ws, 2)  # within a second: the same count, not recounted
        time.sleep(1.1)
        assert "*36 accounts*" in opened(ws, 3)
    store.engine.dispose()
