"""Every card the Teams bot produces must be a valid Adaptive Card 1.5 (schema vendored, source
in tests/data/teams/README.md) and fit in a Teams message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_FILE = (
    Path(__file__).resolve().parents[2] / "data" / "teams" / "adaptive-card-1.5.schema.json"
)
VALIDATOR = jsonschema.Draft6Validator(json.loads(SCHEMA_FILE.read_text()))
MAX_MESSAGE = 100_000  # Teams' limit on one message, in bytes
MAX_WORKFLOW_POST = 28_000  # what a Workflows webhook takes


def valid_card(card: dict[str, Any], limit: int = MAX_MESSAGE) -> dict[str, Any]:
    """`card`, after checking it against the schema and the size limit."""
    errors = sorted(VALIDATOR.iter_errors(card), key=lambda e: list(e.path))
    assert not errors, f"{errors[0].message} at {list(errors[0].path)}"
    assert card["version"] == "1.5"
    assert len(json.dumps(card).encode()) < limit
    return card
