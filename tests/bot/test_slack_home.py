"""App Home: the index at a glance, published with views.publish when a user opens the tab."""

from __future__ import annotations

from pathlib import Path

from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.slack_workspace import AGENT, import_sample, open_workspace
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
