"""Privacy end to end: a realistic session, and every number used in it is nowhere but in the
answers given to the asker (logs at DEBUG, stderr, alerts, audit and status output, errors)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
import pytest

from bot import cli, cli_render
from bot.slack import ids, texts
from bot.web import create_app
from jobs.auth0 import Auth0Client
from phoneindex.db import open_database
from phoneindex.numbers import to_e164_or_none
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.slack_workspace import AGENT, SAMPLE, STRANGER, buttons, open_workspace, serving
from tests.bot.test_hooks_action import SECRET as ACTION_SECRET
from tests.bot.test_hooks_action import message, registered
from tests.bot.test_hooks_action import post as post_action
from tests.bot.test_hooks_logstream import JANE, as_array, code_sent, enrolled, passwordless_signup
from tests.bot.test_hooks_logstream import TOKEN as LOGSTREAM_TOKEN
from tests.bot.test_hooks_logstream import post as post_logs
from tests.fake_auth0 import FakeAuth0, make_user

SHARED = "+14155550100"  # three accounts in the sample export
UK = "+442079460958"  # three accounts in the sample export
NEW = "+12025550199"  # only in the tenant: found by Search live
MFA = "+14155550142"  # enrolled through the log stream
PASSWORDLESS = "+16505550123"  # signed up through the log stream
TYPO = "+13105550177"  # typed inside text that is not a number
UNKNOWN = "+447700900999"  # nowhere: Search live finds nothing
REGISTERED = "+17205550133"  # a registration posted by the Action
MESSAGED = "+13035550166"  # a phone message posted by the Action
USED = {SHARED, UK, NEW, MFA, PASSWORDLESS, TYPO, UNKNOWN, REGISTERED, MESSAGED}


def sample_numbers() -> set[str]:
    """Every number in the sample export (imported, so in the index), as E.164."""
    found = re.findall(r'"phone_number": *"([^"]+)"', SAMPLE.read_text())
    return {e164 for text in found if (e164 := to_e164_or_none(text)) is not None}


NUMBERS = sorted(USED | sample_numbers())


def forms(e164: str) -> set[str]:
    """How a number may show up: E.164, digits only, national digits, formatted, last 7."""
    parsed = phonenumbers.parse(e164)
    national = str(parsed.national_number)
    fmt = phonenumbers.PhoneNumberFormat
    return {
        e164,
        e164[1:],
        national,
        national[-7:],
        phonenumbers.format_number(parsed, fmt.NATIONAL),
        phonenumbers.format_number(parsed, fmt.INTERNATIONAL),
    }


def without_usage_examples(text: str) -> str:
    """`text` with the usage hints' fixed examples (Slack, CLI) replaced by `<usage>`."""
    for examples in (texts.USAGE.split(" Numbers without")[0], cli_render.USAGE_EXAMPLES):
        text = text.replace(examples, "<usage>")
    return text


@dataclass
class Session:
    """What the session showed to askers (`answers`) and everything else it wrote."""

    answers: list[str] = field(default_factory=list)
    exposed: list[tuple[str, str]] = field(default_factory=list)  # (where, text)

    def show(self, where: str, text: str, *, answer: bool = False) -> None:
        if answer:
            self.answers.append(text)
        else:
            self.exposed.append((where, text))


@pytest.fixture
def tenant() -> Iterator[FakeAuth0]:
    lines = SAMPLE.read_text().splitlines()
    users = [json.loads(line) for line in lines if SHARED in line or UK in line]
    users.append(make_user("sms|5f0c1e2d3a4b5c6d7e8f9012", phone_number=NEW, name="New Caller"))
    with FakeAuth0(users=users, rate=50, burst=50) as fake:
        yield fake


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tenant: FakeAuth0
) -> Iterator[str]:
    """The CLI's environment: this test's database, the fake tenant, nothing from outside."""
    for name in list(os.environ):
        if name.startswith(("MFA_WHOIS", "AUTH0", "SLACK", "DATABASE_URL")):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MFA_WHOIS_SECRET_KEY", "test-audit-key")  # the workspace's key too
    monkeypatch.setenv("AUTH0_DOMAIN", tenant.base_url)
    monkeypatch.setenv("AUTH0_CLIENT_ID", tenant.client_id)
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", tenant.client_secret)
    monkeypatch.chdir(tmp_path)
    sigterm = signal.getsignal(signal.SIGTERM)
    yield url
    signal.signal(signal.SIGTERM, sigterm)


Cli = Callable[..., int]


def run_cli(
    session: Session,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    answer: bool = False,
) -> int:
    """`mfa-whois ARGS` in this process (so its log records are captured too); the exit code."""
    monkeypatch.setattr(sys, "argv", ["mfa-whois", *args])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    printed = capsys.readouterr()
    session.show(f"stdout of {args}", printed.out, answer=answer)
    session.show(f"stderr of {args}", printed.err)
    return code


def command_line(s: Session, mfa_whois: Cli, tenant: FakeAuth0) -> None:
    """Import, lookups (text, JSON, live), an unusable number, Auth0 refusing live reads."""
    assert mfa_whois("import", str(SAMPLE), "--as-of", "2026-11-01") == 0
    assert mfa_whois("lookup", "(415) 555-0100", answer=True) == 0
    assert mfa_whois("lookup", "00 44 20 7946 0958", "--json", answer=True) == 0
    assert mfa_whois("lookup", "+1 415 555 0100", "--live", "--json", answer=True) == 0
    assert mfa_whois("lookup", "202-555-0199", "--live", answer=True) == 0  # found live
    assert mfa_whois("lookup", f"call {TYPO}", answer=True) == 2
    for number in (UK, UNKNOWN):  # a live read, then a live search: one error line each
        tenant.fail_next(2, 403, path_prefix="/api/v2/users")  # once more after a new token
        assert mfa_whois("lookup", number, "--live", answer=True) == 3


def slack(s: Session, store: Store, tenant: FakeAuth0) -> None:
    """/whois, Verify live, Search live (one failing), unusable input, a stranger, the limit."""
    client = Auth0Client(
        tenant.base_url, tenant.client_id, tenant.client_secret, audience=tenant.audience
    )
    with open_workspace(store, auth0=lambda: client, MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=4) as ws:
        first = ws.send.command("/whois", "+1 (415) 555-0100", AGENT)
        ws.send.click(ids.VERIFY_LIVE, buttons(first.json())[ids.VERIFY_LIVE], AGENT)
        ws.slack.responses("click", 1)
        for typed in ("07700 900999", "+44 7700 900999"):  # unusable in region US; no match
            s.show("/whois", ws.send.command("/whois", typed, AGENT).text, answer=True)
        ws.send.click(ids.SEARCH_LIVE, UNKNOWN, AGENT)
        ws.slack.responses("click", 2)
        tenant.fail_next(2, 403, path_prefix="/api/v2/users")
        ws.send.click(ids.SEARCH_LIVE, UNKNOWN, AGENT)
        ws.slack.responses("click", 3)
        for text, who in [(f"call {TYPO} please", AGENT), (SHARED, STRANGER), (UK, AGENT)]:
            s.show(f"/whois by {who}", ws.send.command("/whois", text, who).text)
        ws.settle()
        ws.slack.wait_for("chat.postMessage")  # the over-limit alert
        s.show("/whois", first.text, answer=True)
        for call in ws.slack.calls:
            to_asker = call.method.startswith("respond:") or call.method == "chat.postEphemeral"
            s.show(f"Slack {call.method}", json.dumps(call.params), answer=to_asker)
    client.close()


def hooks(s: Session, store: Store) -> None:
    """Log-stream deliveries and Action events with numbers (applied, malformed, unsigned),
    health and metrics."""
    events = [enrolled(JANE, MFA, 1), code_sent(JANE, MFA, 2), passwordless_signup(PASSWORDLESS, 3)]
    user = {"user_id": "auth0|77aa00bb11cc22dd33ee44ff", "phone_number": REGISTERED}
    now = int(time.time())  # the Action signature window is the server's clock
    settings = load_settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        MFA_WHOIS_LOGSTREAM_TOKEN=LOGSTREAM_TOKEN,
        MFA_WHOIS_ACTION_SECRET=ACTION_SECRET,
    )
    with serving(create_app(settings, store=store)) as http:
        answers = [
            post_logs(http, as_array(events)),
            post_logs(http, b'[{"log_id": "1", "data": {"phone_number": "' + MFA.encode()),
            post_logs(http, as_array(events), auth="Bearer wrong"),
            post_logs(http, json.dumps({"data": {"details": {"to": MFA}}}).encode()),
            post_action(http, registered(user, 5), stamp=now),
            post_action(http, message(user["user_id"], MESSAGED, "sms", "enroll", 6), stamp=now),
            post_action(http, message(None, MESSAGED, "voice", "challenge", 7), stamp=now),
            post_action(http, message(user["user_id"], MESSAGED, "sms", "enroll"), sign="v1=00"),
            post_action(http, b'{"id": "x", "phone": {"number": "' + MESSAGED.encode(), stamp=now),
            http.get("/healthz", params={"phone": SHARED}),
            http.get("/metrics"),
        ]
    assert [a.status_code for a in answers] == [
        200,
        400,
        401,
        200,
        200,
        200,
        200,
        401,
        400,
        200,
        200,
    ]
    for answer in answers:
        s.show(f"{answer.request.url.path} {answer.status_code}", answer.text)


def api(s: Session, store: Store, tenant: FakeAuth0) -> None:
    """The call-center API: lookups (answers), live ones, refusals and errors (not answers)."""
    key, limited = "pbx-0123456789abcdef0123456789", "crm-fedcba9876543210fedcba9876"
    settings = load_settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        MFA_WHOIS_API_KEYS=f"pbx:{key},crm:{limited}:1",
        auth0_domain=tenant.base_url,
        auth0_client_id=tenant.client_id,
        auth0_client_secret=tenant.client_secret,
    )
    path = "/api/v1/lookup"
    with serving(create_app(settings, store=store)) as http:
        pbx, crm = ({"Authorization": f"Bearer {k}"} for k in (key, limited))
        answers = [
            http.post(path, json={"phone": SHARED}, headers=pbx),
            http.get(path, params={"phone": UK}, headers=pbx),
            http.post(path, json={"phone": NEW, "live": True, "timeout_ms": 3000}, headers=pbx),
        ]
        refusals = [
            http.post(path, json={"phone": "anonymous"}, headers=pbx),
            http.post(path, json={"phone": SHARED + "99999"}, headers=pbx),
            http.post(path, json={"phone": SHARED}, headers={"Authorization": "Bearer nope"}),
            http.post(path, json={"phone": SHARED}, headers=crm),
            http.post(path, json={"phone": SHARED}, headers=crm),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [r.status_code for r in refusals] == [400, 400, 401, 200, 429]
    for answer in answers + refusals[3:4]:
        s.show(f"API {answer.status_code}", answer.text, answer=True)
    for refusal in refusals[:3] + refusals[4:]:
        s.show(f"API {refusal.status_code}", refusal.text)


def test_no_number_leaks_anywhere_but_to_the_asker(
    environment: str,
    tenant: FakeAuth0,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records too
    s = Session()

    def mfa_whois(*args: str, answer: bool = False) -> int:
        return run_cli(s, capsys, monkeypatch, "-v", *args, answer=answer)

    command_line(s, mfa_whois, tenant)
    store = Store(open_database(environment))
    slack(s, store, tenant)
    hooks(s, store)
    api(s, store, tenant)
    store.engine.dispose()
    # What supervisors and operators read.
    for number in (PASSWORDLESS, REGISTERED, MESSAGED):  # numbers the hooks brought in
        assert mfa_whois("lookup", number, "--json", answer=True) == 0
    for args in (["status"], ["status", "--json"], ["audit"], ["audit", "--phone", SHARED]):
        assert mfa_whois(*args) == 0
    assert mfa_whois("audit", "--phone", "call me") == 2

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        s.show(f"log record of {record.name}", formatter.format(record))
    # The usage hints' examples are the sample's numbers: documentation, not data.
    exposed = [(where, without_usage_examples(text)) for where, text in s.exposed]
    assert any("<usage>" in text for _where, text in exposed)
    leaks = [
        (number, form, where, text[max(0, text.find(form) - 80) : text.find(form) + 40])
        for number in NUMBERS
        for form in forms(number)
        for where, text in exposed
        if form in text
    ]
    assert leaks == []
    # The scan can fail: the askers were shown these numbers, and there was plenty to scan.
    shown = "\n".join(s.answers)
    for number in (SHARED, UK, NEW, UNKNOWN, PASSWORDLESS, REGISTERED, MESSAGED):
        assert number in shown
    assert len(caplog.records) > 100
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert any("over the lookup limit" in text for _where, text in exposed)
    assert any("Auth0 answered 403" in text for _where, text in exposed)
