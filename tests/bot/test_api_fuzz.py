"""The lookup API under abuse (property-based): garbage, huge, unicode and injection-shaped
phones, bodies, queries and keys get a clear 4xx, never a 5xx, and never a slow answer."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneindex.store import Store
from tests.bot.api_service import LOOKUP, PBX_KEY, Api, api_service, bearer
from tests.bot.slack_workspace import import_sample

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SLOW_S = 2.0  # generous on a busy shared machine; a lookup takes milliseconds
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
INJECTIONS = [
    "' OR '1'='1", "+1415555010'; DROP TABLE account; --", "%", "_", "*", "+1%", "\\x00",
    "+14155550100\x00", "<script>alert(1)</script>", "${jndi:ldap://x/a}", "{{7*7}}",
    "../../etc/passwd", "+1415555\u202e0100", "＋１４１５５５５０１００",
    "+1 (415) 555-0100 ext. 12",
    "\U0001f4de +14155550100", "tel:;phone-context=+1", "<tel:+14155550100|x>", " " * 70_000,
    "1" * 10_000, "+" * 64, "0" * 64, "anonymous", "Restricted", "unknown", "",
]  # fmt: skip
ODD_BODIES = [
    b'{"phone": "\\ud800"}', b'{"phone": "+1415\\u0000555"}', b'{"phone": "+14155550100"',
    b"[" * 5000 + b"]" * 5000, b'{"phone": "+14155550100", "phone": "anonymous"}',
    b'{"phone": "+14155550100", "timeout_ms": 1e400}', b'{"phone": null}', b"\x00" * 100,
    b'{"phone": "+14155550100", "live": true, "timeout_ms": 100.0}',
]  # fmt: skip
PHONES = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=80),
    st.text(alphabet="+0123456789 -().#x*", max_size=30),
    st.from_regex(r"\+[0-9]{1,18}", fullmatch=True),
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_infinity=False, allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@pytest.fixture
def api(store: Store, tmp_path: Path) -> Iterator[Api]:
    import_sample(store)
    # No limit for the fuzzing key: every example must reach the parser and the index.
    with api_service(store, tmp_path, MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=0) as service:
        yield service


def sane(answer: httpx.Response, started: float, *allowed: int) -> dict[str, Any]:
    """A quick, documented answer with a JSON body."""
    assert time.monotonic() - started < SLOW_S
    assert answer.status_code in allowed, answer.text[:300]
    body = answer.json()
    assert isinstance(body, dict)
    if answer.status_code == 200:
        assert E164.fullmatch(body["phone"]) and isinstance(body["accounts"], list)
    else:
        assert isinstance(body["error"], str) and body["error"]
    return body


@FUZZ
@given(phone=PHONES, live=st.sampled_from([None, False, "true", 1]), timeout=JSON)
def test_any_phone_in_a_json_body(api: Api, phone: str, live: Any, timeout: Any) -> None:
    body: dict[str, Any] = {"phone": phone}
    if live is not None:
        body["live"] = live
    if timeout is not None:
        body["timeout_ms"] = timeout
    big = len(json.dumps(body).encode()) > 64 * 1024
    started = time.monotonic()
    sane(api.post(body), started, *((413,) if big else (200, 400)))


@FUZZ
@given(
    body=st.binary(max_size=4096)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.sampled_from(ODD_BODIES)
)
def test_any_body(api: Api, body: bytes) -> None:
    started = time.monotonic()
    sane(api.http.post(LOOKUP, content=body, headers=bearer()), started, 200, 400)


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["phone", "live", "timeout_ms", "x"]),
        PHONES.filter(lambda p: len(p) < 4096),  # what a URL may carry
    )
)
def test_any_query_string(api: Api, query: dict[str, str]) -> None:
    started = time.monotonic()
    answer = api.http.get(LOOKUP, params=query, headers=bearer())
    sane(answer, started, 200, 400)


@FUZZ
@given(
    header=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200)
    .map(str.strip)
    .filter(bool)  # what HTTP lets a client send
    | st.sampled_from([f"Bearer {PBX_KEY}", f"bearer   {PBX_KEY}", f"Bearer {PBX_KEY[:-1]}"])
)
def test_any_authorization_header(api: Api, header: str) -> None:
    started = time.monotonic()
    answer = api.http.post(
        LOOKUP, json={"phone": "+14155550100"}, headers={"Authorization": header}
    )
    scheme, _, key = header.partition(" ")
    allowed = (200,) if (scheme.lower(), key.strip()) == ("bearer", PBX_KEY) else (401,)
    sane(answer, started, *allowed)


@settings(FUZZ, max_examples=8)
@given(size=st.integers(64 * 1024 + 1, 4 * 1024 * 1024), chunked=st.booleans())
def test_any_body_over_64_kb_is_413(api: Api, size: int, chunked: bool) -> None:
    payload = b'{"phone": "+14155550100", "pad": "' + b"x" * size + b'"}'

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    started = time.monotonic()
    answer = api.http.post(LOOKUP, content=pieces() if chunked else payload, headers=bearer())
    assert sane(answer, started, 413) == {"error": "the body is larger than 64 KB"}
