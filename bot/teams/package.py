"""The Teams app package: teams/manifest.json with the bot id and public URL filled in, and the
two icons, zipped flat, ready to upload in the Teams Developer Portal or admin center."""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from phoneindex.errors import ConfigError

ICONS = ("color.png", "outline.png")
BOT_FRAMEWORK_DOMAIN = "*.botframework.com"
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def manifest_dir() -> Path:
    """The `teams/` folder of this checkout, else `./teams`, else the installed copy."""
    installed = Path(sys.prefix) / "share" / "mfa-whois" / "teams"  # pyproject's data-files
    checkout = Path(__file__).resolve().parents[2] / "teams"
    for candidate in (checkout, Path.cwd() / "teams", installed):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise ConfigError(
        "teams/manifest.json not found: reinstall mfa-whois, or run this from a checkout"
    )


def public_host(url: str) -> str:
    """The host of the service's public https URL; ValueError saying why not."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(
            "must be the service's public https:// URL, e.g. https://whois.example.com"
        )
    return parts.hostname


def manifest(template: dict[str, object], app_id: str, url: str) -> dict[str, object]:
    """The manifest with the app and bot id, the developer URLs and validDomains filled in."""
    if not _GUID.fullmatch(app_id):
        raise ConfigError("TEAMS_APP_ID: not a GUID (the Entra app registration's client id)")
    host, base = public_host(url), url.strip().rstrip("/")
    filled = json.loads(json.dumps(template))
    filled["id"] = app_id
    filled["developer"] |= {"websiteUrl": base, "privacyUrl": base, "termsOfUseUrl": base}
    for bot in filled["bots"]:
        bot["botId"] = app_id
    filled["validDomains"] = [BOT_FRAMEWORK_DOMAIN, host]
    return dict(filled)


def write_package(out: Path, app_id: str, url: str, source: Path | None = None) -> Path:
    """Write the zip to `out` (its parent must exist); the path written."""
    folder = source or manifest_dir()
    template = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    filled = manifest(template, app_id, url)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(filled, indent=2, ensure_ascii=False))
        for icon in ICONS:
            package.write(folder / icon, icon)
    return out
