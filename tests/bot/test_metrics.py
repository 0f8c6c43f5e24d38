"""GET /metrics: Prometheus text with the index, its syncs, lookups and the Auth0 budget."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.web import create_app
from jobs.auth0 import Auth0Client
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.bot.api_service import CRM_KEY, api_service
from tests.bot.slack_workspace import SHARED, import_sample, serving

ROOT = Path(__file__).resolve().parents[2]


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))))


def metrics_of(store: Store) -> tuple[httpx.Response, dict]:  # type: ignore[type-arg]
    url = store.engine.url.render_as_string(hide_password=False)
    with serving(create_app(load_settings(database_url=url), store=store)) as http:
        response = http.get("/metrics")
    return response, scrape(response.text)


def test_metrics_show_the_index_size_its_runs_and_its_age(store: Store) -> None:
    import_sample(store)
    summary = store.summary()
    response, samples = metrics_of(store)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert value(samples, "mfa_whois_database_up") == 1
    assert value(samples, "mfa_whois_index_accounts") == summary["accounts"] > 0
    for kind, n in summary["numbers"].items():
        assert value(samples, "mfa_whois_index_numbers", kind=kind) == n
    assert value(samples, "mfa_whois_sync_runs_total", kind="full", outcome="succeeded") == 1
    assert value(samples, "mfa_whois_sync_running") == 0
    age = value(samples, "mfa_whois_last_full_sync_age_seconds")
    assert age is not None and age > 0
    assert value(samples, "mfa_whois_last_log_event_age_seconds") is None  # no log event yet


def test_an_empty_index_has_no_full_sync_age_and_is_stale(store: Store) -> None:
    _, samples = metrics_of(store)
    assert value(samples, "mfa_whois_index_accounts") == 0
    assert value(samples, "mfa_whois_last_full_sync_age_seconds") is None
    assert value(samples, "mfa_whois_index_stale") == 1


def test_auth0_requests_are_counted_by_outcome_with_the_budget_left(store: Store) -> None:
    answers = iter([429, 200, 404, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 86400})
        status = next(answers)
        headers = {"x-ratelimit-limit": "50", "x-ratelimit-remaining": "41", "retry-after": "0"}
        return httpx.Response(status, json={"user_id": "auth0|x"}, headers=headers)

    _, before = metrics_of(store)
    client = Auth0Client(
        "acme.us.auth0.com", "cid", "secret", transport=httpx.MockTransport(handler), max_rps=1000
    )
    client.get_user("auth0|x")  # 429, then 200
    for _ in range(2):
        try:
            client.get_user("auth0|x")  # 404; then 503 and 200
        except Exception:  # noqa: BLE001 - the 404 is an error for the caller; counted anyway
            pass
    client.close()
    _, after = metrics_of(store)

    def delta(outcome: str) -> float:
        name = "mfa_whois_auth0_requests_total"
        return (value(after, name, outcome=outcome) or 0) - (
            value(before, name, outcome=outcome) or 0
        )

    assert [delta(o) for o in ("ok", "rate_limited", "client_error", "server_error")] == [
        2,
        1,
        1,
        1,
    ]
    assert value(after, "mfa_whois_auth0_ratelimit_remaining") == 41
    assert value(after, "mfa_whois_auth0_ratelimit_limit") == 50


def test_no_label_holds_a_number_a_user_id_or_a_key(store: Store) -> None:
    import_sample(store)
    response, samples = metrics_of(store)
    # Every label value but histogram bounds (`le`: "0.005", "+Inf"): fixed vocabularies.
    labels = {v for (_, pairs) in samples for k, v in pairs if k != "le"}
    assert labels  # kinds, outcomes, surfaces
    assert all(re.fullmatch(r"[a-z_.+0-9]{1,24}", v) for v in labels), labels
    assert not re.search(r"\d{6,}|\|", " ".join(labels))


MULTIPROCESS = textwrap.dedent(
    """
    import sys
    from jobs.telemetry import AUTH0_REQUESTS
    AUTH0_REQUESTS.labels("ok").inc(int(sys.argv[1]))
    """
)
SCRAPE = textwrap.dedent(
    """
    import sys
    from prometheus_client import generate_latest
    from bot.metrics import registry_for
    from phoneindex.db import open_database
    from phoneindex.store import Store
    sys.stdout.write(generate_latest(registry_for(Store(open_database(sys.argv[1])))).decode())
    """
)


def test_several_worker_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin"}
    for n in ("2", "3"):  # two workers, each counting its own requests, then exiting
        subprocess.run([sys.executable, "-c", MULTIPROCESS, n], env=env, check=True)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    out = subprocess.run(
        [sys.executable, "-c", SCRAPE, url], env=env, check=True, capture_output=True, text=True
    ).stdout
    samples = scrape(out)
    assert value(samples, "mfa_whois_auth0_requests_total", outcome="ok") == 5
    assert value(samples, "mfa_whois_index_accounts") == 0  # the database part is there too


def test_api_lookups_are_counted_by_outcome_and_timed(store: Store, tmp_path: Path) -> None:
    import_sample(store)
    with api_service(store, tmp_path) as api:
        before = scrape(api.http.get("/metrics").text)
        assert api.post({"phone": SHARED}).status_code == 200
        assert api.post({"phone": "+12025550123"}).status_code == 200  # nobody has it
        assert api.post({"phone": "anonymous"}).status_code == 400
        for _ in range(6):  # crm's own limit is 5 an hour
            last = api.post({"phone": SHARED}, key=CRM_KEY)
        assert last.status_code == 429
        after = scrape(api.http.get("/metrics").text)

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    counted = {
        outcome: delta("mfa_whois_lookups_total", surface="api", outcome=outcome)
        for outcome in ("found", "none", "unusable", "over_limit", "refused")
    }
    assert counted == {"found": 6, "none": 1, "unusable": 1, "over_limit": 1, "refused": 0}
    assert delta("mfa_whois_lookup_seconds_count", surface="api") == 7  # answered from the index
