"""`reindex` for Teams admins (queue, status, the report when it ends) and the live-check
buttons (the card says "checking", then the answer replaces it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.auth0 import Auth0Client
from jobs.schedule import Deps, queued_runs_job
from phoneindex.store import Store
from tests.bot.slack_workspace import SHARED, SHARED_IDS, import_sample
from tests.bot.teams.cards import valid_card
from tests.bot.teams.conftest import ADMIN, AGENT, STRANGER, Tenant, open_tenant
from tests.bot.teams.test_whois import actions, ask, card_of, seen
from tests.bot.test_slack_live import JOHN
from tests.bot.test_slack_live import tenant as live_tenant
from tests.bot.test_slack_reindex import tenant as sync_tenant
from tests.fake_auth0 import FakeAuth0
from tests.fake_teams import card_action, texts_of


def client(fake: FakeAuth0) -> Auth0Client:
    return Auth0Client(
        fake.base_url, fake.client_id, fake.client_secret, audience=fake.audience, max_rps=50
    )


def test_only_admins_may_reindex(teams: Tenant) -> None:
    for text in ("reindex", "reindex status"):
        assert "Only mfa-whois admins may reindex" in ask(teams, text).body["text"]
    assert teams.ctx.answers.runs.next_queued("full") is None


def test_admin_queues_a_full_sync_sees_its_status_and_hears_how_it_ended(store: Store) -> None:
    with sync_tenant() as fake:
        settings = {
            "auth0_domain": fake.base_url,
            "auth0_client_id": fake.client_id,
            "auth0_client_secret": fake.client_secret,
            "auth0_audience": fake.audience,
        }
        with open_tenant(store, **settings) as teams:
            queued = ask(teams, "reindex", user=ADMIN).body["text"]
            run = teams.ctx.answers.runs.next_queued("full")
            assert run is not None and run["requested_by"] == f"teams:{ADMIN}"
            assert f"Full sync #{run['id']} is queued" in queued
            assert "already queued" in ask(teams, "/reindex", user=ADMIN).body["text"]

            status = card_of(ask(teams, "reindex  Status", user=ADMIN))
            words = seen(status)
            assert f"**Queued:** #{run['id']} queued" in words
            assert "**Last full sync:** never" in words and "**Running:** nothing" in words
            assert "Usage:" in ask(teams, "reindex now please", user=ADMIN).body["text"]

            deps = Deps(
                settings=teams.ctx.settings,
                store=store,
                runs=teams.ctx.answers.runs,
                alerts=teams.ctx.answers.alerts,
                client_factory=lambda: client(fake),
                export_poll_seconds=0.01,
            )
            queued_runs_job(deps)  # the scheduler, as `mfa-whois clock` would run it
            report = teams.fake.activities(5)[4]
    assert report.path == "/teams/v3/conversations/a:1personal/activities"
    assert (
        f"Full sync #{run['id']} succeeded. The index now holds 2 accounts" in (report.body["text"])
    )


@pytest.fixture
def live(store: Store) -> Iterator[Tenant]:
    import_sample(store)
    with live_tenant() as fake:
        auth0 = client(fake)
        with open_tenant(store, auth0=lambda: auth0) as teams:
            yield teams
        auth0.close()


def test_verify_live_says_checking_then_replaces_the_card(live: Tenant) -> None:
    first = card_of(ask(live, f"whois {SHARED}"))
    verb, data = actions(first)["Verify live"]

    clicked = live.post(card_action(live.fake, user=AGENT, verb=verb, data=data))
    assert clicked.status_code == 200
    assert "Checking with Auth0" in "\n".join(texts_of(valid_card(clicked.json()["value"])))

    update = live.fake.activities(2)[1]
    assert update.method == "PUT"
    assert update.path == "/teams/v3/conversations/a:1personal/activities/activity-1"
    words = seen(card_of(update))
    assert f"**{SHARED}**: 2 accounts" in words
    assert JOHN not in words and SHARED_IDS[0] in words
    assert "Checked with Auth0" in words and "3 accounts re-read" in words
    assert [(e["via"], e["accounts"]) for e in live.audit()] == [("teams-live", 2), ("teams", 3)]


def test_live_buttons_refuse_outsiders_at_once(live: Tenant) -> None:
    body = live.post(
        card_action(live.fake, user=STRANGER, verb="whois.verify", data={"phone": SHARED})
    ).json()
    assert body["type"] == "application/vnd.microsoft.activity.message"
    assert "not on the list of agents" in body["value"]
    assert live.audit() == []
