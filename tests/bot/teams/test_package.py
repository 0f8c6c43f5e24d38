"""The Teams app package: teams/manifest.json is valid for Microsoft's schema (vendored), and
`mfa-whois teams-package --url URL` zips it with the bot id and URL filled in and the icons."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.teams.activities import HELP, REINDEX_WORDS, WHOIS_WORDS
from tests.bot.test_cli import run
from tests.fake_teams import APP_ID

ROOT = Path(__file__).resolve().parents[3]
TEAMS = ROOT / "teams"
# Microsoft's manifest schema v1.29, vendored (source in tests/data/teams/README.md).
SCHEMA = json.loads((ROOT / "tests" / "data" / "teams" / "MicrosoftTeams.schema.json").read_text())


def validate(manifest: dict[str, Any]) -> None:
    """Valid as declared (draft-04) and with the later keywords it uses (`const`: draft-07)."""
    jsonschema.Draft4Validator(SCHEMA).validate(manifest)
    jsonschema.Draft7Validator(SCHEMA).validate(manifest)


def png_size(data: bytes) -> tuple[int, int, int]:
    """Width, height and colour type of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height, _depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, colour


def test_the_manifest_in_the_repository_is_valid() -> None:
    manifest = json.loads((TEAMS / "manifest.json").read_text())
    validate(manifest)
    [bot] = manifest["bots"]
    assert set(bot["scopes"]) == {"personal", "team"}
    personal = next(c for c in bot["commandLists"] if c["scopes"] == ["personal"])
    titles = {c["title"] for c in personal["commands"]}
    assert titles <= WHOIS_WORDS | REINDEX_WORDS | HELP and "whois" in titles


def test_teams_package_writes_the_zip_to_upload(tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    done = run(
        ["teams-package", "--url", "https://whois.example.org/", "--out", str(out)],
        tmp_path,
        TEAMS_APP_ID=APP_ID,
    )
    assert done.returncode == 0, done.stderr
    assert "messaging endpoint is https://whois.example.org/api/messages" in done.stdout

    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color, outline = package.read("color.png"), package.read("outline.png")
    validate(manifest)
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == ["*.botframework.com", "whois.example.org"]
    assert manifest["developer"]["websiteUrl"] == "https://whois.example.org"
    assert png_size(color) == (192, 192, 6) and png_size(outline) == (32, 32, 6)
    assert outline == (TEAMS / "outline.png").read_bytes()


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--url", "https://whois.example.org"], {}, "TEAMS_APP_ID is not set"),
        (["--url", "http://whois.example.org"], {"TEAMS_APP_ID": APP_ID}, "public https:// URL"),
        (["--url", "https://x.example"], {"TEAMS_APP_ID": "not-a-guid"}, "not a GUID"),
    ],
)
def test_teams_package_refuses_what_teams_would(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    done = run(["teams-package", *args, "--out", str(tmp_path / "app.zip")], tmp_path, **env)
    assert done.returncode == 2
    assert says in done.stderr
    assert not (tmp_path / "app.zip").exists()


def test_the_package_template_is_installed_with_the_wheel(tmp_path: Path) -> None:
    """`pip install .` (no checkout) still has teams/ for `teams-package`."""
    root = Path(__file__).resolve().parents[3]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mfa_whois-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("manifest.json", "color.png", "outline.png"):
        assert any(n.endswith(f".data/data/share/mfa-whois/teams/{name}") for n in names), name
