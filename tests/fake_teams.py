"""Microsoft Teams, as the bot meets it in tests, with no Azure: one local HTTP server that is

- the Bot Framework OpenID metadata (`/v1/.well-known/openidconfiguration`) and its JWKS
  (`/v1/keys`, an RSA key generated here, endorsed for `msteams`),
- the Entra token endpoint (`/{tenant}/oauth2/v2.0/token`, client credentials),
- the connector at the activities' serviceUrl (`/teams/v3/conversations/{id}/activities`,
  POST to send and PUT to update), recording what the bot posts,
- a Workflows webhook (`/workflow`) recording alerts,

and `FakeTeams.token()` signs inbound tokens like the Bot Framework does (or wrongly, on request).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

APP_ID = "00000000-0000-4000-8000-00000000a001"
APP_PASSWORD = "teams-test-password"
TENANT = "00000000-0000-4000-8000-0000000000e1"
ISSUER = "https://api.botframework.com"
BOT_TOKEN = "fake-bot-token"


@dataclass
class Posted:
    """One request the fake connector or webhook received."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.perf_counter)  # when it arrived


def _key() -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, public


class FakeTeams:
    """The local fake; use as a context manager."""

    def __init__(self) -> None:
        self.private, jwk = _key()
        self.kid = "test-key-1"
        self.jwks = [jwk | {"kid": self.kid, "use": "sig", "endorsements": ["msteams"]}]
        self.posted: list[Posted] = []
        self.token_requests: list[dict[str, str]] = []
        self.webhook_status = 202
        self.connector_failures: list[int] = []  # statuses the connector answers first
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeTeams:
        fake = self

        class Handler(_Handler):
            teams = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def service_url(self) -> str:
        return self.base_url + "/teams/"

    @property
    def metadata_url(self) -> str:
        return self.base_url + "/v1/.well-known/openidconfiguration"

    @property
    def webhook_url(self) -> str:
        return self.base_url + "/workflow?sig=secret-signature"

    def roll_key(self) -> None:
        """Sign with a new key from now on, published next to the old one (as Microsoft does)."""
        self.private, jwk = _key()
        self.kid = f"test-key-{len(self.jwks) + 1}"
        self.jwks.append(jwk | {"kid": self.kid, "use": "sig", "endorsements": ["msteams"]})

    # ------------------------------------------------------------------ tokens

    def token(self, service_url: str | None = None, **changes: Any) -> str:
        """A Bot Framework token for our bot; `changes` override claims (None drops one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": APP_ID,
            "exp": now + 3600,
            "nbf": now - 60,
            "serviceurl": service_url or self.service_url,
        }
        claims |= changes
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid})

    # ------------------------------------------------------------------ what the bot did

    def activities(self, count: int = 1, *, timeout: float = 10) -> list[Posted]:
        """The first `count` activities posted or updated, waiting for them to arrive."""
        return self._wait(lambda p: p.path.startswith("/teams/"), count, timeout)

    def alerts(self, count: int = 1, *, timeout: float = 10) -> list[Posted]:
        """The first `count` webhook posts."""
        return self._wait(lambda p: p.path.startswith("/workflow"), count, timeout)

    def connector_calls(self) -> list[Posted]:
        with self._cond:
            return [p for p in self.posted if p.path.startswith("/teams/")]

    def _wait(self, want: Any, count: int, timeout: float) -> list[Posted]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := [p for p in self.posted if want(p)]) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} requests, got {len(found)}"
                self._cond.wait(left)
            return found

    def record(self, item: Posted) -> None:
        with self._cond:
            self.posted.append(item)
            self._cond.notify_all()

    def next_id(self) -> str:
        return f"activity-{next(self._ids)}"


class _Handler(BaseHTTPRequestHandler):
    teams: FakeTeams

    def log_message(self, *_args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/v1/.well-known/openidconfiguration":
            self._send(200, {"issuer": ISSUER, "jwks_uri": self.teams.base_url + "/v1/keys"})
        elif self.path == "/v1/keys":
            self._send(200, {"keys": self.teams.jwks})
        else:
            self._send(404)

    def do_POST(self) -> None:  # noqa: N802
        raw = self._body()
        if self.path == f"/{TENANT}/oauth2/v2.0/token":
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            self.teams.token_requests.append(form)
            good = form.get("client_id") == APP_ID and form.get("client_secret") == APP_PASSWORD
            if not good or form.get("grant_type") != "client_credentials":
                self._send(401, {"error": "invalid_client"})
                return
            self._send(200, {"access_token": BOT_TOKEN, "expires_in": 3599, "token_type": "Bearer"})
            return
        self._connector_or_webhook("POST", raw)

    def do_PUT(self) -> None:  # noqa: N802
        self._connector_or_webhook("PUT", self._body())

    def _connector_or_webhook(self, method: str, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        item = Posted(method, unquote(self.path), json.loads(raw or b"{}"), headers)
        if self.path.startswith("/workflow"):
            self.teams.record(item)
            self._send(self.teams.webhook_status)
            return
        if not self.path.startswith("/teams/v3/conversations/"):
            self._send(404)
            return
        if headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            self._send(401)
            return
        if self.teams.connector_failures:
            status = self.teams.connector_failures.pop(0)
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.teams.record(item)
        self._send(200 if method == "PUT" else 201, {"id": self.teams.next_id()})


def activity(
    fake: FakeTeams,
    *,
    text: str = "",
    user: str | None = None,
    conversation_type: str = "personal",
    tenant: str = TENANT,
    **extra: Any,
) -> dict[str, Any]:
    """A message activity as Teams sends it to the bot."""
    conversation_id = "a:1personal" if conversation_type == "personal" else "19:chan@thread.tacv2"
    body: dict[str, Any] = {
        "type": "message",
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": fake.service_url,
        "from": {"id": "29:user", "name": "Agent", **({"aadObjectId": user} if user else {})},
        "recipient": {"id": f"28:{APP_ID}", "name": "mfa-whois"},
        "conversation": {
            "id": conversation_id,
            "conversationType": conversation_type,
            "tenantId": tenant,
        },
        "channelData": {"tenant": {"id": tenant}},
        "text": text,
    }
    return body | extra


def card_action(
    fake: FakeTeams, *, user: str, verb: str, data: dict[str, Any], card_id: str = "activity-1"
) -> dict[str, Any]:
    """A click on an Action.Execute button of the card `card_id`."""
    body = activity(fake, user=user, type="invoke", name="adaptiveCard/action")
    body.pop("text")
    body["replyToId"] = card_id
    body["value"] = {"action": {"type": "Action.Execute", "verb": verb, "data": data}}
    return body


def texts_of(card: dict[str, Any]) -> Iterator[str]:
    """Every text a person sees in a card (TextBlocks and text runs), in order."""
    for element in card.get("body", []):
        yield from _texts(element)


def _texts(element: dict[str, Any]) -> Iterator[str]:
    if element.get("type") == "TextBlock":
        yield element["text"]
    elif element.get("type") == "RichTextBlock":
        yield "".join(run["text"] for run in element["inlines"])
    for child in element.get("items", []):
        yield from _texts(child)
