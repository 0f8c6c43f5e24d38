"""Inbound Bot Framework tokens: who may post activities to POST /api/messages.

A request is accepted only with `Authorization: Bearer <JWT>` signed RS256 by a key from the
JWKS that TEAMS_OPENID_METADATA_URL's `jwks_uri` names, issued by TEAMS_TOKEN_ISSUER, for the
audience TEAMS_APP_ID, not expired (300 s clock skew), and whose `serviceurl` claim is the
activity's serviceUrl (so a reply, which carries our bot token, only ever goes where Microsoft
said). Keys are cached for a day and fetched again, at most every few minutes, when a token
names a key we do not know (Microsoft rolls its keys).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from phoneindex.errors import WhoisError

log = logging.getLogger(__name__)

SKEW_SECONDS = 300  # Bot Framework's documented clock tolerance
KEYS_TTL_SECONDS = 24 * 3600
REFETCH_MIN_SECONDS = 300  # an unknown key id fetches the keys again at most this often
TIMEOUT = httpx.Timeout(10.0)


class Unauthorized(WhoisError):
    """The request does not carry a valid Bot Framework token (answered 401)."""


class BotFrameworkAuth:
    """Validates Bot Framework bearer tokens against the OpenID metadata's keys."""

    def __init__(
        self,
        *,
        app_id: str,
        metadata_url: str,
        issuer: str,
        http: httpx.AsyncClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app_id = app_id
        self.metadata_url = metadata_url
        self.issuer = issuer
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT)
        self._monotonic = monotonic
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def validate(
        self, authorization: str | None, service_url: str | None, channel_id: str | None
    ) -> dict[str, Any]:
        """The token's claims; Unauthorized (with a reason for the log) for anything else."""
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        if header.get("alg") != "RS256":
            raise Unauthorized(f"algorithm {header.get('alg')!r} is not RS256")
        key = await self._key(str(header.get("kid") or ""))
        endorsements = key.get("endorsements")
        if isinstance(endorsements, list) and channel_id not in endorsements:
            raise Unauthorized("the signing key is not endorsed for this channel")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                jwt.PyJWK(key, algorithm="RS256").key,
                algorithms=["RS256"],
                audience=self.app_id,
                issuer=self.issuer,
                leeway=SKEW_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"token rejected: {type(exc).__name__}") from None
        if not service_url or _norm(claims.get("serviceurl")) != _norm(service_url):
            raise Unauthorized("the serviceurl claim is not the activity's serviceUrl")
        return claims

    async def _key(self, kid: str) -> dict[str, Any]:
        """The JWK with id `kid`, fetching the key set when it is old or does not have it."""
        async with self._lock:
            now = self._monotonic()
            age = None if self._fetched_at is None else now - self._fetched_at
            stale = age is None or age > KEYS_TTL_SECONDS
            if stale or (kid not in self._keys and age is not None and age > REFETCH_MIN_SECONDS):
                await self._fetch_keys()
                self._fetched_at = now
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("the token's key is not among the published signing keys")
        return key

    async def _fetch_keys(self) -> None:
        try:
            meta = (await self._http.get(self.metadata_url)).raise_for_status().json()
            keys = (await self._http.get(str(meta["jwks_uri"]))).raise_for_status().json()
            self._keys = {
                str(k["kid"]): k
                for k in keys.get("keys", [])
                if k.get("kty") == "RSA" and k.get("kid")
            }
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("could not read the Bot Framework signing keys: %s", type(exc).__name__)
            if not self._keys:
                raise Unauthorized("the signing keys are unavailable") from None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("no bearer token")
    return token.strip()


def _norm(url: object) -> str:
    """A service URL for comparison: only a trailing slash may differ."""
    return str(url or "").rstrip("/")
