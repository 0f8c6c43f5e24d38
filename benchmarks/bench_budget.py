"""Shared Auth0 budget benchmark (issue 9): three processes, one MFA_WHOIS_AUTH0_MAX_RPS.

    python benchmarks/bench_budget.py                      # SQLite and PostgreSQL, 30 s each
    python benchmarks/bench_budget.py --seconds 10 --pg '' # SQLite only, quick

A deployment as the README describes it: two `web` processes doing live checks (interactive
GET /api/v2/users/{id}, one every --live-every seconds on average, at random) and a `clock`
process enriching (bulk GET .../authentication-methods, as fast as it is allowed), each with
its own Auth0Client built by `Auth0Client.from_settings` (so each opens the shared budget of
the database, as production does). Auth0 is tests/fake_auth0.py, a real local HTTP server whose
token bucket is exactly the ceiling (rate = burst = --max-rps): anything above it is a 429.

Reported from the fake's arrival times: requests, 429s, the busiest 1-second window (target:
never above the ceiling), the combined rate, and how long live checks waited (call to answer).
The same run without the shared budget (each process pacing alone) is the baseline.
Prints progress on stderr, then a JSON summary and a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

USER = "auth0|bench00000000000000000001"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def say(text: str) -> None:
    """Progress for people, on stderr."""
    print(text, file=sys.stderr, flush=True)


def settings(fake_url: str, database_url: str, max_rps: float) -> Any:
    from phoneindex.settings import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        auth0_domain=fake_url,
        auth0_client_id="test-client-id",
        auth0_client_secret="test-client-secret",
        auth0_max_rps=max_rps,
    )


def process(
    role: str, fake_url: str, url: str, args: argparse.Namespace, shared: bool, out: Any
) -> None:
    """One process of the deployment: `web` (live checks) or `clock` (enrichment)."""
    from jobs.auth0 import Auth0Client
    from phoneindex.budget import LocalBudget

    extra: dict[str, Any] = {} if shared else {"budget": LocalBudget()}
    rng = random.Random(hash(role) ^ multiprocessing.current_process().pid)
    waits: list[float] = []
    deadline = time.monotonic() + args.seconds
    with Auth0Client.from_settings(settings(fake_url, url, args.max_rps), **extra) as client:
        while time.monotonic() < deadline:
            if role == "clock":
                client.get_authentication_methods(USER)
                continue
            time.sleep(rng.expovariate(1 / args.live_every))
            start = time.monotonic()
            client.get_user(USER)
            waits.append(time.monotonic() - start)
    out.put((role, waits))


def one_run(fake: Any, url: str, args: argparse.Namespace, shared: bool) -> dict[str, Any]:
    """Three processes against the fake for --seconds; what the fake saw."""
    fake.clear_requests()
    fake.refill_bucket()
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    roles = ["web", "web", "clock"]
    procs = [
        ctx.Process(target=process, args=(r, fake.base_url, url, args, shared, out)) for r in roles
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    waits = sorted(w for role, ws in results if role == "web" for w in ws)
    api = fake.requests_for("/api/v2/")
    return {
        "shared_budget": shared,
        "requests": len(api),
        "answered_429": sum(r.status == 429 for r in api),
        "busiest_second": fake.max_in_window(1.0),
        "rate_per_s": round(fake.sustained_rate(), 2),
        "live_checks": len(waits),
        "live_wait_p50_s": round(statistics.median(waits), 3) if waits else None,
        "live_wait_p95_s": round(waits[int(0.95 * (len(waits) - 1))], 3) if waits else None,
        "live_wait_max_s": round(waits[-1], 3) if waits else None,
    }


def backend_runs(name: str, url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The baseline (each process alone) and the shared budget, on one database."""
    from phoneindex.db import open_database
    from tests.fake_auth0 import FakeAuth0, make_user

    open_database(url).dispose()
    users = [make_user(USER, multifactor=["guardian"])]
    runs = []
    with FakeAuth0(users=users, rate=args.max_rps, burst=int(args.max_rps)) as fake:
        for shared in (False, True):
            say(f"{name}: {'shared budget' if shared else 'baseline, each process alone'} ...")
            run = one_run(fake, url, args, shared) | {"database": name}
            say(f"  {run}")
            runs.append(run)
    return runs


def fresh_pg(admin_url: str) -> tuple[str, Any]:
    """A new PostgreSQL database for this run, and a function that drops it."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"mfa_whois_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def markdown(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Three processes (2 web doing live checks, 1 clock enriching), {args.seconds:g} s each, "
        f"MFA_WHOIS_AUTH0_MAX_RPS={args.max_rps:g}, the fake's bucket = {args.max_rps:g}/s:",
        "",
        "| database | budget | requests | 429s | busiest second | req/s "
        "| live wait p50 / p95 / max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['database']} | {'shared' if r['shared_budget'] else 'each alone'} | "
            f"{r['requests']} | {r['answered_429']} | {r['busiest_second']} | {r['rate_per_s']} | "
            f"{r['live_wait_p50_s']} / {r['live_wait_p95_s']} / {r['live_wait_max_s']} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-rps", type=float, default=10.0)
    parser.add_argument("--live-every", type=float, default=0.5, help="mean seconds between checks")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL; '' to skip")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as work:
        runs += backend_runs("SQLite", f"sqlite:///{Path(work) / 'index.db'}", args)
    if args.pg:
        url, drop = fresh_pg(args.pg)
        try:
            runs += backend_runs("PostgreSQL", url, args)
        finally:
            drop()
    print(json.dumps(runs, indent=2))
    print(markdown(runs, args))


if __name__ == "__main__":
    main()
