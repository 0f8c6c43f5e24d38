"""Slack, as the app meets it in tests: a local fake Web API, and signed requests from Slack.

`FakeSlack` is a real HTTP server on 127.0.0.1 serving the Web API methods mfa-whois calls
(auth.test, chat.postMessage, chat.postEphemeral, chat.update, views.publish) under `/api/`,
plus response URLs under `/respond/<name>`. It checks the bot token, records every call, and
can be told to fail a method. `SlackSender` sends what Slack sends (slash commands, button
clicks, events), signed like Slack signs them, to an app under test.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documented example secret
BOT_TOKEN = "xoxb-test-0000-fake"
TEAM_ID = "T0FAKE0001"
BOT_USER = "U0BOT00001"


@dataclass
class Call:
    """One request the fake received."""

    method: str  # Web API method ("chat.postMessage") or "respond:<name>"
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """A local fake of the Slack Web API and of response URLs; use as a context manager."""

    def __init__(
        self, *, token: str = BOT_TOKEN, team_id: str = TEAM_ID, enterprise_id: str | None = None
    ) -> None:
        self.token = token
        self.team_id = team_id  # what auth.test says: the app's own workspace (E... org-wide)
        self.enterprise_id = enterprise_id  # set on Enterprise Grid
        self.calls: list[Call] = []
        self.failures: dict[str, list[str]] = {}
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeSlack:
        fake = self

        class Handler(_Handler):
            slack = fake

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
    def api_url(self) -> str:
        """What SLACK_API_URL is set to."""
        return self.base_url + "/api/"

    def response_url(self, name: str) -> str:
        """A response URL for one interaction."""
        return f"{self.base_url}/respond/{name}"

    # ------------------------------------------------------------------ recorded calls

    def calls_to(self, method: str) -> list[Call]:
        """Calls of one method so far."""
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until `method` was called `count` times; returns those calls."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise AssertionError(f"{method} called {len(found)} times; calls: {seen}")
                self._cond.wait(left)

    def responses(self, name: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """What the app posted to response URL `name` (waits for `count` posts)."""
        return [c.params for c in self.wait_for(f"respond:{name}", count, timeout)]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """chat.postMessage calls to one channel."""
        return [
            c.params for c in self.calls_to("chat.postMessage") if c.params["channel"] == channel
        ]

    def fail(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `{"ok": false, "error": error}`."""
        with self._cond:
            self.failures.setdefault(method, []).extend([error] * times)

    # ------------------------------------------------------------------ answers

    def answer(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> Any:
        """The JSON answer to one Web API call (and record it)."""
        with self._cond:
            self.calls.append(Call(method, params, headers))
            self._cond.notify_all()
            pending = self.failures.get(method)
            if pending:
                return {"ok": False, "error": pending.pop(0)}
        if headers.get("authorization") != f"Bearer {self.token}":
            return {"ok": False, "error": "invalid_auth"}
        ts = f"{time.time():.0f}.{next(self._ts):06d}"
        if method == "auth.test":
            grid = {"enterprise_id": self.enterprise_id} if self.enterprise_id else {}
            return {"ok": True, "url": "https://fake.slack.test/", "team": "Fake",
                    "user": "mfa-whois", "team_id": self.team_id, "user_id": BOT_USER,
                    "bot_id": "B0BOT00001", "is_enterprise_install": self.team_id[0] == "E",
                    **grid}  # fmt: skip
        if method in ("chat.postMessage", "chat.update"):
            if not params.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            message = {"text": params.get("text"), "blocks": params.get("blocks")}
            return {"ok": True, "channel": params["channel"], "ts": params.get("ts", ts),
                    "message": message}  # fmt: skip
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V0FAKE0001", **(params.get("view") or {})}}
        return {"ok": False, "error": "unknown_method"}

    def record_response(self, name: str, body: dict[str, Any]) -> None:
        """A post to a response URL."""
        with self._cond:
            self.calls.append(Call(f"respond:{name}", body))
            self._cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    slack: FakeSlack

    def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.path.startswith("/respond/"):
            self.slack.record_response(self.path.removeprefix("/respond/"), json.loads(raw))
            self._send(200, b"ok", "text/plain")
            return
        if not self.path.startswith("/api/"):
            self._send(404, b"not found", "text/plain")
            return
        method = self.path.removeprefix("/api/").split("?", 1)[0]
        answer = self.slack.answer(method, _params(raw, headers), headers)
        self._send(200, json.dumps(answer).encode(), "application/json; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""


def _params(raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in headers.get("content-type", ""):
        parsed: dict[str, Any] = json.loads(raw)
        return parsed
    params: dict[str, Any] = dict(parse_qsl(raw.decode()))
    for key in ("blocks", "view"):  # form-encoded calls carry these as JSON text
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


# ---------------------------------------------------------------------------- requests from Slack


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSender:
    """Sends signed requests to the app's /slack/events, as Slack does."""

    def __init__(
        self,
        post: Callable[..., httpx.Response],
        fake: FakeSlack,
        *,
        secret: str = SIGNING_SECRET,
        path: str = "/slack/events",
    ) -> None:
        self.post = post
        self.fake = fake
        self.secret = secret
        self.path = path
        self._ids = itertools.count(1)

    def send(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST `body` signed (or with the signature given)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or sign(self.secret, stamp, body),
        }
        return self.post(self.path, content=body, headers=headers)

    def command_body(
        self,
        command: str,
        text: str,
        user_id: str,
        response: str,
        *,
        team_id: str = TEAM_ID,
        enterprise_id: str | None = None,
    ) -> bytes:
        """The form body of a slash command (from another workspace with `team_id`)."""
        grid = self._enterprise(enterprise_id)
        return urlencode(
            {
                "token": "deprecated-verification-token",
                "team_id": team_id,
                "team_domain": "fake",
                **({"enterprise_id": grid, "enterprise_name": "Grid"} if grid else {}),
                "channel_id": "C0SUPPORT01",
                "channel_name": "support",
                "user_id": user_id,
                "user_name": user_id.lower(),
                "command": command,
                "text": text,
                "api_app_id": "A0MFAWHOIS",
                "response_url": self.fake.response_url(response),
                "trigger_id": f"{next(self._ids)}.1.abc",
            }
        ).encode()

    def command(
        self,
        command: str,
        text: str,
        user_id: str,
        *,
        response: str = "cmd",
        team_id: str = TEAM_ID,
        enterprise_id: str | None = None,
    ) -> httpx.Response:
        """A slash command; the app's follow-ups go to response URL `response`."""
        body = self.command_body(
            command, text, user_id, response, team_id=team_id, enterprise_id=enterprise_id
        )
        return self.send(body, "application/x-www-form-urlencoded")

    def click(
        self,
        action_id: str,
        value: str,
        user_id: str,
        *,
        response: str = "click",
        team_id: str = TEAM_ID,
        enterprise_id: str | None = None,
    ) -> httpx.Response:
        """A button click on an ephemeral message (block_actions)."""
        grid = self._enterprise(enterprise_id)
        payload = {
            "type": "block_actions",
            "team": {"id": team_id, "domain": "fake", **({"enterprise_id": grid} if grid else {})},
            "enterprise": {"id": grid, "name": "Grid"} if grid else None,
            "user": {"id": user_id, "username": user_id.lower(), "team_id": team_id},
            "api_app_id": "A0MFAWHOIS",
            "token": "deprecated-verification-token",
            "container": {"type": "message", "message_ts": "1.2", "is_ephemeral": True},
            "trigger_id": f"{next(self._ids)}.1.abc",
            "channel": {"id": "C0SUPPORT01", "name": "support"},
            "response_url": self.fake.response_url(response),
            "actions": [
                {"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                 "text": {"type": "plain_text", "text": "x"}, "action_ts": "1.3"}
            ],
        }  # fmt: skip
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.send(body, "application/x-www-form-urlencoded")

    def event(
        self, event: dict[str, Any], *, team_id: str = TEAM_ID, enterprise_id: str | None = None
    ) -> httpx.Response:
        """An Events API callback (delivered for the installation in `team_id`)."""
        grid = self._enterprise(enterprise_id)
        envelope = {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "enterprise_id": grid,
            "api_app_id": "A0MFAWHOIS",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{next(self._ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": team_id, "user_id": BOT_USER, "is_bot": True, "enterprise_id": grid}
            ],
        }
        return self.send(json.dumps(envelope).encode(), "application/json")

    def _enterprise(self, given: str | None) -> str | None:
        """The organization a request comes from: as given, else the fake's own (if any)."""
        return given or self.fake.enterprise_id


def iter_texts(blocks: list[dict[str, Any]]) -> Iterator[str]:
    """Every text in a list of blocks (sections, contexts, buttons, headers)."""
    for block in blocks:
        if "text" in block and isinstance(block["text"], dict):
            yield block["text"]["text"]
        for element in block.get("elements", []):
            if isinstance(element.get("text"), dict):
                yield element["text"]["text"]
            elif isinstance(element.get("text"), str):
                yield element["text"]
        for item in block.get("fields", []):
            yield item["text"]


def visible_text(message: dict[str, Any]) -> str:
    """All the text an agent sees in a message (blocks, else the fallback text)."""
    blocks = message.get("blocks") or []
    return "\n".join(iter_texts(blocks)) if blocks else str(message.get("text", ""))
