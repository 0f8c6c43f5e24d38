"""The Auth0 Management API client against httpx.MockTransport handlers and a fake clock."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobs.auth0 import (
    Auth0AuthError,
    Auth0Client,
    Auth0ConfigError,
    Auth0NotFound,
    Auth0RateLimited,
    Auth0RequestError,
    Auth0Unavailable,
    DownloadExpired,
)
from phoneindex.errors import ConfigError, UnusableNumber, WhoisError
from phoneindex.settings import Settings

SECRET = "sup3r-s3cret-client-value"
WALL0 = 1_800_000_000.0
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A monotonic clock, a wall clock and a sleep that only moves them forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeAuth0:
    """Answers /oauth/token itself and hands every other request to `api`."""

    def __init__(self, api: Handler, expires_in: int = 86400) -> None:
        self.api = api
        self.expires_in = expires_in
        self.token_bodies: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.token_bodies.append(json.loads(request.content))
            token = f"tok-{len(self.token_bodies)}"
            return httpx.Response(200, json={"access_token": token, "expires_in": self.expires_in})
        self.requests.append(request)
        return self.api(request)

    @property
    def bearers(self) -> list[str]:
        return [r.headers["authorization"] for r in self.requests]


def scripted(*answers: httpx.Response | Exception) -> Handler:
    """A handler giving `answers` in order, then repeating the last one."""
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle


@pytest.fixture
def t() -> FakeTime:
    return FakeTime()


def make_client(t: FakeTime, fake: FakeAuth0, **kw: Any) -> Auth0Client:
    kw.setdefault("burst", 100)
    kw.setdefault("max_rps", 10)
    return Auth0Client(
        "acme.us.auth0.com",
        "client-id-1",
        SECRET,
        transport=httpx.MockTransport(fake),
        clock=t.clock,
        wall_clock=t.wall,
        sleep=t.sleep,
        rng=random.Random(7),
        **kw,
    )


def ok(body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(200, json={} if body is None else body, headers=headers)


# --- token ---


def test_token_is_fetched_once_and_reused(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok({"user_id": "auth0|1"})))
    with make_client(t, fake) as client:
        for _ in range(3):
            client.get_user("auth0|1")
    assert fake.token_bodies == [
        {
            "grant_type": "client_credentials",
            "client_id": "client-id-1",
            "client_secret": SECRET,
            "audience": "https://acme.us.auth0.com/api/v2/",
        }
    ]
    assert fake.bearers == ["Bearer tok-1"] * 3
    assert client.stats().token_requests == 1
    assert client.stats().requests_sent == 3


def test_token_is_renewed_shortly_before_expiry(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok()), expires_in=3600)  # renewed 360 s early
    client = make_client(t, fake)
    client.get_user("auth0|1")
    t.now = 3600 - 361
    client.get_user("auth0|1")
    t.now = 3600 - 359
    client.get_user("auth0|1")
    assert fake.bearers == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_401_renews_the_token_once_and_retries(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.Response(401), ok({"user_id": "auth0|1"})))
    assert make_client(t, fake).get_user("auth0|1") == {"user_id": "auth0|1"}
    assert fake.bearers == ["Bearer tok-1", "Bearer tok-2"]


def test_401_twice_is_an_auth_error(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.Response(401, json={"errorCode": "invalid_token"})))
    with pytest.raises(Auth0AuthError) as caught:
        make_client(t, fake).get_logs("900")
    assert len(fake.token_bodies) == 2
    assert len(fake.requests) == 2
    assert caught.value.status == 401
    assert str(caught.value).startswith("Auth0 answered 401 (invalid_token) for GET /api/v2/logs")
    assert "AUTH0_AUDIENCE" in str(caught.value)
    assert "tok-" not in str(caught.value)


def test_403_renews_once_then_names_the_missing_scope(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.Response(403, json={"errorCode": "insufficient_scope"})))
    with pytest.raises(Auth0AuthError) as caught:
        make_client(t, fake).get_authentication_methods("auth0|1")
    assert fake.bearers == ["Bearer tok-1", "Bearer tok-2"]
    assert str(caught.value) == (
        "Auth0 answered 403 (insufficient_scope) for GET /api/v2/users/auth0%7C1/"
        "authentication-methods; the M2M app needs the read:authentication_methods scope"
    )


def test_refused_client_credentials(t: FakeTime) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": "access_denied", "error_description": f"Unauthorized {SECRET}"}
        return httpx.Response(401, json=body)

    client = Auth0Client(
        "acme.us.auth0.com", "cid", SECRET, transport=httpx.MockTransport(handler), sleep=t.sleep
    )
    with pytest.raises(Auth0AuthError) as caught:
        client.get_user("auth0|1")
    assert str(caught.value) == (
        "Auth0 answered 401 (access_denied) for POST /oauth/token; "
        "check AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_AUDIENCE"
    )
    assert isinstance(caught.value, WhoisError)


# --- retries ---


def test_429_waits_until_the_reset_time(t: FakeTime) -> None:
    limited = httpx.Response(
        429,
        json={"statusCode": 429, "errorCode": "too_many_requests"},
        headers={
            "x-ratelimit-limit": "10",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(int(WALL0) + 5),
        },
    )
    fake = FakeAuth0(scripted(limited, ok({"user_id": "auth0|1"})))
    client = make_client(t, fake)
    assert client.get_user("auth0|1") == {"user_id": "auth0|1"}
    assert t.now == pytest.approx(5.0)
    stats = client.stats()
    assert (stats.rate_limited, stats.retries, stats.requests_sent) == (1, 1, 2)
    assert stats.ratelimit_remaining == 0 and stats.ratelimit_limit == 10


def test_429_until_attempts_run_out(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.Response(429)))
    with pytest.raises(Auth0RateLimited) as caught:
        make_client(t, fake).get_job("job_1")
    assert len(fake.requests) == 5
    assert str(caught.value) == "Auth0 answered 429 for GET /api/v2/jobs/job_1 after 5 attempts"
    assert all(s > 0 for s in t.sleeps) and len(t.sleeps) == 4


def test_503_then_success_backs_off(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.Response(503), ok([])))
    assert make_client(t, fake).get_logs("900").events == []
    assert len(t.sleeps) == 1 and 0.25 <= t.sleeps[0] <= 0.5


def test_503_until_attempts_run_out(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.Response(503)))
    with pytest.raises(Auth0Unavailable) as caught:
        make_client(t, fake).get_logs("900")
    assert str(caught.value) == "Auth0 answered 503 for GET /api/v2/logs"
    assert caught.value.attempts == 5
    assert len(fake.requests) == 5
    assert t.sleeps == sorted(t.sleeps)  # growing backoff


def test_timeouts_are_retried(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.ReadTimeout("timed out"), ok({"user_id": "auth0|1"})))
    assert make_client(t, fake).get_user("auth0|1") == {"user_id": "auth0|1"}
    assert len(fake.requests) == 2


def test_connection_errors_until_attempts_run_out(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(httpx.ConnectError("refused")))
    with pytest.raises(Auth0Unavailable) as caught:
        make_client(t, fake).get_user("auth0|1")
    assert str(caught.value) == "Auth0 did not answer GET /api/v2/users/auth0%7C1 (ConnectError)"


@pytest.mark.parametrize(
    ("status", "error"), [(400, Auth0RequestError), (404, Auth0NotFound), (409, Auth0RequestError)]
)
def test_client_errors_are_not_retried(t: FakeTime, status: int, error: type[Exception]) -> None:
    fake = FakeAuth0(scripted(httpx.Response(status, json={"errorCode": "nope"})))
    with pytest.raises(error):
        make_client(t, fake).get_job("job_1")
    assert len(fake.requests) == 1
    assert t.sleeps == []


# --- pacing ---


def test_calls_are_paced_at_max_rps(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok()))
    client = make_client(t, fake, max_rps=10, burst=1)
    for _ in range(8):
        client.get_job("job_1")
    assert t.now >= 0.7 - 1e-9
    assert t.now < 0.8
    assert client.stats().waited_seconds == pytest.approx(t.now)


def test_remaining_zero_makes_the_next_call_wait_for_reset(t: FakeTime) -> None:
    spent = ok({}, **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(WALL0) + 3)})
    fake = FakeAuth0(scripted(spent, ok()))
    client = make_client(t, fake)
    client.get_job("job_1")
    assert t.now == 0
    client.get_job("job_1")
    assert t.now == pytest.approx(3.0)


# --- authentication methods ---

PHONE = {
    "id": "phone|dev_1",
    "type": "phone",
    "name": "SMS",
    "confirmed": True,
    "phone_number": "+14155550100",
    "preferred_authentication_method": "sms",
    "authentication_methods": [{"id": "sms|dev_1", "type": "sms"}],
    "created_at": "2026-01-02T03:04:05.000Z",
    "last_auth_at": "2026-11-27T09:41:00.000Z",
}


def test_authentication_methods_bare_array(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok([PHONE, {"id": "totp|dev_2", "type": "totp"}, "junk"])))
    methods = make_client(t, fake).get_authentication_methods("auth0|abc")
    assert [(m.id, m.type) for m in methods] == [("phone|dev_1", "phone"), ("totp|dev_2", "totp")]
    phone = methods[0]
    assert phone.phone_number == "+14155550100"
    assert (phone.confirmed, phone.preferred_method, phone.methods) == (True, "sms", ("sms",))
    assert phone.created_at is not None and phone.created_at.utcoffset() is not None
    assert phone.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
    assert methods[1].phone_number is None and methods[1].confirmed is None
    request = fake.requests[0]
    assert request.url.raw_path.startswith(b"/api/v2/users/auth0%7Cabc/authentication-methods?")
    assert dict(request.url.params) == {"page": "0", "per_page": "100", "include_totals": "true"}
    assert "+14155550100" not in repr(phone)


def test_authentication_methods_with_totals_paginate(t: FakeTime) -> None:
    page0 = [{"id": f"email|{i}", "type": "email"} for i in range(100)]
    page1 = [PHONE]

    def handler(request: httpx.Request) -> httpx.Response:
        items = page0 if request.url.params["page"] == "0" else page1
        return ok({"start": 0, "limit": 100, "total": 101, "authenticators": items})

    methods = make_client(t, FakeAuth0(handler)).get_authentication_methods("auth0|abc")
    assert len(methods) == 101 and methods[-1].id == "phone|dev_1"


def test_bare_array_pagination_stops_on_a_short_or_repeated_page(t: FakeTime) -> None:
    full = [{"id": f"email|{i}", "type": "email"} for i in range(100)]
    fake = FakeAuth0(scripted(ok(full), ok([])))
    assert len(make_client(t, fake).get_authentication_methods("auth0|a")) == 100
    assert len(fake.requests) == 2
    ignoring_page = FakeAuth0(scripted(ok(full)))  # an API that ignores `page`
    assert len(make_client(t, ignoring_page).get_authentication_methods("auth0|a")) == 100
    assert len(ignoring_page.requests) == 2


def test_masked_and_spaced_numbers_pass_through(t: FakeTime) -> None:
    items = [
        {**PHONE, "id": "phone|a", "phone_number": "XXXXXXXX0100"},
        {
            **PHONE,
            "id": "phone|b",
            "phone_number": "+1 4155550100",
            "preferred_authentication_method": "voice",
        },
    ]
    methods = make_client(t, FakeAuth0(scripted(ok(items)))).get_authentication_methods("sms|1")
    assert [m.phone_number for m in methods] == ["XXXXXXXX0100", "+1 4155550100"]
    assert methods[1].preferred_method == "voice"


# --- logs ---


def test_logs_follow_the_link_header(t: FakeTime) -> None:
    link = '<https://acme.us.auth0.com/api/v2/logs?take=100&from=9003>; rel="next"'
    events = [{"log_id": "9001", "type": "gd_send_sms"}, {"log_id": "9002", "type": "sdu"}]
    fake = FakeAuth0(scripted(ok(events, Link=link)))
    page = make_client(t, fake).get_logs("9000", take=500)
    assert page.events == events and page.next_from == "9003"
    assert dict(fake.requests[0].url.params) == {"from": "9000", "take": "100"}


def test_logs_without_link_continue_from_the_last_event(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok([{"log_id": "9001"}, {"log_id": "9002"}]), ok([])))
    client = make_client(t, fake)
    assert client.get_logs("9000").next_from == "9002"
    caught_up = client.get_logs("9002")
    assert caught_up.events == [] and caught_up.next_from == "9002"


def test_logs_start_from_the_newest_event(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok([{"log_id": "9999", "type": "s"}]), ok([])))
    client = make_client(t, fake)
    page = client.get_logs(None)
    assert page.next_from == "9999" and len(page.events) == 1
    params = dict(fake.requests[0].url.params)
    assert params == {"per_page": "1", "page": "0", "sort": "date:-1"}
    assert client.get_logs(None).next_from is None  # a tenant without logs


# --- export jobs and downloads ---


def test_create_and_poll_an_export_job(t: FakeTime) -> None:
    created = {
        "type": "users_export",
        "status": "pending",
        "id": "job_abc",
        "format": "json",
        "created_at": "2026-11-27T03:00:00.000Z",
        "connection_id": "con_1",
    }
    done = {**created, "status": "completed", "location": "https://s3.example/f.json.gz?X-Sig=1"}
    fake = FakeAuth0(scripted(httpx.Response(201, json=created), ok(done)))
    client = make_client(t, fake)
    job = client.create_users_export(["user_id", "phone_number"], "json", "con_1")
    assert (job.id, job.status, job.completed, job.location) == ("job_abc", "pending", False, None)
    assert json.loads(fake.requests[0].content) == {
        "format": "json",
        "fields": [{"name": "user_id"}, {"name": "phone_number"}],
        "connection_id": "con_1",
    }
    assert fake.requests[0].url.path == "/api/v2/jobs/users-exports"
    job = client.get_job("job_abc")
    assert job.completed and job.location == done["location"]
    assert "X-Sig" not in repr(job)


def test_job_fields_are_parsed_defensively(t: FakeTime) -> None:
    fake = FakeAuth0(
        scripted(
            ok(
                {
                    "id": "job_1",
                    "status": "processing",
                    "percentage_done": "42",
                    "time_left_seconds": 3.5,
                }
            )
        )
    )
    job = make_client(t, fake).get_job("job_1")
    assert (job.percentage_done, job.time_left_seconds, job.failed) == (42, 3, False)


class Chunks(httpx.SyncByteStream):
    """A response body that arrives in pieces, as from a real server."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def test_download_of_a_read_ahead_response(t: FakeTime, tmp_path: Path) -> None:
    handler, _ = storage(httpx.Response(200, content=b"abc"))
    dest = tmp_path / "f.gz"
    assert make_client(t, FakeAuth0(handler)).download("https://s.example/f", dest) == 3
    assert dest.read_bytes() == b"abc"


def storage(*answers: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    """Storage-host answers in order; Management API calls get an empty object."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "acme.us.auth0.com":
            return ok({})
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handle, seen


def test_download_streams_to_the_file(t: FakeTime, tmp_path: Path) -> None:
    payload = b"\x1f\x8b" + bytes(range(256)) * 1000
    chunks = [payload[i : i + 100_000] for i in range(0, len(payload), 100_000)]
    streamed = httpx.Response(200, stream=Chunks(chunks), headers={"content-encoding": "gzip"})
    handler, seen = storage(httpx.Response(503), streamed)
    client = make_client(t, FakeAuth0(handler))
    client.get_job("job_1")  # a token is cached: it must not travel to the storage host
    progress: list[int] = []
    dest = tmp_path / "export.json.gz"
    url = "https://storage.example.com/exports/f.json.gz?X-Amz-Signature=abc"
    assert client.download(url, dest, progress.append) == len(payload)
    assert dest.read_bytes() == payload
    assert progress[-1] == len(payload) and len(progress) >= 3 and progress == sorted(progress)
    get = seen[-1]
    assert get.url.host == "storage.example.com"
    assert "authorization" not in get.headers
    assert get.headers["accept-encoding"] == "identity"
    assert not (tmp_path / "export.json.gz.part").exists()


@pytest.mark.parametrize("status", [403, 404])
def test_expired_download_link(t: FakeTime, tmp_path: Path, status: int) -> None:
    handler, seen = storage(httpx.Response(status, text="<Error>Request has expired</Error>"))
    dest = tmp_path / "export.json.gz"
    with pytest.raises(DownloadExpired) as caught:
        make_client(t, FakeAuth0(handler)).download("https://s.example/f?sig=zzz", dest)
    assert len(seen) == 1 and not dest.exists()
    assert "sig=zzz" not in str(caught.value)


def test_download_failing_for_good(t: FakeTime, tmp_path: Path) -> None:
    handler, seen = storage(httpx.Response(500))
    with pytest.raises(Auth0Unavailable) as caught:
        make_client(t, FakeAuth0(handler)).download("https://s.example/f?sig=1", tmp_path / "f")
    assert len(seen) == 5
    assert str(caught.value) == "Auth0 answered 500 for GET export file"


# --- users ---


def test_search_users_by_phone(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok([{"user_id": "sms|1"}, {"user_id": "auth0|2"}])))
    users = make_client(t, fake).search_users_by_phone("+14155550100")
    assert [u["user_id"] for u in users] == ["sms|1", "auth0|2"]
    request = fake.requests[0]
    assert b"q=phone_number%3A%22%2B14155550100%22" in request.url.query
    assert dict(request.url.params) == {
        "q": 'phone_number:"+14155550100"',
        "search_engine": "v3",
        "per_page": "50",
        "page": "0",
    }


def test_search_refuses_what_is_not_e164(t: FakeTime) -> None:
    fake = FakeAuth0(scripted(ok([])))
    with pytest.raises(UnusableNumber):
        make_client(t, fake).search_users_by_phone('+1" OR email:*')
    assert fake.requests == []


def test_search_error_messages_leave_the_number_out(
    t: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {
        "statusCode": 400,
        "message": "bad query phone_number:+14155550100",
        "errorCode": "invalid_query_string",
    }
    fake = FakeAuth0(scripted(httpx.Response(503), httpx.Response(400, json=echo)))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Auth0RequestError) as caught:
        make_client(t, fake).search_users_by_phone("+14155550100")
    assert str(caught.value) == "Auth0 answered 400 (invalid_query_string) for GET /api/v2/users"
    for text in (str(caught.value), caplog.text):
        assert "4155550100" not in text and SECRET not in text and "tok-1" not in text


# --- configuration and secrets ---


def test_repr_hides_secret_and_token(t: FakeTime) -> None:
    client = make_client(t, FakeAuth0(scripted(ok())))
    client.get_user("auth0|1")
    assert SECRET not in repr(client) and "tok-1" not in repr(client)
    assert "acme.us.auth0.com" in repr(client)


def test_domain_forms() -> None:
    bare = Auth0Client(" acme.us.auth0.com/ ", "cid", SECRET)
    assert (bare.base_url, bare.audience) == (
        "https://acme.us.auth0.com",
        "https://acme.us.auth0.com/api/v2/",
    )
    local = Auth0Client("http://127.0.0.1:8080", "cid", SECRET)
    assert (local.base_url, local.audience) == (
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/api/v2/",
    )
    assert Auth0Client("acme.auth0.com", "cid", SECRET, "urn:custom").audience == "urn:custom"
    for bad in ("", "ftp://acme.auth0.com", "acme.auth0.com/api", "https://"):
        with pytest.raises(Auth0ConfigError, match="AUTH0_DOMAIN"):
            Auth0Client(bad, "cid", SECRET)


def test_requests_go_to_a_base_url_as_given(t: FakeTime) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path.endswith("/oauth/token"):
            return ok({"access_token": "tok", "expires_in": 60})
        return ok({})

    client = Auth0Client(
        "http://127.0.0.1:8080/tenant", "cid", SECRET, transport=httpx.MockTransport(handler)
    )
    client.get_job("job_1")
    assert seen == [
        "http://127.0.0.1:8080/tenant/oauth/token",
        "http://127.0.0.1:8080/tenant/api/v2/jobs/job_1",
    ]


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(
        _env_file=None,
        auth0_domain="acme.eu.auth0.com",
        auth0_client_id="cid",
        auth0_client_secret=SECRET,
        auth0_max_rps=7.5,
    )
    client = Auth0Client.from_settings(settings)
    assert client.base_url == "https://acme.eu.auth0.com"
    assert "max_rps=7.5" in repr(client) and SECRET not in repr(client)
    missing = Settings(_env_file=None, auth0_domain="acme.eu.auth0.com", auth0_client_id="cid")
    with pytest.raises(ConfigError, match="AUTH0_CLIENT_SECRET"):
        Auth0Client.from_settings(missing)


# --- interactive before bulk, with real threads ---


def test_interactive_call_goes_ahead_of_queued_bulk_calls() -> None:
    served: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            served.append("interactive" if "/users/" in request.url.path else "bulk")
        return ok({})

    client = Auth0Client(
        "acme.us.auth0.com",
        "cid",
        SECRET,
        max_rps=25,
        transport=httpx.MockTransport(FakeAuth0(handler)),
    )
    stop = threading.Event()

    def bulk_worker() -> None:
        while not stop.is_set():
            client.get_job("job_1")

    workers = [threading.Thread(target=bulk_worker) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        deadline = time.monotonic() + 2
        while len(served) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(3):
            before = len(served)
            client.get_user("auth0|1")
            with lock:
                ahead = served[before:].index("interactive")
            assert ahead <= 1  # at most the one bulk call that already held a token
    finally:
        stop.set()
        for worker in workers:
            worker.join(2)
