"""The call-center samples in examples/call-center/ against the real lookup API, served."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from phoneindex.store import Store
from tests.bot.api_service import PBX_KEY, Api, api_service
from tests.bot.slack_workspace import SHARED, SHARED_IDS, import_sample

SAMPLES = Path(__file__).resolve().parents[2] / "examples" / "call-center"


def connect_event(address: str) -> dict[str, Any]:
    """An Amazon Connect contact flow's Lambda event, as Connect sends it (the parts used)."""
    return {
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {
                "Channel": "VOICE",
                "CustomerEndpoint": {"Address": address, "Type": "TELEPHONE_NUMBER"},
                "InitiationMethod": "INBOUND",
            },
            "Parameters": {},
        },
    }


class LambdaContext:
    def __init__(self, remaining_ms: int) -> None:
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[Api]:
    import_sample(store)
    with api_service(store, tmp_path) as api:
        yield api


@pytest.fixture
def connect_lambda(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("connect", SAMPLES / "amazon_connect_lambda.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("MFA_WHOIS_API_KEY", PBX_KEY)
    return module


def test_the_connect_lambda_gives_every_account_as_flat_attributes(
    served: Api, connect_lambda: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MFA_WHOIS_URL", str(served.http.base_url))
    found = connect_lambda.lambda_handler(connect_event(SHARED), LambdaContext(3000))
    assert all(isinstance(v, str) for v in found.values())  # Connect takes strings only
    assert found["whois_status"] == "found"
    assert found["whois_count"] == str(len(SHARED_IDS))
    assert sorted(found["whois_user_ids"].split(",")) == sorted(SHARED_IDS)
    assert found["whois_stale"] == "false"
    withheld = connect_lambda.lambda_handler(connect_event("anonymous"), LambdaContext(3000))
    assert withheld == {"whois_status": "unusable", "whois_count": "0"}
    nobody = connect_lambda.lambda_handler(connect_event("+12025550123"), LambdaContext(3000))
    assert (nobody["whois_status"], nobody["whois_count"]) == ("none", "0")
    assert [e["actor"] for e in served.audit()].count("pbx") == 2  # audited as the key's name


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_connect_lambda_answers_error_in_time_when_mfa_whois_is_away(
    connect_lambda: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MFA_WHOIS_URL", f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    answer = connect_lambda.lambda_handler(connect_event(SHARED), LambdaContext(3000))
    assert answer == {"whois_status": "error", "whois_count": "0"}
    assert time.monotonic() - started < 3.0


def twilio(base_url: str, caller: str, key: str = PBX_KEY) -> dict[str, Any]:
    """Run the Twilio Function with Node as Twilio would: (context, event, callback)."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the Twilio sample's test (.ci/run installs it)"
    context = json.dumps({"MFA_WHOIS_URL": base_url, "MFA_WHOIS_API_KEY": key})
    script = f"""
      const fn = require({json.dumps(str(SAMPLES / "twilio-function.js"))});
      const context = {context};
      fn.handler(context, {{ From: {json.dumps(caller)} }}, (err, out) => {{
        process.stdout.write(JSON.stringify({{ err, out }}));
      }});
    """
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    *logged, last = done.stdout.splitlines() or [""]  # the Function's console.log lines first
    assert all(line.startswith("mfa-whois: ") and caller not in line for line in logged), logged
    result: dict[str, Any] = json.loads(last)
    assert result["err"] is None
    return result["out"]  # type: ignore[no-any-return]


def test_the_twilio_function_gives_every_account(served: Api) -> None:
    base = str(served.http.base_url)
    found = twilio(base, SHARED)
    assert (found["status"], found["count"]) == ("found", len(SHARED_IDS))
    assert sorted(a["user_id"] for a in found["accounts"]) == sorted(SHARED_IDS)
    assert twilio(base, "anonymous")["status"] == "unusable"
    assert twilio(base, SHARED, key="wrong-key-0123456789")["status"] == "error"
    assert twilio(f"http://127.0.0.1:{_closed_port()}", SHARED)["status"] == "error"
