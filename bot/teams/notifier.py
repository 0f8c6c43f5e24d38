"""Supervisor alerts in Teams through a Workflows webhook ("When a Teams webhook request is
received"): the Teams side of jobs.alerts.Notifier. Office 365 connectors are retired."""

from __future__ import annotations

import logging

import httpx

from bot.teams.render import alert as alert_card
from bot.teams.render import attachment
from jobs.alerts import Alert
from jobs.httplog import redact_httpx_logs
from phoneindex.errors import WhoisError
from phoneindex.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0)


class NotifierError(WhoisError):
    """The webhook did not take an alert; the alert policy keeps the incident unsent."""


class WorkflowsNotifier:
    """Posts each alert as an Adaptive Card to TEAMS_ALERT_WEBHOOK_URL; never a full number."""

    def __init__(self, url: str, *, http: httpx.Client | None = None) -> None:
        self._url = url  # its query string signs the request: never logged
        self._http = http  # given (tests), else one per alert: alerts are rare, none left open
        redact_httpx_logs()  # httpx logs each request's URL at INFO

    def __repr__(self) -> str:
        return "WorkflowsNotifier(url=<hidden>)"

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkflowsNotifier | None:
        """The notifier when TEAMS_ALERT_WEBHOOK_URL is set, else None."""
        url = settings.teams_alert_webhook_url
        return cls(url.get_secret_value()) if url is not None else None

    def send(self, alert: Alert) -> None:
        """Post the alert; NotifierError if the workflow did not take it."""
        body = {"type": "message", "attachments": [attachment(alert_card(alert))]}
        try:
            if self._http is not None:
                response = self._http.post(self._url, json=body)
            else:
                with httpx.Client(timeout=TIMEOUT) as http:
                    response = http.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise NotifierError(f"the Teams webhook is unreachable: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise NotifierError(f"the Teams webhook answered {response.status_code}")
        log.info("alert %s (%s) posted to Teams", alert.key, alert.severity)
