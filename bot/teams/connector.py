"""The Bot Framework connector: our bot token, and the activities we post to a conversation.

The token comes from OAuth2 client credentials at
`{TEAMS_LOGIN_URL}/{TEAMS_TENANT_ID}/oauth2/v2.0/token` (single tenant: the tenant id is what
makes replies work) and is reused until shortly before it expires. Replies go to the
serviceUrl of the activity they answer, which the inbound token vouched for (bot.teams.auth).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx

from phoneindex.errors import WhoisError

log = logging.getLogger(__name__)

SCOPE = "https://api.botframework.com/.default"
TIMEOUT = httpx.Timeout(10.0)
EARLY_SECONDS = 300  # a token is renewed this long before it expires
ATTEMPTS = 3
RETRIED = frozenset({429, 502, 503, 504})
MAX_WAIT_SECONDS = 5.0  # a reply later than this is no answer to a waiting agent


class ConnectorError(WhoisError):
    """The token endpoint or the connector refused or did not answer."""


class Connector:
    """Posts and updates activities in Teams conversations with a cached bot token."""

    def __init__(
        self,
        *,
        app_id: str,
        password: str,
        tenant_id: str,
        login_url: str,
        http: httpx.AsyncClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app_id = app_id
        self._sleep = sleep
        self._password = password
        self.token_url = f"{login_url.rstrip('/')}/{quote(tenant_id)}/oauth2/v2.0/token"
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT)
        self._monotonic = monotonic
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Connector(app_id={self.app_id!r}, token_url={self.token_url!r})"

    async def send(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str:
        """Post `activity` to the conversation; the id Teams gave it."""
        url = _conversation(service_url, conversation_id) + "/activities"
        body = await self._call("POST", url, activity)
        return str(body.get("id") or "")

    async def update(
        self, service_url: str, conversation_id: str, activity_id: str, activity: dict[str, Any]
    ) -> None:
        """Replace the activity `activity_id` (a card after a live check) in place."""
        url = _conversation(service_url, conversation_id) + f"/activities/{quote(activity_id)}"
        await self._call("PUT", url, activity | {"id": activity_id})

    async def _call(self, method: str, url: str, activity: dict[str, Any]) -> dict[str, Any]:
        renew = False
        for attempt in range(1, ATTEMPTS + 1):
            headers = {"Authorization": f"Bearer {await self._bot_token(renew=renew)}"}
            try:
                response = await self._http.request(method, url, json=activity, headers=headers)
            except httpx.HTTPError as exc:
                raise ConnectorError(f"Teams is unreachable: {type(exc).__name__}") from None
            status = response.status_code
            if attempt < ATTEMPTS and (status == 401 and not renew or status in RETRIED):
                # 401: the token may have been revoked early (one fresh token, once);
                # 429/5xx: Teams asks us to slow down or is briefly unwell.
                renew = status == 401
                await self._sleep(0 if renew else _retry_after(response, attempt))
                continue
            if status >= 300:
                raise ConnectorError(f"Teams answered {status} for {method}")
            try:
                body = response.json() if response.content else {}
            except ValueError:
                body = {}
            return body if isinstance(body, dict) else {}
        raise AssertionError("unreachable")

    async def _bot_token(self, *, renew: bool = False) -> str:
        async with self._lock:
            if renew or self._token is None or self._monotonic() >= self._expires:
                self._token, lifetime = await self._fetch_token()
                self._expires = self._monotonic() + max(lifetime - EARLY_SECONDS, lifetime / 2)
            return self._token

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.app_id,
            "client_secret": self._password,
            "scope": SCOPE,
        }
        try:
            response = await self._http.post(self.token_url, data=form)
        except httpx.HTTPError as exc:
            raise ConnectorError(
                f"the token endpoint is unreachable: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise ConnectorError(
                f"the token endpoint answered {response.status_code} "
                "(check TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID)"
            )
        try:
            body = response.json()
            return str(body["access_token"]), float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise ConnectorError("the token endpoint's answer has no access_token") from None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()


def _retry_after(response: httpx.Response, attempt: int) -> float:
    """Seconds to wait before trying again: Retry-After when given, else 1 s, 2 s, ..."""
    try:
        wait = float(response.headers.get("retry-after", attempt))
    except ValueError:
        wait = float(attempt)
    return min(max(wait, 0.0), MAX_WAIT_SECONDS)


def _conversation(service_url: str, conversation_id: str) -> str:
    return f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}"
