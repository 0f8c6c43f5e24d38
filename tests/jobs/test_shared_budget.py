"""Several processes on one database share one Auth0 ceiling (MFA_WHOIS_AUTH0_MAX_RPS)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.auth0 import Auth0Client
from phoneindex.db import open_database
from phoneindex.settings import Settings
from tests.fake_auth0 import FakeAuth0, make_user

MAX_RPS = 4.0
CALLS = 8  # per process


def _settings(fake_url: str, database_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        auth0_domain=fake_url,
        auth0_client_id="test-client-id",
        auth0_client_secret="test-client-secret",
        auth0_max_rps=MAX_RPS,
    )


def _calls(fake_url: str, database_url: str, user_id: str, priority: str) -> None:
    """One process of the deployment (web or clock): its own client, the shared budget."""
    with Auth0Client.from_settings(_settings(fake_url, database_url)) as client:
        for _ in range(CALLS):
            if priority == "interactive":
                client.get_user(user_id)
            else:
                client.get_authentication_methods(user_id)


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    # Auth0's own bucket at exactly the ceiling: anything above it is answered 429.
    users = [make_user("auth0|budget0000000000000001", multifactor=["guardian"])]
    with FakeAuth0(users=users, rate=MAX_RPS, burst=int(MAX_RPS)) as f:
        yield f


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_three_processes_stay_under_the_ceiling_together(
    backend: str, fake: FakeAuth0, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'index.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    open_database(url).dispose()
    fake.clear_requests()
    ctx = multiprocessing.get_context("fork")
    processes = [
        ctx.Process(
            target=_calls, args=(fake.base_url, url, "auth0|budget0000000000000001", priority)
        )
        for priority in ("interactive", "bulk", "bulk")
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert fake.count("/api/v2/users/") == 3 * CALLS
    assert fake.count("/api/v2/", status=429) == 0
    assert fake.max_in_window(1.0) <= MAX_RPS
