"""bot.answers, the rules every surface shares; and bot.shared's deferred writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bot.answers import (
    Answers,
    Asker,
    BadButton,
    HelpAsked,
    NotAnAdmin,
    NotAnAgent,
    OverLimit,
    Roles,
)
from bot.shared import Deferred
from jobs.alerts import Alert, Alerts
from phoneindex.errors import UnusableNumber
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import SHARED, import_sample


def locked() -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def test_a_write_waits_while_the_database_is_locked() -> None:
    tries: list[int] = []

    def write() -> None:
        tries.append(1)
        if len(tries) < 3:
            raise locked()

    writes = Deferred(attempts=5)
    writes.submit("audit record", write)
    writes.flush(timeout=5)
    writes.close()
    assert len(tries) == 3


def test_other_failures_are_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    tries: list[int] = []

    def write() -> None:
        tries.append(1)
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("no such table"))

    writes = Deferred(attempts=5)
    writes.submit("audit record", write)
    writes.flush(timeout=5)
    writes.close()
    assert len(tries) == 1
    assert "deferred audit record failed" in caplog.text


# ---------------------------------------------------------------------- the shared rules

TEAMS = Roles(
    surface="teams",
    agents=frozenset({"aad-agent"}),
    admins=frozenset({"aad-admin"}),
    agents_variable="TEAMS_AGENT_USERS",
    admins_variable="TEAMS_ADMIN_USERS",
)
API = Roles("api", frozenset(), frozenset(), "MFA_WHOIS_API_KEYS", "MFA_WHOIS_API_KEYS")


class Recorder:
    """A notifier that keeps what it was given (as a second chat surface's would send it)."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


@pytest.fixture
def answers(store: Store, tmp_path: Path) -> Iterator[tuple[Answers, Recorder]]:
    import_sample(store)
    recorder = Recorder()
    settings = load_settings(MFA_WHOIS_SECRET_KEY="k", MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=2)
    alerts = Alerts(store, recorder, clock=store.clock)
    made = Answers.build(settings, store, alerts, spool_dir=tmp_path / "spool")
    yield made, recorder
    made.close()


def test_another_surface_gets_the_same_rules_under_its_own_names(
    answers: tuple[Answers, Recorder],
) -> None:
    rules, recorder = answers
    agent = Asker(TEAMS, "aad-agent", 2)

    assert len(rules.whois(agent, "(415) 555-0100").doc["accounts"]) == 3
    assert rules.page(agent, SHARED, 0).page == 0
    with pytest.raises(OverLimit) as over:
        rules.whois(agent, SHARED)
    assert over.value.allowance.used == 2
    with pytest.raises(NotAnAgent) as outsider:
        rules.whois(Asker(TEAMS, "aad-stranger", 2), SHARED)
    assert str(outsider.value) == "aad-stranger is not in TEAMS_AGENT_USERS"
    with pytest.raises(NotAnAdmin):
        rules.queue_full_sync(agent)
    queued = rules.queue_full_sync(Asker(TEAMS, "aad-admin", 2))
    assert queued.created and queued.run["requested_by"] == "teams:aad-admin"

    rules.settle(timeout=10)
    vias = [(e["actor"], e["via"]) for e in rules.trail.audit.entries()]
    assert vias == [
        ("aad-agent", "teams-refused"),
        ("aad-agent", "teams-page"),
        ("aad-agent", "teams"),
    ]
    [alert] = recorder.sent
    assert alert.key == "lookups.aad-agent" and alert.severity == "warning"
    assert alert.text.startswith("teams:aad-agent made 2 lookups in the last hour (limit 2)")


def test_each_actor_has_its_own_limit(answers: tuple[Answers, Recorder]) -> None:
    rules, _ = answers
    pbx = Asker(API, "pbx", 5)  # an API key with its own, higher limit
    for _ in range(5):
        rules.whois(pbx, SHARED)
    with pytest.raises(OverLimit):
        rules.whois(pbx, SHARED)
    rules.whois(Asker(API, "crm", 1), SHARED)
    with pytest.raises(OverLimit):
        rules.whois(Asker(API, "crm", 1), SHARED)


def test_help_unusable_numbers_and_odd_buttons_are_not_lookups(
    answers: tuple[Answers, Recorder],
) -> None:
    rules, _ = answers
    agent = Asker(TEAMS, "aad-agent", 2)
    with pytest.raises(HelpAsked):
        rules.whois(agent, " help ")
    with pytest.raises(UnusableNumber):
        rules.whois(agent, "anonymous")
    for phone, page in (("jane@example.com", 0), (SHARED, -1)):
        with pytest.raises(BadButton):
            rules.page(agent, phone, page)
    rules.settle(timeout=10)
    assert rules.trail.audit.entries() == []
