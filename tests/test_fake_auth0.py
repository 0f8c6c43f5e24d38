"""The fake Auth0 tenant behaves like the documented Management API, seen through plain httpx."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_auth0 import (
    CHECKPOINT_EXPIRED_BODY,
    CON_SMS,
    TOO_MANY_REQUESTS_BODY,
    FakeAuth0,
    iter_ndjson,
    make_log,
    make_method,
    make_phone_method,
    make_user,
)

PHONE = "+14155550100"
# Building a TLS context costs ~0.3 s, so every client here shares one (the fake speaks plain
# HTTP anyway) and calls without the bearer token go through one plain client.
TLS = ssl.create_default_context()
http = httpx.Client(timeout=5, verify=TLS)


def token_request(fake: FakeAuth0, **overrides: str) -> dict[str, str]:
    body = {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "audience": fake.audience,
    }
    body.update(overrides)
    return body


def get_token(fake: FakeAuth0) -> str:
    response = http.post(f"{fake.base_url}/oauth/token", json=token_request(fake))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def tenant() -> dict[str, Any]:
    db_user = make_user(
        "auth0|alice", email="alice@example.com", multifactor=["guardian"], logins_count=7
    )
    sms_user = make_user("sms|bob", phone_number=PHONE)
    spaced = make_user("auth0|carol", email="carol@example.com", multifactor=["guardian"])
    return {
        "users": [db_user, sms_user, spaced],
        "auth_methods": {
            "auth0|alice": [
                make_phone_method(PHONE, device_id="dev_alice"),
                make_method("totp"),
                make_method("recovery-code"),
            ],
            "auth0|carol": [make_phone_method("+1 4155550199", method="voice")],
        },
    }


@pytest.fixture
def fake(tenant: dict[str, Any]) -> Iterator[FakeAuth0]:
    with FakeAuth0(rate=1000, burst=1000, **tenant) as server:
        yield server


@pytest.fixture
def api(fake: FakeAuth0) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {get_token(fake)}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, timeout=5, verify=TLS) as client:
        yield client


def start_export(api: httpx.Client, fields: list[str], **extra: Any) -> dict[str, Any]:
    body = {"format": "json", "fields": [{"name": name} for name in fields], **extra}
    response = api.post("/api/v2/jobs/users-exports", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def poll_until_done(api: httpx.Client, job_id: str, polls: int = 10) -> list[dict[str, Any]]:
    seen = []
    for _ in range(polls):
        job = api.get(f"/api/v2/jobs/{job_id}").json()
        seen.append(job)
        if job["status"] in ("completed", "failed"):
            break
    return seen


# ----------------------------------------------------------------------------- tokens


def test_token_flow_accepts_json_and_form_and_counts_tokens(fake: FakeAuth0) -> None:
    as_json = http.post(f"{fake.base_url}/oauth/token", json=token_request(fake))
    as_form = http.post(f"{fake.base_url}/oauth/token", data=token_request(fake))

    for response in (as_json, as_form):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 86400
        assert body["access_token"].count(".") == 2
    assert as_json.json()["access_token"] != as_form.json()["access_token"]
    assert fake.tokens_issued == 2
    recorded = fake.requests_for("/oauth/token")
    assert [r.body["client_secret"] for r in recorded] == ["***", "***"]


def test_token_endpoint_refuses_bad_credentials_and_audience(fake: FakeAuth0) -> None:
    url = f"{fake.base_url}/oauth/token"
    wrong_secret = http.post(url, json=token_request(fake, client_secret="nope"))
    wrong_audience = http.post(url, json=token_request(fake, audience="https://x/api/v2/"))

    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "access_denied"
    assert wrong_audience.status_code == 403
    assert "Service not enabled" in wrong_audience.json()["error_description"]
    assert fake.tokens_issued == 0


def test_management_api_needs_a_valid_bearer_token(fake: FakeAuth0) -> None:
    url = f"{fake.base_url}/api/v2/users/auth0|alice"
    missing = http.get(url)
    bogus = http.get(url, headers={"Authorization": "Bearer not-a-token"})
    good = http.get(url, headers={"Authorization": f"Bearer {get_token(fake)}"})

    assert (missing.status_code, missing.json()["message"]) == (401, "Missing authentication")
    assert (bogus.status_code, bogus.json()["message"]) == (401, "Invalid token")
    assert good.status_code == 200
    assert "x-ratelimit-limit" not in missing.headers


def test_revoked_tokens_answer_401_until_a_new_token_is_fetched(fake: FakeAuth0) -> None:
    url = f"{fake.base_url}/api/v2/users/auth0|alice"
    old = get_token(fake)
    fake.revoke_tokens()

    assert http.get(url, headers={"Authorization": f"Bearer {old}"}).status_code == 401
    new = get_token(fake)
    assert http.get(url, headers={"Authorization": f"Bearer {new}"}).status_code == 200
    assert fake.tokens_issued == 2


def test_tokens_expire_after_their_lifetime() -> None:
    with FakeAuth0(users=[make_user("auth0|x")], token_lifetime=0.2) as fake:
        headers = {"Authorization": f"Bearer {get_token(fake)}"}
        url = f"{fake.base_url}/api/v2/users/auth0|x"
        assert http.get(url, headers=headers).status_code == 200
        time.sleep(0.3)
        expired = http.get(url, headers=headers)

    assert expired.status_code == 401
    assert expired.json()["message"].startswith("Expired token")


def test_missing_scope_answers_403_insufficient_scope(fake: FakeAuth0) -> None:
    token = fake.issue_token(scopes=["read:users"])
    response = http.get(
        f"{fake.base_url}/api/v2/logs", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403
    assert response.json()["errorCode"] == "insufficient_scope"
    assert "read:logs" in response.json()["message"]


# ----------------------------------------------------------------------------- rate limits


def test_bursting_past_the_bucket_gives_429_with_rate_limit_headers(fake: FakeAuth0) -> None:
    fake.rate, fake.burst = 5, 3
    fake.refill_bucket()
    headers = {"Authorization": f"Bearer {get_token(fake)}"}
    with httpx.Client(base_url=fake.base_url, headers=headers, verify=TLS) as client:
        burst = [client.get("/api/v2/users/auth0|alice") for _ in range(5)]
        time.sleep(0.25)  # 5/s refills one token in 0.2 s
        after_wait = client.get("/api/v2/users/auth0|alice")

    assert [r.status_code for r in burst] == [200, 200, 200, 429, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in burst] == ["2", "1", "0", "0", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in burst)
    limited = burst[3]
    assert limited.json() == TOO_MANY_REQUESTS_BODY
    reset = int(limited.headers["x-ratelimit-reset"])
    assert time.time() - 1 <= reset <= time.time() + 2
    assert "retry-after" not in limited.headers
    assert after_wait.status_code == 200
    assert fake.count("/api/v2/", status=429) == 2
    assert fake.max_in_window(1.0) == 6
    assert fake.max_in_window(1.0, status=200) == 4
    assert fake.sustained_rate() > 0


def test_fail_next_injects_errors_then_recovers(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.fail_next(2, status=503, path_prefix="/api/v2/users/")
    statuses = [api.get("/api/v2/users/auth0|alice").status_code for _ in range(3)]
    logs_call = api.get("/api/v2/logs")

    assert statuses == [503, 503, 200]
    assert logs_call.status_code == 200
    assert [r.status for r in fake.requests_for("/api/v2/users/auth0|alice")] == statuses


def test_injected_429_carries_the_documented_body(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.fail_next(1, status=429)
    response = api.get("/api/v2/users/auth0|alice")

    assert response.status_code == 429
    assert response.json() == TOO_MANY_REQUESTS_BODY
    assert response.headers["x-ratelimit-remaining"] == "0"


def test_slow_answers_make_client_timeouts(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.delay_next(1, 0.5, path_prefix="/api/v2/users/")
    with pytest.raises(httpx.ReadTimeout):
        api.get("/api/v2/users/auth0|alice", timeout=0.1)
    assert api.get("/api/v2/users/auth0|alice").status_code == 200
    fake.slow = 0.5
    with pytest.raises(httpx.ReadTimeout):
        api.get("/api/v2/logs", timeout=0.1)
    fake.slow = 0.0
    assert api.get("/api/v2/logs").status_code == 200


# ----------------------------------------------------------------------------- exports


def test_export_job_goes_pending_processing_completed(api: httpx.Client, fake: FakeAuth0) -> None:
    created = start_export(api, ["user_id", "phone_number", "multifactor"])
    polls = poll_until_done(api, created["id"])

    assert re.fullmatch(r"job_[A-Za-z0-9]{16}", created["id"])
    assert created["type"] == "users_export"
    assert created["status"] == "pending"
    assert created["fields"] == [
        {"name": "user_id"},
        {"name": "phone_number"},
        {"name": "multifactor"},
    ]
    assert [p["status"] for p in polls] == ["processing", "completed"]
    assert 0 < polls[0]["percentage_done"] < 100
    assert polls[1]["location"].startswith(f"{fake.base_url}/downloads/{created['id']}.json.gz?")
    assert "time_left_seconds" in polls[1]


def test_ndjson_download_has_only_requested_fields(api: httpx.Client) -> None:
    job = start_export(api, ["user_id", "phone_number", "multifactor"])
    location = poll_until_done(api, job["id"])[-1]["location"]
    rows = list(iter_ndjson(http.get(location).content))

    assert rows == [
        {"user_id": "auth0|alice", "multifactor": ["guardian"]},
        {"user_id": "sms|bob", "phone_number": PHONE},
        {"user_id": "auth0|carol", "multifactor": ["guardian"]},
    ]


def test_csv_download_quotes_strings_like_auth0(api: httpx.Client) -> None:
    fields = ["user_id", "phone_number", "created_at", "logins_count", "blocked", "identities"]
    job = start_export(api, fields, format="csv", connection_id=CON_SMS)
    location = poll_until_done(api, job["id"])[-1]["location"]
    text = gzip.decompress(http.get(location).content).decode()
    header, line = text.splitlines()
    rows = list(csv.DictReader(io.StringIO(text)))

    assert job["connection"] == "sms"
    assert header == ",".join(fields)
    assert line.startswith(f'"\'sms|bob","\'{PHONE}",2024-')
    assert len(rows) == 1
    row = rows[0]
    assert row["user_id"] == "'sms|bob"
    assert row["phone_number"] == f"'{PHONE}"
    assert row["created_at"].startswith("2024-") and row["created_at"].endswith("Z")
    assert (row["logins_count"], row["blocked"]) == ("1", "false")
    assert json.loads(row["identities"])[0]["connection"] == "sms"


def test_export_limit_and_export_as(api: httpx.Client) -> None:
    fields = [{"name": "user_id"}, {"name": "identities[0].connection", "export_as": "provider"}]
    response = api.post(
        "/api/v2/jobs/users-exports", json={"format": "json", "fields": fields, "limit": 2}
    )
    location = poll_until_done(api, response.json()["id"])[-1]["location"]
    rows = list(iter_ndjson(http.get(location).content))

    assert rows == [
        {"user_id": "auth0|alice", "provider": "Username-Password-Authentication"},
        {"user_id": "sms|bob", "provider": "sms"},
    ]


def test_export_job_can_fail(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.export_outcome = "failed"
    job = start_export(api, ["user_id"])
    last = poll_until_done(api, job["id"])[-1]

    assert last["status"] == "failed"
    assert "location" not in last
    assert last["summary"]["failed"] == 1


def test_export_job_can_stay_processing_forever(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.export_outcome = "never"
    job = start_export(api, ["user_id"])
    polls = poll_until_done(api, job["id"], polls=6)

    assert {p["status"] for p in polls} == {"processing"}
    done = [p["percentage_done"] for p in polls]
    assert done == sorted(done) and done[-1] < 100


def test_export_polls_to_complete_is_configurable(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.export_polls_to_complete = 4
    job = start_export(api, ["user_id"])
    polls = poll_until_done(api, job["id"])

    assert [p["status"] for p in polls] == ["pending", "processing", "processing", "completed"]


def test_download_url_expires_and_a_new_poll_gives_a_fresh_one(
    api: httpx.Client, fake: FakeAuth0
) -> None:
    fake.download_url_ttl = 0.2
    job = start_export(api, ["user_id"])
    first = poll_until_done(api, job["id"])[-1]["location"]
    time.sleep(0.3)
    expired = http.get(first)
    fresh = api.get(f"/api/v2/jobs/{job['id']}").json()["location"]

    assert expired.status_code == 403
    assert "<Code>AccessDenied</Code>" in expired.text
    assert fresh != first
    assert http.get(fresh).status_code == 200


def test_download_refuses_a_bearer_token_like_s3(api: httpx.Client) -> None:
    job = start_export(api, ["user_id"])
    location = poll_until_done(api, job["id"])[-1]["location"]
    with_auth = api.get(location)
    tampered = http.get(location.replace("sig=", "sig=x"))

    assert with_auth.status_code == 400
    assert "<Code>InvalidArgument</Code>" in with_auth.text
    assert tampered.status_code == 403


def test_truncated_download_is_a_broken_gzip(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.truncate_download = True
    job = start_export(api, ["user_id", "email", "name", "identities"])
    location = poll_until_done(api, job["id"])[-1]["location"]
    content = http.get(location).content

    with pytest.raises(EOFError):
        gzip.decompress(content)


def test_export_request_validation(api: httpx.Client) -> None:
    bad_format = api.post("/api/v2/jobs/users-exports", json={"format": "xml"})
    bad_connection = api.post("/api/v2/jobs/users-exports", json={"connection_id": "sms"})
    unknown_connection = api.post(
        "/api/v2/jobs/users-exports", json={"connection_id": "con_0000000000000000"}
    )
    unknown_job = api.get("/api/v2/jobs/job_0000000000000000")

    assert bad_format.status_code == 400
    assert bad_connection.status_code == 400
    assert unknown_connection.status_code == 404
    assert unknown_job.status_code == 404


# ----------------------------------------------------------------------------- auth methods


def test_authentication_methods_bare_array(api: httpx.Client) -> None:
    items = api.get("/api/v2/users/auth0%7Calice/authentication-methods").json()

    assert [i["type"] for i in items] == ["phone", "totp", "recovery-code"]
    phone = items[0]
    assert phone["id"] == "phone|dev_alice"
    assert phone["phone_number"] == PHONE
    assert phone["preferred_authentication_method"] == "sms"
    assert phone["authentication_methods"] == [{"id": "sms|dev_alice", "type": "sms"}]


def test_authentication_methods_with_totals_and_pages(api: httpx.Client) -> None:
    url = "/api/v2/users/auth0|alice/authentication-methods"
    page = api.get(url, params={"include_totals": "true", "page": 1, "per_page": 2}).json()

    assert (page["start"], page["limit"], page["total"]) == (2, 2, 3)
    assert [a["type"] for a in page["authenticators"]] == ["recovery-code"]
    assert api.get(url, params={"page": 5, "per_page": 2}).json() == []


def test_authentication_methods_masked_and_spaced_numbers(
    api: httpx.Client, fake: FakeAuth0
) -> None:
    spaced = api.get("/api/v2/users/auth0|carol/authentication-methods").json()
    fake.mask_mfa_numbers = True
    masked = api.get("/api/v2/users/auth0|alice/authentication-methods").json()

    assert spaced[0]["phone_number"] == "+1 4155550199"
    assert spaced[0]["preferred_authentication_method"] == "voice"
    assert masked[0]["phone_number"] == "XXXXXXXX0100"
    assert fake.auth_methods["auth0|alice"][0]["phone_number"] == PHONE


def test_authentication_methods_of_unknown_user_is_404(api: httpx.Client) -> None:
    response = api.get("/api/v2/users/auth0%7Cnobody/authentication-methods")

    assert response.status_code == 404
    assert response.json()["errorCode"] == "inexistent_user"
    assert api.get("/api/v2/users/sms|bob/authentication-methods").json() == []


# ----------------------------------------------------------------------------- users


def test_get_user_by_id(api: httpx.Client) -> None:
    user = api.get("/api/v2/users/auth0%7Calice").json()

    assert user["email"] == "alice@example.com"
    assert user["multifactor"] == ["guardian"]
    assert user["identities"][0]["provider"] == "auth0"
    assert api.get("/api/v2/users/auth0|ghost").status_code == 404


def test_user_search_matches_root_phone_number_only(api: httpx.Client) -> None:
    def search(number: str) -> Any:
        params: dict[str, str | int] = {
            "q": f'phone_number:"{number}"',
            "search_engine": "v3",
            "per_page": 50,
        }
        return api.get("/api/v2/users", params=params).json()

    assert [u["user_id"] for u in search(PHONE)] == ["sms|bob"]
    assert search("+14155550199") == []  # carol's number lives only in her MFA factor
    unencoded = api.get(f'/api/v2/users?q=phone_number:"{PHONE}"&search_engine=v3')
    assert unencoded.json() == []  # a raw '+' in a query string reads as a space


def test_user_search_with_totals_and_limits(api: httpx.Client) -> None:
    body = api.get("/api/v2/users", params={"include_totals": "true", "per_page": 2}).json()

    assert (body["total"], body["length"], len(body["users"])) == (3, 2, 2)
    assert api.get("/api/v2/users", params={"per_page": 101}).status_code == 400
    assert api.get("/api/v2/users", params={"per_page": 100, "page": 10}).status_code == 400


# ----------------------------------------------------------------------------- logs


def test_logs_checkpoint_follows_link_until_empty(api: httpx.Client, fake: FakeAuth0) -> None:
    events = [make_log("gd_enrollment_complete", "auth0|alice") for _ in range(5)]
    fake.logs.extend(events)
    url = f"{fake.base_url}/api/v2/logs?from={events[0]['log_id']}&take=2"
    pages: list[list[str]] = []
    while True:
        response = api.get(url)
        page = [e["log_id"] for e in response.json()]
        next_url = response.links["next"]["url"]
        if not page:
            assert next_url == url  # an empty page links back to itself
            break
        pages.append(page)
        url = next_url

    assert pages == [[e["log_id"] for e in events[1:3]], [e["log_id"] for e in events[3:5]]]
    assert api.get("/api/v2/logs", params={"from": "0", "take": 101}).status_code == 400


def test_logs_checkpoint_older_than_retention(api: httpx.Client, fake: FakeAuth0) -> None:
    events = [make_log("scpn", "sms|bob") for _ in range(4)]
    fake.logs.extend(events)
    fake.log_retention_floor = events[2]["log_id"]
    expired = api.get("/api/v2/logs", params={"from": events[0]["log_id"], "take": 10})
    fake.expired_checkpoint = "silent"
    silent = api.get("/api/v2/logs", params={"from": events[0]["log_id"], "take": 10})
    fresh = api.get("/api/v2/logs", params={"from": events[2]["log_id"], "take": 10})

    assert expired.status_code == 400
    assert expired.json() == CHECKPOINT_EXPIRED_BODY
    assert [e["log_id"] for e in silent.json()] == [events[2]["log_id"], events[3]["log_id"]]
    assert [e["log_id"] for e in fresh.json()] == [events[3]["log_id"]]


def test_logs_search_mode_is_newest_first(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.logs.extend(
        [
            make_log("ss", "sms|bob", date="2024-03-01T10:00:00.000Z"),
            make_log("sdu", "auth0|x", date="2024-03-03T10:00:00.000Z"),
            make_log("gd_unenroll", "auth0|alice", date="2024-03-02T10:00:00.000Z"),
        ]
    )
    newest = api.get("/api/v2/logs", params={"sort": "date:-1", "per_page": 2}).json()
    second = api.get("/api/v2/logs", params={"per_page": 2, "page": 1}).json()
    oldest_first = api.get("/api/v2/logs", params={"sort": "date:1"}).json()
    only_ss = api.get("/api/v2/logs", params={"q": 'type:"ss"'}).json()

    assert [e["type"] for e in newest] == ["sdu", "gd_unenroll"]
    assert [e["type"] for e in second] == ["ss"]
    assert [e["type"] for e in oldest_first] == ["ss", "gd_unenroll", "sdu"]
    assert [e["user_id"] for e in only_ss] == ["sms|bob"]


def test_make_log_ids_increase_and_details_are_kept() -> None:
    first = make_log("gd_send_sms", "auth0|a", authenticator={"phone_number": PHONE})
    second = make_log("sapi", None, request={"method": "delete", "path": "/api/v2/x"})

    assert second["log_id"] > first["log_id"] and len(second["log_id"]) == 56
    assert int(second["log_id"]) > int(first["log_id"])
    assert first["details"]["authenticator"]["phone_number"] == PHONE
    assert "user_id" not in second


# ----------------------------------------------------------------------------- the rest


def test_unknown_routes_answer_json_404(api: httpx.Client, fake: FakeAuth0) -> None:
    api_route = api.get("/api/v2/nothing-here")
    other = http.get(f"{fake.base_url}/nope")

    assert api_route.status_code == 404 and api_route.json()["statusCode"] == 404
    assert other.status_code == 404 and other.json()["error"] == "Not Found"
    assert fake.errors == []


def test_requests_are_recorded(api: httpx.Client, fake: FakeAuth0) -> None:
    fake.clear_requests()
    api.get("/api/v2/users", params={"q": f'phone_number:"{PHONE}"'})
    api.get("/api/v2/users/auth0%7Calice/authentication-methods")

    [search] = fake.requests_for("/api/v2/users", method="GET")[:1]
    assert search.query == {"q": f'phone_number:"{PHONE}"'}
    assert search.status == 200
    assert fake.requests_for("/api/v2/users/auth0|alice/")[0].path.endswith("methods")
    assert fake.count() == 2
