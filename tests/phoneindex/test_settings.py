"""MFA_WHOIS_API_KEYS: `name:key` or `name:key:lookups-per-hour`, malformed entries in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneindex.errors import ConfigError
from phoneindex.settings import load_settings
from tests.bot.test_cli import run

KEY = "k3y-0123456789abcdef"
OTHER = "k3y-fedcba9876543210"


def test_names_keys_and_limits() -> None:
    settings = load_settings(MFA_WHOIS_API_KEYS=f" connect:{KEY}:5000 , crm:{OTHER},")

    entries = settings.api_key_entries
    assert [(k.name, k.key, k.lookups_per_hour) for k in entries] == [
        ("connect", KEY, 5000),
        ("crm", OTHER, None),
    ]
    assert KEY not in repr(entries) and KEY not in repr(settings)
    assert load_settings().api_key_entries == ()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("connect", "entry 1 is not name:key or name:key:lookups-per-hour"),
        (f"a:{KEY}:1:2", "entry 1 is not name:key or name:key:lookups-per-hour"),
        (f":{KEY}", "entry 1: the name must be 1-64 letters, digits"),
        (f"call center:{KEY}", "entry 1: the name must be 1-64 letters, digits"),
        ("connect:short", "entry 1 (connect): the key must be 16 or more characters"),
        (f"a:{KEY},b:{OTHER}:many", "entry 2 (b): lookups-per-hour must be 0 or more"),
        (f"a:{KEY},b:{OTHER}:-1", "entry 2 (b): lookups-per-hour must be 0 or more"),
        (f"a:{KEY},a:{OTHER}", "the name a is used twice; names must be unique"),
        (f"a:{KEY},b:{KEY}", "entry 2 (b) has the key of another entry"),
    ],
)
def test_malformed_entries_fail_in_one_line_naming_the_variable(value: str, error: str) -> None:
    with pytest.raises(ConfigError) as failed:
        load_settings(MFA_WHOIS_API_KEYS=value)

    message = str(failed.value)
    assert message.startswith(f"MFA_WHOIS_API_KEYS: {error}")
    assert "\n" not in message and KEY not in message and OTHER not in message


def test_the_cli_says_so_at_start_without_the_key(tmp_path: Path) -> None:
    done = run(["status"], tmp_path, MFA_WHOIS_API_KEYS=f"a:{KEY},a:{OTHER}")

    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        "mfa-whois: error: MFA_WHOIS_API_KEYS: the name a is used twice; names must be unique"
    ]
    assert KEY not in done.stdout
