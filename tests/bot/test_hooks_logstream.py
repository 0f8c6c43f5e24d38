"""POST /hooks/auth0/logs through the real app on uvicorn: Auth0 log-stream deliveries."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from bot.web import create_app
from jobs.auth0 import Auth0Client
from jobs.logstream import LOCK_WAIT_S, MAX_BODY_BYTES
from jobs.runs import Runs
from jobs.sync import CHECKPOINT, LOG_START, sync_logs
from phoneindex.db import make_engine, open_database, writer
from phoneindex.settings import load_settings
from phoneindex.store import LAST_UPDATE, Store
from tests.bot.slack_workspace import ADMIN, open_workspace, serving
from tests.bot.test_cli import run
from tests.fake_auth0 import FakeAuth0, next_log_id
from tests.fake_slack import visible_text
from tests.jobs.test_logs import CLIENT, ENROLLED_SMS, SECOND_FACTOR_SMS, log_event

TOKEN = "ls-7f3a9c2e1b5d4f60a8e2c9b1d3f5a7e9"
LOGS = "/hooks/auth0/logs"
JANE = "auth0|6560a1b2c3d4e5f6a7b8c9d0"
OMAR = "auth0|6560a1b2c3d4e5f6a7b8c9e1"
SMS_USER = "sms|6560a1b2c3d4e5f6a7b8c9d1"
N1, N2, N3 = "+14155550100", "+14155550142", "+442079460958"
EARLY = datetime.fromisoformat("2026-11-20T14:30:05.123+00:00")
_ids = iter(range(10**6))


def at(minutes: float) -> str:
    """An Auth0 log date, `minutes` after EARLY."""
    stamp = EARLY + timedelta(minutes=minutes)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def item(event: dict[str, Any]) -> dict[str, Any]:
    """One log-stream item: the event under `data`, its log_id beside it."""
    log_id = f"9002026112014300612345600000000000000122337206{next(_ids):010d}"
    event = event | {"log_id": log_id}
    return {"log_id": log_id, "data": event}


def enrolled(user: str, number: str, minutes: float) -> dict[str, Any]:
    """gd_enrollment_complete as Guardian writes it (`+1 4155550100`)."""
    shown = number if not number.startswith("+1") else f"+1 {number[2:]}"
    details = {"authenticator": {"phone_number": shown}}
    return log_event(
        "gd_enrollment_complete", user, description=ENROLLED_SMS, details=details, date=at(minutes)
    )


def unenrolled(user: str, number: str, minutes: float) -> dict[str, Any]:
    details = {"authenticator": {"phone_number": number}}
    return log_event(
        "gd_unenroll",
        user,
        description="Unenroll device account",
        details=details,
        date=at(minutes),
    )


def code_sent(user: str, number: str, minutes: float) -> dict[str, Any]:
    details = {"authenticator": {"id": "sms|dev_Ab12Cd34", "phone_number": number}}
    return log_event(
        "gd_send_sms", user, description=SECOND_FACTOR_SMS, details=details, date=at(minutes)
    )


def passwordless_signup(number: str, minutes: float) -> dict[str, Any]:
    body = {"tenant": "acme", "client_id": CLIENT, "connection": "sms", "phone_number": number}
    return log_event(
        "ss",
        SMS_USER,
        connection="sms",
        strategy="sms",
        details={"body": body | {"phone_verified": True}},
        date=at(minutes),
    )


def login(user: str, minutes: float) -> dict[str, Any]:
    return log_event("s", user, description="Successful login", date=at(minutes))


def as_array(events: list[dict[str, Any]]) -> bytes:
    return json.dumps([item(e) for e in events]).encode()


def as_lines(events: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(item(e)) for e in events).encode() + b"\n"


def as_object(event: dict[str, Any]) -> bytes:
    return json.dumps(item(event), indent=2).encode()  # pretty-printed: spans lines


@contextmanager
def hook(store: Store, token: str | None = TOKEN) -> Iterator[httpx.Client]:
    """The real app with the log-stream token configured (or not), served by uvicorn."""
    settings = load_settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        MFA_WHOIS_LOGSTREAM_TOKEN=token,
    )
    with serving(create_app(settings, store=store)) as http:
        yield http


def post(http: httpx.Client, body: Any, auth: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    return http.post(LOGS, content=body, headers=headers)


def accounts(store: Store, phone: str) -> list[tuple[str, str, bool | None]]:
    """(user id, kind, confirmed) of every account the lookup finds for `phone`."""
    doc = store.lookup(phone)
    return sorted(
        (acc["user_id"], p["kind"], p["confirmed"])
        for acc in doc["accounts"]
        for p in acc["phones"]
    )


def last_push(store: Store) -> dict[str, Any] | None:
    return Runs(store.engine, store, clock=store.clock).status_document()["last_push"]


# ------------------------------------------------------------------------- formats


def test_each_content_format_is_applied_before_the_200(store: Store) -> None:
    with hook(store) as http:
        array = post(http, as_array([enrolled(JANE, N1, 0), login(JANE, 1)]))
        assert array.status_code == 200
        assert accounts(store, N1) == [(JANE, "mfa", True)]  # the very next lookup finds it
        lines = post(http, as_lines([passwordless_signup(N2, 2), code_sent(OMAR, N3, 3)]))
        assert lines.status_code == 200
        assert accounts(store, N2) == [(SMS_USER, "passwordless", True)]
        assert accounts(store, N3) == [(OMAR, "mfa", None)]
        single = post(http, as_object(code_sent(OMAR, N1, 4)))
        assert single.status_code == 200
        assert accounts(store, N1) == [(JANE, "mfa", True), (OMAR, "mfa", None)]
    assert array.json() == {"events": 2, "changes": 2, "ignored": 1, "bad": 0}
    assert lines.json()["events"] == 2 and single.json()["events"] == 1
    assert store.lookup(N1)["accounts"][0]["phones"][0]["source"] == "logs"


def test_an_empty_array_is_a_delivery_of_nothing(store: Store) -> None:
    with hook(store) as http:
        answer = post(http, b"[]")
    assert answer.status_code == 200 and answer.json()["events"] == 0
    assert last_push(store) is not None


# ---------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("configured", "sent"),
    [
        (TOKEN, TOKEN),
        (TOKEN, f"Bearer {TOKEN}"),
        (TOKEN, f"bearer  {TOKEN}"),
        (f"Bearer {TOKEN}", TOKEN),
    ],
)
def test_the_token_is_accepted_with_or_without_bearer(
    store: Store, configured: str, sent: str
) -> None:
    with hook(store, configured) as http:
        assert post(http, as_array([enrolled(JANE, N1, 0)]), sent).status_code == 200
    assert accounts(store, N1) == [(JANE, "mfa", True)]


@pytest.mark.parametrize(
    ("configured", "sent"),
    [
        (TOKEN, None),
        (TOKEN, ""),
        (TOKEN, TOKEN[:-1]),
        (TOKEN, f"Bearer {TOKEN}x"),
        (TOKEN, f"Basic {TOKEN}"),
        (None, TOKEN),
        (None, None),
        ("", ""),
    ],
)
def test_a_missing_or_wrong_token_or_none_configured_is_401_and_nothing_applied(
    store: Store, configured: str | None, sent: str | None
) -> None:
    with hook(store, configured) as http:
        answer = post(http, as_array([enrolled(JANE, N1, 0)]), sent)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in answer.text
    assert accounts(store, N1) == [] and last_push(store) is None


# ------------------------------------------------------------- replay and reorder


def test_a_redelivered_batch_changes_nothing(store: Store) -> None:
    batch = as_lines([enrolled(JANE, N1, 0), passwordless_signup(N2, 1), unenrolled(OMAR, N3, 2)])
    with hook(store) as http:
        assert post(http, batch).status_code == 200
        first = (store.lookup(N1), store.lookup(N2), store.lookup(N3), store.summary())
        assert post(http, batch).status_code == 200
        again = (store.lookup(N1), store.lookup(N2), store.lookup(N3), store.summary())
    assert again == first
    assert accounts(store, N1) == [(JANE, "mfa", True)]


def _two_batches(user: str, mfa: str, other: str) -> tuple[bytes, bytes]:
    """An enrollment of `mfa`, then (later) its removal and the enrollment of `other`."""
    first = as_array([enrolled(user, mfa, 0), code_sent(user, mfa, 5)])
    later = as_lines([unenrolled(user, mfa, 10), enrolled(user, other, 11)])
    return first, later


def test_two_batches_in_either_order_give_the_same_index(store: Store) -> None:
    in_order = _two_batches(JANE, N1, N2)
    reversed_ = _two_batches(OMAR, N3, "+14155550177")
    with hook(store) as http:
        for body in in_order:
            assert post(http, body).status_code == 200
        for body in reversed(reversed_):
            assert post(http, body).status_code == 200
    assert accounts(store, N1) == [] and accounts(store, N3) == []  # the old event did not win
    assert accounts(store, N2) == [(JANE, "mfa", True)]
    assert accounts(store, "+14155550177") == [(OMAR, "mfa", True)]


def test_an_old_event_never_overwrites_a_newer_fact(store: Store) -> None:
    with hook(store) as http:
        assert post(http, as_array([unenrolled(JANE, N1, 30)])).status_code == 200
        late = post(http, as_object(enrolled(JANE, N1, 0)))  # delivered late, happened earlier
        assert late.status_code == 200 and late.json()["changes"] == 2
        assert accounts(store, N1) == []
        assert post(http, as_object(code_sent(JANE, N1, 31))).status_code == 200
    # A newer event does win; `confirmed` is still the last one that knew it (the enrollment).
    assert accounts(store, N1) == [(JANE, "mfa", True)]


# ---------------------------------------------------------------- bad deliveries


def test_a_body_over_5_mb_is_413_and_nothing_applied(store: Store) -> None:
    padding = {"user_agent": "x" * 1000}
    events = [enrolled(JANE, N1, 0)] + [login(OMAR, 1) | padding] * (MAX_BODY_BYTES // 1000)
    body = as_array(events)
    assert len(body) > MAX_BODY_BYTES

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    with hook(store) as http:
        declared = post(http, body)
        streamed = http.post(LOGS, content=chunks(), headers={"Authorization": TOKEN})
        assert post(http, b"[]").status_code == 200  # the service goes on
    assert declared.status_code == 413 and streamed.status_code == 413
    assert "5 MB" in declared.json()["error"]
    assert accounts(store, N1) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"not json at all", "not JSON"),
        (
            b'[{"log_id": "1", "data": {}}, {"log_id": "2"}]',
            'item 2 is not a log-stream item: no "data"',
        ),
        (b"[1, 2]", "item 1 is not a log-stream item"),
        (b'{"log_id": "1", "data": "x"}', "the object is not a log-stream item"),
        (b'{"log_id": "1", "data": {}}\n{"log_id": 2, "data": {\n', "line 2 is not JSON"),
        (b'[{"log_id": "1", "data": {}}', "not a JSON array"),
    ],
)
def test_a_malformed_body_is_400_with_its_reason(store: Store, body: bytes, reason: str) -> None:
    with hook(store) as http:
        answer = post(http, body)
    assert answer.status_code == 400 and reason in answer.json()["error"]
    assert last_push(store) is None


def test_a_malformed_batch_applies_nothing_of_its_good_items(store: Store) -> None:
    good = [item(enrolled(JANE, N1, 0)), item(passwordless_signup(N2, 1))]
    bad = {"log_id": "900201", "event": enrolled(OMAR, N3, 2)}  # no `data`
    with hook(store) as http:
        answer = post(http, json.dumps([*good, bad]).encode())
        lines = as_lines([enrolled(OMAR, N3, 3)]) + b"{not json\n"
        broken = post(http, lines)
    assert answer.status_code == 400 and "item 3" in answer.json()["error"]
    assert broken.status_code == 400 and "line 2" in broken.json()["error"]
    assert accounts(store, N1) == accounts(store, N2) == accounts(store, N3) == []
    assert store.freshness()["last_update"] is None and last_push(store) is None


def test_irrelevant_and_malformed_events_are_counted_not_refused(store: Store) -> None:
    no_user = enrolled(JANE, N2, 1)
    del no_user["user_id"]
    events = [login(JANE, 0), log_event("fp", JANE, date=at(0)), no_user, enrolled(JANE, N1, 2)]
    with hook(store) as http:
        answer = post(http, as_array(events))
    assert answer.status_code == 200
    assert answer.json() == {"events": 4, "changes": 2, "ignored": 2, "bad": 1}
    assert accounts(store, N1) == [(JANE, "mfa", True)] and accounts(store, N2) == []


# ------------------------------------------------------------ status and privacy


def test_status_shows_the_last_push_and_its_counts(store: Store) -> None:
    with hook(store) as http:
        events = [enrolled(JANE, N1, 0), login(JANE, 1), login(OMAR, 2), log_event("fp", JANE)]
        assert post(http, as_lines(events)).status_code == 200
    push = last_push(store)
    assert push is not None
    assert push["at"] == "2026-11-27T09:00:00Z"  # the store's clock: received then
    assert push["newest_event"] == "2026-11-20T14:32:05Z"
    assert push["events"] == 4 and push["changes"] == 2 and push["ignored"] == 3
    assert push["unmapped_types"] == {"s": 2, "fp": 1}
    fresh = store.freshness()
    assert fresh["last_update"] == "2026-11-27T09:00:00Z"
    assert fresh["stale"] is True  # a push is not a full sync (README: how they interact)


def test_mfa_whois_status_prints_the_last_push(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    store = Store(open_database(url))
    before = run(["status"], tmp_path, DATABASE_URL=url)
    with hook(store) as http:
        assert post(http, as_array([enrolled(JANE, N1, 0), login(JANE, 1)])).status_code == 200
    after = run(["status"], tmp_path, DATABASE_URL=url)
    store.engine.dispose()
    assert "last log-stream push: never" in before.stdout
    assert "2 events, 2 changes; not mapped: s 1" in after.stdout, after.stdout + after.stderr
    status = json.loads(run(["status", "--json"], tmp_path, DATABASE_URL=url).stdout)
    assert status["last_push"]["events"] == 2


def test_no_token_or_number_in_logs_or_error_bodies(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    masked = enrolled(JANE, N2, 1)
    masked["details"]["authenticator"]["phone_number"] = "+1 ******0142"
    with hook(store) as http:
        answers = [
            post(http, as_array([enrolled(JANE, N1, 0), masked])),
            post(http, as_array([enrolled(JANE, N1, 0)]), "Bearer wrong-" + TOKEN),
            post(http, json.dumps([item(enrolled(JANE, N1, 0)), {"x": N1}]).encode()),
        ]
    assert [a.status_code for a in answers] == [200, 401, 400]
    seen = caplog.text + "".join(a.text for a in answers)
    assert "log stream: 2 events" in caplog.text and "refused" in caplog.text  # it did log
    for secret in (TOKEN, N1, N1[2:], N1[-7:], "4155550100"):
        assert secret not in seen


# ------------------------------------------------------------------- busy database


@contextmanager
def write_locked(store: Store) -> Iterator[None]:
    """Another connection holds the write lock a push needs, as a long import does."""
    with store.engine.connect() as conn:
        transaction = writer(conn).begin()  # SQLite: BEGIN IMMEDIATE takes the write lock
        if store.engine.dialect.name == "postgresql":
            conn.execute(
                text("SELECT value FROM checkpoint WHERE name = :n FOR UPDATE"), {"n": LAST_UPDATE}
            )
        try:
            yield
        finally:
            transaction.rollback()


def test_a_push_while_an_import_holds_the_database_is_503_then_applied_on_retry(
    store: Store,
) -> None:
    batch = as_array([enrolled(JANE, N1, 0)])
    with hook(store) as http:
        assert post(http, as_array([enrolled(OMAR, N3, 0)])).status_code == 200  # a last_update
        with write_locked(store):
            started = time.monotonic()
            refused = post(http, batch)
            waited = time.monotonic() - started
        assert refused.status_code == 503 and refused.headers["Retry-After"].isdigit()
        assert LOCK_WAIT_S - 0.5 < waited < LOCK_WAIT_S + 3
        assert "busy" in refused.json()["error"] and accounts(store, N1) == []
        assert post(http, batch).status_code == 200  # Auth0's retry
    assert accounts(store, N1) == [(JANE, "mfa", True)]


def test_an_unreachable_database_is_503_so_auth0_delivers_again() -> None:
    store = Store(make_engine("postgresql://postgres@127.0.0.1:1/mfa_whois"))
    with hook(store) as http:
        answer = post(http, as_array([enrolled(JANE, N1, 0)]))
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
    assert "deliver again later" in answer.json()["error"]


def test_slack_reindex_status_shows_the_last_push(store: Store) -> None:
    with open_workspace(store, MFA_WHOIS_LOGSTREAM_TOKEN=TOKEN) as ws:
        ws.send.command("/reindex", "status", ADMIN, response="before")
        before = visible_text(ws.slack.responses("before")[0])  # waits for it
        assert post(ws.http, as_lines([enrolled(JANE, N1, 0), login(JANE, 1)])).status_code == 200
        ws.send.command("/reindex", "status", ADMIN, response="after")
        after = visible_text(ws.slack.responses("after")[0])
    assert "log-stream push" not in before
    assert "*Last log-stream push:*" in after and "2 events, 2 changes" in after


def test_the_pull_and_the_push_of_the_same_events_give_the_same_index(
    store: Store, tmp_path: Path
) -> None:
    sapi = log_event(
        "sapi",
        "google-oauth2|105261262156475850461",
        date=at(6),
        details={
            "request": {"method": "patch", "path": f"/api/v2/users/{quote(OMAR)}", "body": {}},
            "response": {"statusCode": 200, "body": {}},
        },
    )
    events = [
        enrolled(JANE, N1, 0), passwordless_signup(N2, 1), code_sent(OMAR, N3, 2),
        unenrolled(JANE, N1, 3), enrolled(JANE, N3, 4), login(JANE, 5), sapi,
    ]  # fmt: skip
    for event in events:
        event["log_id"] = next_log_id()
    pulled = Store(open_database(f"sqlite:///{tmp_path / 'pulled.db'}"), clock=store.clock)
    with FakeAuth0(rate=100.0, burst=100) as fake:
        fake.logs.extend(events)
        pulled.set_checkpoint(CHECKPOINT, LOG_START)  # read from the oldest event on
        auth0 = Auth0Client(fake.base_url, fake.client_id, fake.client_secret,
                            audience=fake.audience, max_rps=50, sleep=lambda _: None)  # fmt: skip
        assert sync_logs(pulled, auth0, default_region="US").events == len(events)
    with hook(store) as http:
        assert post(http, as_lines(events)).status_code == 200

    def index(of: Store) -> list[Any]:
        docs = [of.lookup(phone) for phone in (N1, N2, N3)]
        refetch = [t.user_id for t in of.refetch_queue()]
        return [[d["accounts"] for d in docs], of.summary(), refetch]

    assert index(store) == index(pulled)
    assert accounts(store, N3) == [(JANE, "mfa", True), (OMAR, "mfa", None)]
    assert OMAR in index(store)[2]  # the Management API write queued a re-read on both paths
    pulled.engine.dispose()
