"""The call-center lookup API through the real app: keys, the lookup document, refusals, limits,
the audit trail and live checks against a fake Auth0 tenant (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bot.web import create_app
from jobs.auth0 import Auth0Client
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.api_service import CRM_KEY, KEYS, LOOKUP, PBX_KEY, Api, api_service, bearer
from tests.bot.slack_workspace import SAMPLE, SHARED, SHARED_IDS, import_sample, serving
from tests.bot.test_cli import run
from tests.bot.test_slack_live import JOHN, tenant
from tests.fake_auth0 import FakeAuth0
from tests.serve_process import clean_env, running

NOBODY = "+12025550123"  # a usable number no account has


@pytest.fixture
def api(store: Store, tmp_path: Path) -> Iterator[Api]:
    import_sample(store)
    with api_service(store, tmp_path, MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=3) as service:
        yield service


def test_post_lists_every_account_of_the_number_and_audits_the_key(api: Api) -> None:
    answer = api.post({"phone": "(415) 555-0100"})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    doc = answer.json()
    assert (doc["query"], doc["phone"]) == ("(415) 555-0100", SHARED)
    assert sorted(a["user_id"] for a in doc["accounts"]) == sorted(SHARED_IDS)
    jane = next(a for a in doc["accounts"] if a["email"] == "jane@example.com")
    assert jane["phones"][0]["kind"] in {"mfa", "passwordless", "profile"}
    assert doc["freshness"]["stale"] is False
    [row] = api.audit()
    assert (row["actor"], row["via"], row["accounts"]) == ("pbx", "api", 3)
    assert "4155550100" not in json.dumps(row)  # a keyed hash, never the number


def test_get_answers_the_same_document(api: Api) -> None:
    posted = api.post({"phone": "tel:+14155550100"}).json()
    got = api.http.get(LOOKUP, params={"phone": "tel:+14155550100"}, headers=bearer(CRM_KEY))

    assert got.status_code == 200 and got.json() == posted
    assert [(r["actor"], r["via"]) for r in api.audit()] == [("crm", "api"), ("pbx", "api")]


def test_a_number_nobody_has_is_200_with_no_accounts(api: Api) -> None:
    answer = api.post({"phone": NOBODY})

    assert answer.status_code == 200
    assert answer.json()["accounts"] == [] and answer.json()["phone"] == NOBODY
    assert [r["accounts"] for r in api.audit()] == [0]


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("anonymous", "withheld caller id"),
        ("Restricted", "withheld caller id"),
        ("unknown", "withheld caller id"),
        ("", "empty: no number given"),
        ("911", "short codes are not indexed"),
        ("1-800-FLOWERS", "contains letters"),
        ("+1 XXX-XXX-0100", "masked number"),
        ("%", "contains no digits"),
    ],
)
def test_unusable_numbers_are_400_with_the_reason_and_not_lookups(
    api: Api, phone: str, reason: str
) -> None:
    posted = api.post({"phone": phone})
    got = api.http.get(LOOKUP, params={"phone": phone}, headers=bearer())

    for answer in (posted, got):
        assert answer.status_code == 400
        assert answer.json()["error"].startswith(f"not a usable phone number: {reason}")
    assert api.audit() == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "the body: Invalid JSON"),
        (b"", "the body: Invalid JSON"),
        (b'["+14155550100"]', "the body: Input should be an object"),
        (b'{"phone": 14155550100}', "phone: Input should be a valid string"),
        (b'{"number": "+14155550100"}', "phone: Field required"),
        (b'{"phone": "+14155550100", "extra": 1}', "extra: Extra inputs are not permitted"),
        (b'{"phone": "+14155550100", "live": "yes"}', "live: Input should be a valid boolean"),
        (b'{"phone": "+1", "timeout_ms": 99}', "timeout_ms: Input should be greater than"),
        (b'{"phone": "+1", "timeout_ms": 8001}', "timeout_ms: Input should be less than"),
        (b"\xff\xfe{}", "the body: Invalid JSON"),
    ],
)
def test_malformed_bodies_are_400_saying_what_is_wrong(api: Api, body: bytes, error: str) -> None:
    answer = api.http.post(LOOKUP, content=body, headers=bearer())

    assert answer.status_code == 400
    assert error in answer.json()["error"]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "phone: the query parameter is missing"),
        ("phone=%2B14155550100&phone=%2B14155550101", "phone: given more than once"),
        ("phone=%2B14155550100&live=maybe", "live: should be true or false"),
        ("phone=%2B14155550100&timeout_ms=1e3", "timeout_ms: should be a whole number"),
        ("phone=%2B14155550100&timeout_ms=50", "timeout_ms: Input should be greater than"),
    ],
)
def test_malformed_queries_are_400(api: Api, query: str, error: str) -> None:
    answer = api.http.get(f"{LOOKUP}?{query}", headers=bearer())

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(error)


def test_bodies_over_64_kb_are_413_declared_or_streamed(api: Api) -> None:
    filler = " " * (64 * 1024 - len('{"phone": "+14155550100"}'))
    at_limit = ('{"phone": "+14155550100"}' + filler).encode()
    assert len(at_limit) == 64 * 1024

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"phone": "+14155550100", "pad": "'
        for _ in range(100):
            yield b"x" * 1024

    assert api.http.post(LOOKUP, content=at_limit, headers=bearer()).status_code == 200
    over = api.http.post(LOOKUP, content=at_limit + b" ", headers=bearer())
    streamed = api.http.post(LOOKUP, content=chunks(), headers=bearer())
    for answer in (over, streamed):
        assert answer.status_code == 413
        assert answer.json() == {"error": "the body is larger than 64 KB"}
    assert len(api.audit()) == 1


def test_keys_are_checked_before_anything_else(api: Api) -> None:
    missing = api.http.post(LOOKUP, json={"phone": SHARED})
    wrong = api.post({"phone": SHARED}, key=PBX_KEY[:-1] + "x")
    basic = api.http.post(LOOKUP, json={"phone": SHARED}, headers={"Authorization": PBX_KEY})
    huge = api.http.post(LOOKUP, content=b"x" * 100_000, headers=bearer("nope"))
    on_get = api.http.get(LOOKUP, params={"phone": SHARED})

    for answer in (missing, wrong, basic, huge, on_get):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith('Bearer realm="mfa-whois"')
        assert "accounts" not in answer.json()
    assert missing.json() == {"error": "missing Authorization: Bearer <key>"}
    assert wrong.json() == {"error": "unknown API key"}
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert api.post({"phone": SHARED}, key=CRM_KEY).status_code == 200
    assert [r["actor"] for r in api.audit()] == ["crm"]


def test_no_keys_configured_is_401_for_everyone(store: Store) -> None:
    import_sample(store)
    url = store.engine.url.render_as_string(hide_password=False)
    with serving(create_app(load_settings(database_url=url), store=store)) as http:
        answers = [
            http.post(LOOKUP, json={"phone": SHARED}, headers=bearer()),
            http.post(LOOKUP, json={"phone": SHARED}, headers=bearer("x" * 30)),
            http.get(LOOKUP, params={"phone": SHARED}),
        ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json() == {
            "error": "the lookup API is not configured here (MFA_WHOIS_API_KEYS is not set)"
        }


def test_each_key_has_its_limit_then_429_with_retry_after_and_one_alert(api: Api) -> None:
    pbx = [api.post({"phone": SHARED}).status_code for _ in range(5)]  # the default limit, 3
    crm = [api.post({"phone": SHARED}, key=CRM_KEY).status_code for _ in range(7)]  # its own, 5

    assert pbx == [200, 200, 200, 429, 429]
    assert crm == [200] * 5 + [429, 429]
    refused = api.post({"phone": NOBODY})
    assert refused.status_code == 429
    retry = int(refused.headers["retry-after"])
    assert retry == 3600  # the clock stands still: the first lookup leaves the hour in an hour
    assert refused.json() == {
        "error": "this key made 3 lookups in the last hour; the limit is 3",
        "retry_after_seconds": retry,
    }
    vias = [(r["actor"], r["via"]) for r in reversed(api.audit())]
    assert vias.count(("pbx", "api")) == 3 and vias.count(("pbx", "api-refused")) == 3
    assert vias.count(("crm", "api")) == 5 and vias.count(("crm", "api-refused")) == 2
    sent = sorted((a.key, a.title) for a in api.alerts.sent)  # one per key, per incident
    assert sent == [
        ("lookups.crm", "An agent is over the lookup limit"),
        ("lookups.pbx", "An agent is over the lookup limit"),
    ]
    pbx_alert = next(a for a in api.alerts.sent if a.key == "lookups.pbx")
    assert pbx_alert.text.startswith("api:pbx made 3 lookups in the last hour (limit 3)")
    assert all("4155550100" not in a.text and PBX_KEY not in a.text for a in api.alerts.sent)


# ---------------------------------------------------------------------------- live checks


@pytest.fixture
def live(store: Store, tmp_path: Path) -> Iterator[tuple[Api, FakeAuth0]]:
    import_sample(store)
    with tenant() as fake:
        client = Auth0Client(
            fake.base_url, fake.client_id, fake.client_secret, audience=fake.audience, max_rps=50
        )
        with api_service(store, tmp_path, auth0=lambda: client) as service:
            yield service, fake
        client.close()


def test_live_rechecks_the_accounts_with_auth0(live: tuple[Api, FakeAuth0]) -> None:
    api, fake = live
    answer = api.post({"phone": SHARED, "live": True})

    assert answer.status_code == 200
    doc = answer.json()
    assert doc["live"]["status"] == "finished" and doc["live"]["checked"] == 3
    assert JOHN not in [a["user_id"] for a in doc["accounts"]]  # Auth0 says his number changed
    assert len(doc["accounts"]) == 2
    assert fake.requests_for("/api/v2/users/")
    assert [(r["actor"], r["via"], r["accounts"]) for r in api.audit()] == [("pbx", "api-live", 2)]


def test_a_slow_auth0_gets_the_index_answer_within_the_budget(
    live: tuple[Api, FakeAuth0],
) -> None:
    api, fake = live
    fake.delay_next(1, 2.0, "/api/v2/users/")

    started = time.monotonic()
    answer = api.post({"phone": SHARED, "live": True, "timeout_ms": 500})
    took = time.monotonic() - started
    meanwhile = api.post({"phone": SHARED})

    assert answer.status_code == 200
    assert took < 1.5, took
    doc = answer.json()
    assert doc["live"]["status"] == "timeout" and "did not answer in time" in doc["live"]["error"]
    assert len(doc["accounts"]) == 3  # what the index knows
    assert meanwhile.status_code == 200 and "live" not in meanwhile.json()
    vias = [(r["via"], r["accounts"]) for r in reversed(api.audit())]
    assert vias == [("api-live", 3), ("api", 3)]
    deadline = time.monotonic() + 10  # the check went on and applied what Auth0 said
    while len(api.post({"phone": SHARED}).json()["accounts"]) == 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_live_checks_waiting_on_a_slow_auth0_do_not_hold_up_other_requests(
    live: tuple[Api, FakeAuth0],
) -> None:
    api, fake = live
    fake.delay_next(40, 3.0, "/api/v2/users/")  # every live read takes 3 s
    body = {"phone": SHARED, "live": True, "timeout_ms": 4000}
    with ThreadPoolExecutor(12) as pool:
        checks = [pool.submit(api.post, body) for _ in range(10)]
        time.sleep(0.5)  # the checks are all waiting on Auth0 now
        started = time.monotonic()
        health = api.http.get("/healthz")
        lookup = api.post({"phone": SHARED})
        quick = time.monotonic() - started
        answers = [c.result(timeout=30) for c in checks]
    assert health.status_code == 200 and lookup.status_code == 200
    assert quick < 1.0, quick  # not queued behind 10 checks of up to 4 s
    assert {a.status_code for a in answers} == {200}


def test_live_without_auth0_credentials_is_503_saying_which(api: Api) -> None:
    answer = api.post({"phone": SHARED, "live": True})

    assert answer.status_code == 503
    assert "AUTH0_CLIENT_ID is not set" in answer.json()["error"]
    assert api.audit() == []


def test_live_on_get(live: tuple[Api, FakeAuth0]) -> None:
    api, _fake = live
    got = api.http.get(LOOKUP, params={"phone": SHARED, "live": "true"}, headers=bearer())

    assert got.status_code == 200 and got.json()["live"]["status"] == "finished"


def test_every_account_of_a_number_on_several_accounts(store: Store, tmp_path: Path) -> None:
    from phoneindex.changes import AccountSeen, PhoneLinked
    from tests.conftest import T0

    changes: list[AccountSeen | PhoneLinked] = []
    for i in range(25):  # more than a Slack page: the API has no cap
        user = f"auth0|shared{i:03d}"
        changes.append(AccountSeen(user, T0, email=f"u{i}@example.com"))
        changes.append(PhoneLinked(user, NOBODY, "profile", "export", T0))
    store.apply(changes)
    with api_service(store, tmp_path) as api:
        doc = api.post({"phone": NOBODY}).json()
    assert len(doc["accounts"]) == 25
    assert {a["user_id"] for a in doc["accounts"]} == {f"auth0|shared{i:03d}" for i in range(25)}


def test_serve_answers_api_keys_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    assert run(["import", str(SAMPLE)], tmp_path, DATABASE_URL=url).returncode == 0
    env = clean_env(DATABASE_URL=url, MFA_WHOIS_API_KEYS=KEYS)
    with running(["serve", "--host", "127.0.0.1", "--no-scheduler"], tmp_path, env) as served:
        found = httpx.post(
            f"{served.base}{LOOKUP}", json={"phone": SHARED}, headers=bearer(CRM_KEY)
        )
        refused = httpx.post(f"{served.base}{LOOKUP}", json={"phone": SHARED})
        served.stop()
    proc, stderr = served.proc, served.stderr
    assert found.status_code == 200 and len(found.json()["accounts"]) == 3
    assert refused.status_code == 401
    assert proc.returncode == 0, stderr
    assert CRM_KEY not in stderr and "4155550100" not in stderr
    audit = run(["audit", "--json"], tmp_path, DATABASE_URL=url)
    [row] = [json.loads(line) for line in audit.stdout.splitlines()]
    assert (row["actor"], row["via"], row["accounts"]) == ("crm", "api", 3)
