"""`reindex` / `full_sync` against the local fake Auth0: export job, download, atomic import."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs.alerts import Alert, Alerts
from jobs.auth0 import Auth0Client, Auth0Unavailable
from jobs.exports import EXPORT_FIELDS
from jobs.ratelimit import RetryPolicy
from jobs.reindex import ExportFailed, ExportTimeout, FullSyncResult, full_sync, reindex
from jobs.runs import AlreadyRunning, RunHandle, Runs
from phoneindex.changes import PhoneLinked
from phoneindex.db import open_database
from phoneindex.errors import ConfigError, ImportFileError
from phoneindex.settings import Settings
from phoneindex.store import Store, utcnow
from tests.conftest import Clock
from tests.fake_auth0 import FakeAuth0, make_user
from tests.jobs.contender import LogSyncContender

SMS_NUMBER = "+14155550100"
PROFILE_NUMBER = "+442079460958"
LATE_NUMBER = "+12025550123"


def tenant_users() -> list[dict[str, Any]]:
    """Three accounts: a passwordless SMS user, a profile number, one with MFA only."""
    return [
        make_user("sms|5f0c1a2b3c4d5e6f7a8b9c0d", phone_number=SMS_NUMBER),
        make_user("auth0|profile0000000000000001", phone_number=PROFILE_NUMBER, name="Jane Doe"),
        make_user("auth0|mfa000000000000000000001", multifactor=["guardian"]),
    ]


class Inbox:
    """A notifier that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)

    def seen(self) -> list[tuple[str, str, str]]:
        return [(a.key, a.severity, a.title) for a in self.sent]


class Recorder:
    """A progress callback that keeps every (phase, done, total)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.calls.append((phase, done, total))

    def phases(self) -> list[str]:
        return list(dict.fromkeys(phase for phase, _, _ in self.calls))


class Env:
    """Everything a full sync needs, wired to one fake tenant and one index."""

    def __init__(self, fake: FakeAuth0, store: Store, clock: Clock) -> None:
        self.fake, self.store, self.clock = fake, store, clock
        self.runs = Runs(store.engine, store, clock=clock)
        self.inbox = Inbox()
        self.alerts = Alerts(store, self.inbox, clock=clock)
        self.settings = settings_for(fake, store)

    def client(self) -> Auth0Client:
        return client_for(self.fake)

    def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)

    def full_sync(self, **kw: Any) -> FullSyncResult:
        kw.setdefault("enrich", False)
        kw.setdefault("requested_by", "cli")
        kw.setdefault("poll_interval", 0.01)
        kw.setdefault("sleep", self.sleep)
        return full_sync(
            store=self.store,
            runs=self.runs,
            client_factory=self.client,
            alerts=self.alerts,
            settings=self.settings,
            **kw,
        )

    def accounts(self, phone: str) -> list[str]:
        return [a["user_id"] for a in self.store.lookup(phone)["accounts"]]


def client_for(fake: FakeAuth0, *, max_rps: float = 50) -> Auth0Client:
    retry = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)
    return Auth0Client(
        fake.base_url,
        fake.client_id,
        fake.client_secret,
        audience=fake.audience,
        max_rps=max_rps,
        burst=min(10, int(max_rps)),
        retry=retry,
    )


def settings_for(fake: FakeAuth0, store: Store, **kw: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=str(store.engine.url.render_as_string(hide_password=False)),
        auth0_domain=fake.base_url,
        auth0_client_id=fake.client_id,
        auth0_client_secret=fake.client_secret,
        auth0_audience=fake.audience,
        **kw,
    )


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with FakeAuth0(users=tenant_users(), rate=1000, burst=1000, export_polls_to_complete=2) as f:
        yield f


@pytest.fixture
def env(fake: FakeAuth0, store: Store, clock: Clock) -> Env:
    return Env(fake, store, clock)


def test_a_full_sync_imports_every_account_and_records_the_run(env: Env) -> None:
    progress = Recorder()
    result = env.full_sync(progress=progress, requested_by="slack:U1")

    assert env.accounts(SMS_NUMBER) == ["sms|5f0c1a2b3c4d5e6f7a8b9c0d"]
    assert env.accounts(PROFILE_NUMBER) == ["auth0|profile0000000000000001"]
    phones = env.store.lookup(SMS_NUMBER)["accounts"][0]["phones"]
    assert [(p["kind"], p["source"]) for p in phones] == [("passwordless", "export")]
    assert env.store.account("auth0|mfa000000000000000000001") is not None

    run = env.runs.last("full")
    assert run is not None and run["id"] == result.run_id
    assert run["status"] == "succeeded" and run["requested_by"] == "slack:U1"
    assert run["counts"]["users"] == 3 and run["counts"]["download_bytes"] > 0
    assert run["counts"]["export_job"].startswith("job_")
    assert env.store.freshness()["stale"] is False
    assert result.summary().startswith(f"run {result.run_id}: imported 3 accounts")

    assert progress.phases() == ["export", "download", "import"]
    assert ("export", 100, 100) in progress.calls
    last_import = [c for c in progress.calls if c[0] == "import"][-1]
    assert last_import[1] == last_import[2] > 0

    created = env.fake.requests_for("/api/v2/jobs/users-exports", method="POST")
    assert len(created) == 1
    assert created[0].body["format"] == "json"
    assert [f["name"] for f in created[0].body["fields"]] == list(EXPORT_FIELDS)
    assert "connection_id" not in created[0].body
    assert env.inbox.sent == []  # nothing was wrong, so nothing recovers


def test_the_configured_connection_is_exported_alone(env: Env) -> None:
    env.settings = settings_for(env.fake, env.store, auth0_connection_id="con_SmsConnection001")
    env.full_sync()
    created = env.fake.requests_for("/api/v2/jobs/users-exports", method="POST")
    assert created[0].body["connection_id"] == "con_SmsConnection001"
    assert env.accounts(SMS_NUMBER) == ["sms|5f0c1a2b3c4d5e6f7a8b9c0d"]
    assert env.accounts(PROFILE_NUMBER) == []


def test_enrichment_follows_under_the_same_lease(env: Env) -> None:
    seen: list[tuple[str, int | None]] = []

    def enricher(store: Store, client: Auth0Client, run: RunHandle, **kw: Any) -> None:
        running = env.runs.running()
        seen.append((run.kind, running["id"] if running else None))
        assert kw["alerts"] is env.alerts
        run.counts["accounts"] = 1

    result = env.full_sync(enrich=True, enricher=enricher, requested_by="slack:U1")

    assert result.enrich_run_id is not None and result.enrich_run_id != result.run_id
    assert seen == [("enrich", result.enrich_run_id)]
    enrich = env.runs.last("enrich")
    assert enrich is not None and enrich["status"] == "succeeded"
    assert enrich["requested_by"] == "slack:U1" and enrich["counts"] == {"accounts": 1}
    assert env.runs.running() is None


def test_a_failed_export_job_changes_nothing_and_alerts_once(env: Env) -> None:
    env.full_sync()
    env.fake.export_outcome = "failed"

    with pytest.raises(ExportFailed) as failed:
        env.full_sync(requested_by="scheduler")
    assert str(failed.value).startswith("Auth0 export job job_")
    assert str(failed.value).endswith(" failed")
    assert env.accounts(SMS_NUMBER) == ["sms|5f0c1a2b3c4d5e6f7a8b9c0d"]
    run = env.runs.last("full")
    assert run is not None and run["status"] == "failed"
    assert run["error"] == str(failed.value)
    assert env.inbox.seen() == [("sync.full", "failure", "Full sync failed")]
    assert str(failed.value) in env.inbox.sent[0].text
    assert "requested by scheduler" in env.inbox.sent[0].text

    with pytest.raises(ExportFailed):
        env.full_sync(requested_by="scheduler")
    assert len(env.inbox.sent) == 1  # the same incident: no second alert

    env.fake.export_outcome = "completed"
    env.full_sync(requested_by="scheduler")
    assert env.inbox.seen()[1:] == [("sync.full", "recovery", "Full sync works again")]


def test_what_other_sources_see_during_the_export_survives_its_import(env: Env) -> None:
    env.full_sync()
    env.fake.remove_user("auth0|profile0000000000000001")
    late: list[PhoneLinked] = []

    def sleep(seconds: float) -> None:
        env.clock.advance(seconds=seconds)
        if not late:  # an Auth0 log event arrives while the export job runs
            late.append(PhoneLinked("auth0|signup", LATE_NUMBER, "profile", "logs", env.clock()))
            env.store.apply(late)

    env.full_sync(sleep=sleep)

    assert late, "the export was polled at least once"
    assert env.accounts(LATE_NUMBER) == ["auth0|signup"]  # newer than the export: kept
    assert env.accounts(PROFILE_NUMBER) == []  # gone from Auth0 before the export: removed
    assert env.store.account("auth0|profile0000000000000001") is None


def test_an_export_that_never_completes_times_out(env: Env) -> None:
    env.fake.export_outcome = "never"
    with pytest.raises(ExportTimeout) as timeout:
        env.full_sync(max_wait=timedelta(minutes=10))
    assert str(timeout.value).startswith("export job job_")
    assert str(timeout.value).endswith(" did not complete within 10 min")
    polls = env.fake.requests_for("/api/v2/jobs/job_", method="GET")
    assert 3 <= len(polls) <= 40  # polled, with growing pauses, not forever
    run = env.runs.last("full")
    assert run is not None and run["status"] == "failed" and run["error"] == str(timeout.value)
    assert env.inbox.seen() == [("sync.full", "failure", "Full sync failed")]


def test_an_expired_download_link_is_replaced_by_a_fresh_one(env: Env) -> None:
    env.fake.download_url_ttl = 0.3
    env.fake.delay_next(1, 0.5, path_prefix="/downloads/")

    env.full_sync()

    downloads = env.fake.requests_for("/downloads/")
    assert [r.status for r in downloads] == [403, 200]
    assert env.accounts(SMS_NUMBER) == ["sms|5f0c1a2b3c4d5e6f7a8b9c0d"]


def test_a_truncated_download_changes_nothing(env: Env, tmp_path: Path) -> None:
    env.full_sync()
    env.fake.remove_user("sms|5f0c1a2b3c4d5e6f7a8b9c0d")
    env.fake.users.extend(make_user() for _ in range(300))  # enough bytes to cut in half
    env.fake.truncate_download = True
    workdir = tmp_path / "work"
    workdir.mkdir()

    with pytest.raises(ImportFileError) as broken:
        with env.runs.exclusive("full", "cli") as run:
            reindex(
                env.store, env.client(), run, poll_interval=0.01, sleep=env.sleep, workdir=workdir
            )
    assert "truncated or corrupt gzip data" in str(broken.value)
    assert list(workdir.iterdir()) == []  # the temporary file is gone
    assert env.accounts(SMS_NUMBER) == ["sms|5f0c1a2b3c4d5e6f7a8b9c0d"]
    assert env.store.summary()["accounts"] == 3
    run_doc = env.runs.last("full")
    assert run_doc is not None and run_doc["status"] == "failed"


def test_auth0_down_fails_the_run_with_one_line(env: Env) -> None:
    env.fake.fail_next(100, status=503)
    with pytest.raises(Auth0Unavailable) as down:
        env.full_sync()
    assert str(down.value) == "Auth0 answered 503 for POST /api/v2/jobs/users-exports"
    run = env.runs.last("full")
    assert run is not None and run["status"] == "failed" and run["error"] == str(down.value)
    assert env.store.summary()["accounts"] == 0
    assert env.inbox.seen() == [("sync.full", "failure", "Full sync failed")]


def test_a_second_full_sync_is_refused_while_one_holds_the_lease(env: Env) -> None:
    with env.runs.exclusive("full", "slack:U1") as holder:
        with pytest.raises(AlreadyRunning) as refused:
            env.full_sync(requested_by="scheduler")
    assert f"run {holder.id}, requested by slack:U1" in str(refused.value)
    assert env.fake.count("/api/v2/jobs") == 0
    assert [r["id"] for r in [env.runs.last("full")] if r] == [holder.id]
    assert env.inbox.sent == []  # being refused is not a failure


def test_a_queued_run_with_bad_configuration_is_closed_not_retried(env: Env) -> None:
    queued = env.runs.queue("full", "slack:U1")

    def no_auth0() -> Auth0Client:
        raise ConfigError("AUTH0_DOMAIN is not set; it is needed for this command")

    with pytest.raises(ConfigError):
        full_sync(
            store=env.store,
            runs=env.runs,
            client_factory=no_auth0,
            alerts=env.alerts,
            settings=env.settings,
            requested_by="slack:U1",
            adopt=queued.id,
            enrich=False,
        )
    run = env.runs.get(queued.id)
    assert run is not None and run["status"] == "failed"
    assert run["error"].startswith("AUTH0_DOMAIN is not set")
    assert env.runs.next_queued("full") is None
    assert "Run " + str(queued.id) in env.inbox.sent[0].text


def test_a_sqlite_import_longer_than_the_lease_is_not_taken_over(
    fake: FakeAuth0, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    engine = open_database(url)
    store = Store(engine)
    env = Env(fake, store, Clock(utcnow()))
    env.runs = Runs(engine, store, lease_ttl=timedelta(seconds=1))  # real time
    other_engine = open_database(url, busy_timeout_ms=50)  # another process, e.g. `clock`
    other = Runs(other_engine, Store(other_engine), lease_ttl=timedelta(seconds=1))
    contender = LogSyncContender(other)
    imports: list[int] = []

    def progress(phase: str, done: int, total: int) -> None:
        if not imports:
            contender.start()  # from now on the full sync holds the lease
        if phase == "import":
            imports.append(done)
            # The first call comes inside the import's transaction, the last one after its
            # commit (like a slow terminal, or the write-ahead log being folded back).
            time.sleep(1.5 if len(imports) == 1 else 0.3)

    held_until: list[float] = []

    def enricher(store: Store, client: Auth0Client, run: RunHandle, **kw: Any) -> None:
        time.sleep(0.3)  # a short enrichment under the same lease, after the import
        held_until.append(time.monotonic())

    try:
        result = env.full_sync(
            progress=progress, enrich=True, enricher=enricher, poll_interval=0.01, sleep=time.sleep
        )
    finally:
        contender.stop()
    full = env.runs.get(result.run_id)
    assert full is not None and full["status"] == "succeeded" and full["error"] is None
    assert held_until and all(at > held_until[0] for at in contender.taken)  # only after it ended
    other_engine.dispose()
    engine.dispose()
