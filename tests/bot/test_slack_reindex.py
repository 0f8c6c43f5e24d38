"""/reindex as admins see it: queue a full sync, its status, and the report when it ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobs.auth0 import Auth0Client
from jobs.schedule import Deps, queued_runs_job
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.slack_workspace import (
    ADMIN,
    AGENT,
    ALERTS,
    Workspace,
    import_sample,
    open_workspace,
)
from tests.fake_auth0 import FakeAuth0, make_phone_method, make_user
from tests.fake_slack import visible_text

SECOND_ADMIN = "U0ADMIN002"


def tenant(**kwargs: Any) -> FakeAuth0:
    jane = make_user(
        "auth0|jane", email="jane@example.com", name="Jane Doe", multifactor=["guardian"],
        multifactor_last_modified="2026-01-02T10:00:00Z",
    )  # fmt: skip
    sam = make_user("auth0|sam", email="sam@example.com", phone_number="+14155550100")
    return FakeAuth0(
        users=[jane, sam],
        auth_methods={"auth0|jane": [make_phone_method("+14155550100")]},
        export_polls_to_complete=1,
        rate=50,
        burst=50,
        **kwargs,
    )


def auth0_settings(fake: FakeAuth0) -> dict[str, str]:
    return {
        "auth0_domain": fake.base_url,
        "auth0_client_id": fake.client_id,
        "auth0_client_secret": fake.client_secret,
        "auth0_audience": fake.audience,
        "slack_admin_users": f"{ADMIN},{SECOND_ADMIN}",
    }


def scheduler_deps(ws: Workspace, fake: FakeAuth0) -> Deps:
    """What the scheduler's jobs get, sharing the workspace's index, runs and alerts."""
    ctx = ws.ctx
    return Deps(
        settings=ctx.settings,
        store=ctx.answers.store,
        runs=ctx.answers.runs,
        alerts=ctx.answers.alerts,
        client_factory=lambda: Auth0Client(
            fake.base_url, fake.client_id, fake.client_secret, audience=fake.audience, max_rps=50
        ),
        export_poll_seconds=0.01,
    )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))
    import_sample(store)
    yield store
    store.engine.dispose()


def test_only_admins_may_reindex(store: Store) -> None:
    with open_workspace(store) as ws:
        refused = ws.send.command("/reindex", "", AGENT).json()
        status = ws.send.command("/reindex", "status", AGENT).json()
    for answer in (refused, status):
        assert "Only mfa-whois admins may run /reindex" in visible_text(answer)
    assert store.get_checkpoint("index.last_full_sync") is None
    assert ws.ctx.answers.runs.next_queued("full") is None


def test_admin_queues_one_full_sync_and_sees_its_status(store: Store) -> None:
    with tenant() as fake, open_workspace(store, **auth0_settings(fake)) as ws:
        first = ws.send.command("/reindex", "", ADMIN, response="q1")
        assert first.status_code == 200
        [queued] = ws.slack.responses("q1")
        run = ws.ctx.answers.runs.next_queued("full")
        assert run is not None
        assert (run["status"], run["requested_by"]) == ("queued", f"slack:{ADMIN}")
        assert f"Full sync #{run['id']} is queued" in visible_text(queued)

        ws.send.command("/reindex", "", SECOND_ADMIN, response="q2")
        again = visible_text(ws.slack.responses("q2")[0])
        assert f"already queued (#{run['id']}, asked by <@{ADMIN}>)" in again

        ack = ws.send.command("/reindex", "  Status ", ADMIN, response="st")
        assert ack.status_code == 200 and not ack.content  # the status follows via respond
        status = visible_text(ws.slack.responses("st")[0])
        assert f"*Queued:* :hourglass_flowing_sand: #{run['id']} queued" in status
        assert "*Last full sync:* never" in status and "*Running:* nothing" in status
        usage = visible_text(ws.send.command("/reindex", "now please", ADMIN).json())
        assert usage.startswith("*Usage:* `/reindex`")

        # The scheduler (another process: `mfa-whois clock`) runs it; this one polls.
        queued_runs_job(scheduler_deps(ws, fake))
        first_dm = ws.slack.wait_for("chat.postMessage", 2)
    by_user = {c.params["channel"]: visible_text(c.params) for c in first_dm}
    assert set(by_user) == {ADMIN, SECOND_ADMIN}
    assert f"Full sync #{run['id']} succeeded. The index now holds 2 accounts" in by_user[ADMIN]
    assert ws.ctx.answers.runs.get(run["id"])["status"] == "succeeded"  # type: ignore[index]


def test_in_process_scheduler_reports_a_failed_run_at_once(sqlite_store: Store) -> None:
    with tenant(export_outcome="failed") as fake:
        settings = auth0_settings(fake)
        with open_workspace(sqlite_store, scheduler_embedded=True, **settings) as ws:
            ws.send.command("/reindex", "", ADMIN, response="q")
            ws.slack.responses("q")
            deps = scheduler_deps(ws, fake)
            deps.on_full_sync_end = ws.ctx.reporter.on_full_sync_end  # what `serve` wires
            queued_runs_job(deps)
            dms = [c.params for c in ws.slack.calls_to("chat.postMessage")]

    report = next(m for m in dms if m["channel"] == ADMIN)
    assert ":x: Full sync #2 failed: Auth0 export job" in visible_text(report)
    alert = next(m for m in dms if m["channel"] == ALERTS)
    assert "Full sync failed" in visible_text(alert)
    assert f"requested by <@{ADMIN}>" in visible_text(alert)
