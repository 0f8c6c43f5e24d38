"""manifest.yaml creates the app in one step: valid for Slack, and every entry has a listener."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.slack import ids
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.bot.slack_workspace import ADMIN, SHARED, Workspace, import_sample, open_workspace

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yaml"
# Slack's manifest schema, vendored (source and date in tests/data/slack/README.md).
SCHEMA = ROOT / "tests" / "data" / "slack" / "manifest.schema.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    store = Store(open_database(f"sqlite:///{tmp_path / 'index.db'}"))
    import_sample(store)
    with open_workspace(store) as workspace:
        yield workspace
    store.engine.dispose()


def test_manifest_validates_against_slacks_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]
    assert errors == []


def test_manifest_asks_for_what_the_app_uses(manifest: dict[str, Any]) -> None:
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == ["chat:write", "commands"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is False
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert sorted(commands) == sorted(ids.COMMANDS)
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == list(ids.EVENTS)


def test_every_command_action_and_event_has_a_listener(
    manifest: dict[str, Any], ws: Workspace
) -> None:
    for command in manifest["features"]["slash_commands"]:
        answer = ws.send.command(command["command"], "status", ADMIN)
        assert answer.status_code == 200, command["command"]
    for action_id in ids.ACTIONS:
        value = f"{SHARED} 0" if action_id in (ids.PAGE_NEXT, ids.PAGE_PREVIOUS) else SHARED
        assert ws.send.click(action_id, value, ADMIN).status_code == 200, action_id
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        assert ws.send.event({"type": event, "user": ADMIN, "tab": "home"}).status_code == 200
    # Bolt answers 404 to what no listener handles: the checks above would catch a gap.
    assert ws.send.click("no_such_action", SHARED, ADMIN).status_code == 404
    assert ws.send.command("/nosuchcommand", "", ADMIN).status_code == 404
