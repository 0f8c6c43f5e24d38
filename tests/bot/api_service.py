"""The lookup API under test: the real app served over HTTP, supervisors' alerts caught."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.answers import Answers
from bot.web import create_app
from jobs.alerts import Alerts
from jobs.auth0 import Auth0Client
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import serving
from tests.jobs.test_alerts import Inbox

PBX_KEY = "pbx-0123456789abcdef0123456789"
CRM_KEY = "crm-fedcba9876543210fedcba9876"
# pbx: MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR; crm: its own limit
KEYS = f"pbx:{PBX_KEY},crm:{CRM_KEY}:5"
LOOKUP = "/api/v1/lookup"


def bearer(key: str = PBX_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Api:
    """A client of the served app, its shared rules and the supervisors' channel."""

    http: httpx.Client
    answers: Answers
    alerts: Inbox

    def post(self, body: Any, key: str = PBX_KEY, **kw: Any) -> httpx.Response:
        return self.http.post(LOOKUP, json=body, headers=bearer(key), **kw)

    def audit(self) -> list[dict[str, Any]]:
        """The audit rows, newest first, once the writes behind the answers are done."""
        self.answers.settle(timeout=10)
        return self.answers.trail.audit.entries()


@contextmanager
def api_service(
    store: Store,
    tmp_path: Path,
    *,
    auth0: Callable[[], Auth0Client] | None = None,
    **overrides: Any,
) -> Iterator[Api]:
    """The app with MFA_WHOIS_API_KEYS set (unless overridden), served on a local port."""
    values: dict[str, Any] = {
        "database_url": store.engine.url.render_as_string(hide_password=False),
        "MFA_WHOIS_API_KEYS": KEYS,
        "MFA_WHOIS_SECRET_KEY": "test-audit-key",
        "auth0_domain": "acme.us.auth0.com",
    }
    settings = load_settings(**(values | overrides))
    inbox = Inbox()
    alerts = Alerts(store, inbox, clock=store.clock)
    answers = Answers.build(settings, store, alerts, auth0=auth0, spool_dir=tmp_path / "spool")
    with serving(create_app(settings, store=store, answers=answers)) as http:
        yield Api(http, answers, inbox)
