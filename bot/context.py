"""What every command of `mfa-whois` gets: the settings, and the index opened on first use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from jobs.runs import Runs
from phoneindex.db import open_database
from phoneindex.settings import Settings
from phoneindex.store import Store

if TYPE_CHECKING:
    from jobs.alerts import Notifier
    from jobs.schedule import Deps
    from phoneindex.audit import Audit


@dataclass
class Context:
    """What every command gets: settings, and the index opened on first use."""

    settings: Settings
    _store: Store | None = None
    _runs: Runs | None = None
    _deps: Deps | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            engine = open_database(self.settings.database_url)
            hours = timedelta(hours=self.settings.stale_after_hours)
            self._store = Store(engine, stale_after=hours)
        return self._store

    def audit(self) -> Audit:
        """The lookup audit trail (keyed with MFA_WHOIS_SECRET_KEY when set)."""
        from phoneindex.audit import Audit

        key = self.settings.secret_key.get_secret_value() if self.settings.secret_key else None
        return Audit(self.store.engine, secret_key=key)

    @property
    def runs(self) -> Runs:
        if self._runs is None:
            self._runs = Runs(self.store.engine, self.store)
        return self._runs

    def deps(self) -> Deps:
        """What the sync jobs need; Auth0 settings are checked here, before any work."""
        from jobs.alerts import Alerts
        from jobs.auth0 import Auth0Client
        from jobs.schedule import Deps

        s = self.settings
        s.require("auth0_domain", "auth0_client_id", "auth0_client_secret")
        if self._deps is None:
            self._deps = Deps(
                settings=s,
                store=self.store,
                runs=self.runs,
                alerts=Alerts(self.store, notifier(s)),
                client_factory=lambda: Auth0Client.from_settings(s),
            )
        return self._deps


def notifier(settings: Settings) -> Notifier:
    """Where alerts go: SLACK_ALERT_CHANNEL and/or TEAMS_ALERT_WEBHOOK_URL, else the log."""
    from bot.notifiers import notifier as configured

    return configured(settings)
