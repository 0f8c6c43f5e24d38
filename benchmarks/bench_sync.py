"""Sync benchmark (issue 3): paced MFA enrichment, live checks during it, reindex import speed.

    python benchmarks/bench_sync.py                               # the issue's targets (~5 min)
    python benchmarks/bench_sync.py --accounts 100 --users 5000   # quick
    python benchmarks/bench_sync.py --skip-reindex                # enrichment part only

Everything talks to tests/fake_auth0.py, a real local HTTP server with Auth0's token bucket.

Enrichment (fake `rate=--fake-rate` (default --max-rps), `burst=--burst`; the client's
MFA_WHOIS_AUTH0_MAX_RPS=--max-rps):
- a tenant of --accounts users with Guardian MFA and a phone authenticator, indexed by a full
  sync without enrichment (jobs.reindex.full_sync, enrich=False);
- `jobs.schedule.enrich_now` (the production wiring: Deps.from_settings, one shared client, the
  writer lease) reads every account's authentication methods. From the fake's recorded requests:
  sustained rate (target >= 90% of MAX_RPS), share answered 429 (target <= 1%), most requests
  in any 1-second window (target <= the fake's burst);
- meanwhile --live checks (jobs.live.live_lookup of an indexed account's number, from another
  thread, spaced over the run): seconds from the call to the fake's arrival of the check's first
  interactive request, GET /api/v2/users/{id} (target p95 <= 1 s);
- a second enrichment with nothing changed: authentication-methods calls (target 0).

Reindex (--users from benchmarks/synth.py, fed to the fake as user dicts; median of --repeat):
- the core import: `import_export` of the same users as an NDJSON.gz file into a fresh SQLite
  file, in a child process (as benchmarks/bench_core.py measures it);
- `full_sync(enrich=False)` into a fresh SQLite file, in a child process: export job, download,
  then the import phase (parse and apply), timed from the download's last progress report to
  the import's last one. Target: import phase <= 2x the core import.

Prints progress on stderr, then a JSON summary and a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import synth  # noqa: E402
from report import report  # noqa: E402

MFA_MODIFIED = "2026-01-01T00:00:00.000Z"
USERS_PATH = "/api/v2/users/"
METHODS_SUFFIX = "/authentication-methods"

# Peak RSS of the child itself: ru_maxrss would report the parent's when it is larger (Linux
# keeps the pre-exec high-water mark across a vfork/exec), and this parent holds 100k users.
PEAK_RSS = """
import resource
def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
CORE_CHILD = (
    PEAK_RSS
    + """
import json, sys, time
from phoneindex.db import open_database
from phoneindex.store import Store
from jobs.exports import import_export
store = Store(open_database(sys.argv[1]))
start = time.perf_counter()
result = import_export(store, sys.argv[2])
print(json.dumps({
    "import_s": time.perf_counter() - start,
    "users": result.users,
    "links": sum(result.stats.links.values()),
    "peak_rss_mb": peak_rss_mb(),
}))
"""
)
REINDEX_CHILD = (
    PEAK_RSS
    + """
import json, time
from jobs.reindex import full_sync
from jobs.schedule import Deps
from phoneindex.settings import load_settings
settings = load_settings(_env_file=None)
deps = Deps.from_settings(settings)
last = {}
def progress(phase, done, total):
    last[phase] = time.perf_counter()
start = time.perf_counter()
result = full_sync(store=deps.store, runs=deps.runs, client_factory=deps.client,
                   alerts=deps.alerts, settings=settings, requested_by="bench_sync",
                   enrich=False, progress=progress, poll_interval=0.05)
end = time.perf_counter()
deps.close()
print(json.dumps({
    "total_s": end - start,
    "export_s": last["export"] - start,
    "download_s": last["download"] - last["export"],
    "import_s": last["import"] - last["download"],
    "users": result.imported.users,
    "links": sum(result.imported.stats.links.values()),
    "peak_rss_mb": peak_rss_mb(),
}))
"""
)


def say(text: str) -> None:
    """Progress for people, on stderr."""
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


# --------------------------------------------------------------------------- enrichment


def mfa_tenant(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """`n` users with Guardian MFA: users, their authenticators, and their profile numbers."""
    from tests.fake_auth0 import make_method, make_phone_method, make_user

    rnd = random.Random(seed)
    pool = synth.number_pool(2 * n, rnd)
    rnd.shuffle(pool)
    users: list[dict[str, Any]] = []
    methods: dict[str, list[dict[str, Any]]] = {}
    for i in range(n):
        uid = f"auth0|{i:024x}"
        users.append(
            make_user(uid, phone_number=pool[2 * i], email=f"mfa{i}@example.com",
                      multifactor=["guardian"], multifactor_last_modified=MFA_MODIFIED)
        )  # fmt: skip
        method = "voice" if i % 10 == 0 else "sms"
        items = [make_phone_method(pool[2 * i + 1], method, device_id=f"dev{i:08d}")]
        if i % 4 == 0:
            items.append(make_method("totp", device_id=f"otp{i:08d}"))
        methods[uid] = items
    return users, methods, [pool[2 * i] for i in range(n)]


def settings_for(fake: Any, db: Path, max_rps: float) -> Any:
    """Settings as the environment would give them, pointing at the fake and a SQLite file."""
    from phoneindex.settings import load_settings

    return load_settings(
        _env_file=None, database_url=f"sqlite:///{db}", auth0_domain=fake.base_url,
        auth0_client_id=fake.client_id, auth0_client_secret=fake.client_secret,
        auth0_audience=fake.audience, auth0_max_rps=max_rps, auth0_connection_id=None,
    )  # fmt: skip


class Enrichment(threading.Thread):
    """`enrich_now` on its own thread, as the scheduler or the CLI would run it."""

    def __init__(self, deps: Any, total: int) -> None:
        super().__init__(name="bench-enrich", daemon=True)
        self.deps, self.total = deps, total
        self.result: Any = None
        self.error: BaseException | None = None
        self.started = self.ended = 0.0
        self._tenth = 0

    def run(self) -> None:
        from jobs.schedule import enrich_now

        self.started = time.monotonic()
        try:
            self.result = enrich_now(self.deps, "bench_sync", progress=self._progress)
        except BaseException as exc:  # reported by the caller
            self.error = exc
        self.ended = time.monotonic()

    def _progress(self, done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth > self._tenth:
            self._tenth = tenth
            rate = done / max(time.monotonic() - self.started, 1e-9)
            say(f"  enrich: {done:,}/{total:,} accounts, {rate:.2f}/s")


def live_checks(
    deps: Any, client: Any, targets: list[tuple[str, str]], count: int, spacing: float,
    enrichment: Enrichment,
) -> list[dict[str, Any]]:  # fmt: skip
    """`count` live checks of (user id, number) targets while the enrichment runs, `spacing`
    seconds apart (jittered)."""
    from jobs.live import live_lookup

    rnd = random.Random(11)
    checks: list[dict[str, Any]] = []
    time.sleep(min(2.0, spacing))  # let the enrichment fill its pipeline first
    for uid, phone in rnd.sample(targets, min(count, len(targets))):
        if not enrichment.is_alive():
            break
        start = time.monotonic()
        doc = live_lookup(deps.store, client, phone)
        end = time.monotonic()
        live = doc["live"]
        checks.append({"user_id": uid, "start": start, "end": end,
                       "ok": live["checked"] == 1 and not live["errors"]})  # fmt: skip
        time.sleep(spacing * rnd.uniform(0.5, 1.5))
    return checks


def first_call_latency(records: list[Any], checks: list[dict[str, Any]]) -> list[float]:
    """Per check: seconds from the call to the fake's arrival of GET /api/v2/users/{id}."""
    latencies = []
    for check in checks:
        path = USERS_PATH + check["user_id"]
        arrivals = [r.t for r in records if r.path == path and r.method == "GET"]
        first = min((t for t in arrivals if t >= check["start"]), default=None)
        if first is not None:
            latencies.append(first - check["start"])
    return latencies


def window_detail(records: list[Any], burst: int) -> dict[str, Any]:
    """Why a 1-second window holds more than `burst` requests: how often, and how tight."""
    times = sorted(r.t for r in records if r.path.startswith("/api/v2/"))
    # The time taken by each run of burst + 1 consecutive requests: under 1 s is one too many.
    spans = [b - a for a, b in zip(times, times[burst:], strict=False)]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return {
        "windows_above_burst": sum(span < 1.0 for span in spans),
        "tightest_span_s": round(min(spans), 4) if spans else None,
        "min_gap_s": round(min(gaps), 4) if gaps else None,
        "median_gap_s": round(statistics.median(gaps), 4) if gaps else None,
    }


def method_calls(records: list[Any]) -> int:
    """Authentication-methods requests among `records`."""
    return sum(r.path.startswith(USERS_PATH) and r.path.endswith(METHODS_SUFFIX) for r in records)


def first_run(
    fake: Any, records: list[Any], run: Enrichment, deps: Any, burst: int
) -> dict[str, Any]:
    """The first enrichment as the fake saw it: rate, 429s, the busiest 1-second windows."""
    first = {
        "enrich_s": round(run.ended - run.started, 2),
        "accounts_read": run.result.accounts,
        "numbers_linked": run.result.linked,
        "requests": fake.count(),
        "authentication_methods_calls": method_calls(records),
        "sustained_rps": round(fake.sustained_rate(), 3),
        "answered_429": fake.count(status=429),
        "max_in_1s_window": fake.max_in_window(1.0),
        **window_detail(records, burst),
        "client": dict(vars(deps.client().stats())),
    }
    first["share_429"] = first["answered_429"] / max(first["requests"], 1)
    return first


def live_summary(
    records: list[Any], checks: list[dict[str, Any]], run: Enrichment, client: str,
    spacing: float,
) -> dict[str, Any]:  # fmt: skip
    """Latency of the live checks asked for while the enrichment ran."""
    during = [c for c in checks if c["start"] < run.ended]
    latencies = first_call_latency(records, during)
    whole = [c["end"] - c["start"] for c in during]

    def seconds(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "client": client,
        "checks": len(checks),
        "during_enrichment": len(during),
        "ok": sum(c["ok"] for c in checks),
        "measured": len(latencies),
        "spacing_s": round(spacing, 2),
        "first_call_p50_s": seconds(statistics.median(latencies) if latencies else None),
        "first_call_p95_s": seconds(percentile(latencies, 95) if latencies else None),
        "first_call_max_s": seconds(max(latencies, default=None)),
        "check_p50_s": seconds(statistics.median(whole) if whole else None),
    }


def enrichment_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Index the MFA tenant, enrich it with live checks in between, then enrich again."""
    from jobs.auth0 import Auth0Client
    from jobs.reindex import full_sync
    from jobs.schedule import Deps, enrich_now
    from tests.fake_auth0 import FakeAuth0

    users, methods, phones = mfa_tenant(args.accounts)
    targets = [(u["user_id"], p) for u, p in zip(users, phones, strict=True)]
    fake_rate = args.fake_rate or args.max_rps
    with FakeAuth0(users=users, auth_methods=methods, rate=fake_rate, burst=args.burst) as fake:
        settings = settings_for(fake, work / "enrich.db", args.max_rps)
        deps = Deps.from_settings(settings)
        own = Auth0Client.from_settings(settings) if args.live_client == "separate" else None
        try:
            imported = full_sync(
                store=deps.store, runs=deps.runs, client_factory=deps.client, alerts=deps.alerts,
                settings=settings, requested_by="bench_sync", enrich=False, poll_interval=0.2,
            ).imported  # fmt: skip
            say(f"indexed {imported.users:,} accounts (reindex --no-enrich); enriching ...")
            time.sleep(1.5)  # the fake's bucket refills: the enrichment starts from a full one
            fake.clear_requests()
            run = Enrichment(deps, args.accounts)
            run.start()
            expected = args.accounts / args.max_rps
            spacing = max(0.2, min(5.0, 0.8 * expected / max(args.live, 1)))
            checks = live_checks(deps, own or deps.client(), targets, args.live, spacing, run)
            run.join()
            if run.error is not None:
                raise run.error
            records = fake.requests
            first = first_run(fake, records, run, deps, args.burst)
            live = live_summary(records, checks, run, args.live_client, spacing)
            say("second enrichment, nothing changed ...")
            fake.clear_requests()
            again = enrich_now(deps, "bench_sync (again)")
            second = {
                "accounts_read": again.accounts,
                "requests": fake.count(),
                "authentication_methods_calls": method_calls(fake.requests),
            }
        finally:
            if own is not None:
                own.close()
            deps.close()
            deps.store.engine.dispose()
    return {
        "accounts": args.accounts,
        "max_rps": args.max_rps,
        "fake_rate": fake_rate,
        "fake_burst": args.burst,
        "first": first,
        "live": live,
        "second": second,
    }


# --------------------------------------------------------------------------- reindex


def child(code: str, *argv: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `code` in a fresh interpreter from the repository root; its last line as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True, text=True, check=False, cwd=HERE.parent, env=env,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def core_once(db: Path, data: Path) -> dict[str, Any]:
    """The core import (`import_export` of the file) in a child process."""
    return child(CORE_CHILD, f"sqlite:///{db}", str(data))


def reindex_once(fake: Any, db: Path, max_rps: float) -> dict[str, Any]:
    """`full_sync(enrich=False)` in a child process, configured through its environment."""
    env = dict(os.environ)
    env.pop("AUTH0_CONNECTION_ID", None)
    env.update(
        DATABASE_URL=f"sqlite:///{db}", AUTH0_DOMAIN=fake.base_url,
        AUTH0_CLIENT_ID=fake.client_id, AUTH0_CLIENT_SECRET=fake.client_secret,
        AUTH0_AUDIENCE=fake.audience, MFA_WHOIS_AUTH0_MAX_RPS=str(max_rps),
    )  # fmt: skip
    return child(REINDEX_CHILD, env=env)


def reindex_part(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Core import vs. the reindex's import phase, same users, fresh SQLite each time."""
    from tests.fake_auth0 import FakeAuth0

    data = synth.write(args.users, HERE / "data" / f"users-{args.users}.ndjson.gz")
    users = [json.loads(line) for line in synth.users(args.users)]
    cores: list[dict[str, Any]] = []
    reindexes: list[dict[str, Any]] = []
    rate = args.fake_rate or args.max_rps
    with FakeAuth0(users=users, rate=rate, burst=args.burst, download_url_ttl=600) as fake:
        del users  # the fake holds them
        for i in range(args.repeat):
            cores.append(core_once(work / f"core-{i}.db", data))
            reindexes.append(reindex_once(fake, work / f"reindex-{i}.db", args.max_rps))
            say(f"run {i + 1}: core import {cores[-1]['import_s']:.2f}s, reindex import phase "
                f"{reindexes[-1]['import_s']:.2f}s (download {reindexes[-1]['download_s']:.2f}s, "
                f"total {reindexes[-1]['total_s']:.2f}s)")  # fmt: skip
        errors = list(fake.errors)
    if errors:
        raise RuntimeError(f"the fake crashed:\n{errors[0]}")
    core = statistics.median(r["import_s"] for r in cores)
    phase = statistics.median(r["import_s"] for r in reindexes)
    with gzip.open(data, "rb") as lines:
        size = sum(len(line) for line in lines)
    return {
        "users": args.users,
        "repeat": args.repeat,
        "ndjson_mb": round(size / 1e6, 1),
        "core_import_s": round(core, 2),
        "reindex_import_s": round(phase, 2),
        "ratio": round(phase / core, 2),
        "ratio_worst_case": round(  # slowest reindex import phase / fastest core import
            max(r["import_s"] for r in reindexes) / min(r["import_s"] for r in cores), 2
        ),
        "reindex_download_s": round(statistics.median(r["download_s"] for r in reindexes), 2),
        "reindex_total_s": round(statistics.median(r["total_s"] for r in reindexes), 2),
        "core_peak_rss_mb": round(max(r["peak_rss_mb"] for r in cores)),
        "reindex_peak_rss_mb": round(max(r["peak_rss_mb"] for r in reindexes)),
        "users_imported": [reindexes[0]["users"], cores[0]["users"]],
        "links": [reindexes[0]["links"], cores[0]["links"]],
        "runs": {"core_s": [round(r["import_s"], 2) for r in cores],
                 "reindex_import_s": [round(r["import_s"], 2) for r in reindexes]},
    }  # fmt: skip


# --------------------------------------------------------------------------- report


def verdicts(out: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, wanted, measured, met) rows."""
    rows: list[tuple[str, str, str, bool]] = []
    if "enrichment" in out:
        e = out["enrichment"]
        first, live = e["first"], e["live"]
        floor = 0.9 * e["max_rps"]
        rows += [
            ("enrichment sustained rate", f">= {floor:g} req/s (90% of MAX_RPS {e['max_rps']:g})",
             f"{first['sustained_rps']:.2f} req/s", first["sustained_rps"] >= floor),
            ("answered 429", "<= 1% of requests",
             f"{first['answered_429']} of {first['requests']:,} ({100 * first['share_429']:.2f}%)",
             first["share_429"] <= 0.01),
            ("most requests in any 1 s window", f"<= burst {e['fake_burst']}",
             str(first["max_in_1s_window"]), first["max_in_1s_window"] <= e["fake_burst"]),
        ]  # fmt: skip
        p95 = live["first_call_p95_s"]
        rows.append((
            "live check: first Auth0 call (p95)", "<= 1 s",
            f"p50 {live['first_call_p50_s']} s, p95 {p95} s, max {live['first_call_max_s']} s "
            f"({live['measured']} checks)",
            p95 is not None and p95 <= 1.0 and live["measured"] == live["during_enrichment"],
        ))  # fmt: skip
        calls = e["second"]["authentication_methods_calls"]
        rows.append(("second enrich, nothing changed", "0 authentication-methods calls",
                     str(calls), calls == 0))  # fmt: skip
    if "reindex" in out:
        r = out["reindex"]
        rows.append((
            f"reindex import phase, {r['users']:,} users", "<= 2x core import",
            f"{r['reindex_import_s']:.2f} s vs {r['core_import_s']:.2f} s = {r['ratio']:.2f}x "
            f"(worst run vs best core run {r['ratio_worst_case']:.2f}x)",
            r["ratio"] <= 2.0,
        ))  # fmt: skip
    return rows


def enrichment_note(e: dict[str, Any]) -> str:
    """What the enrichment table rows stand on, in words."""
    first, live = e["first"], e["live"]
    note = (
        f"Enrichment: {e['accounts']:,} MFA accounts, fake rate {e['fake_rate']:g}/s burst "
        f"{e['fake_burst']}, client MAX_RPS {e['max_rps']:g}: {first['enrich_s']} s for "
        f"{first['accounts_read']:,} accounts, {first['requests']:,} requests "
        f"({first['authentication_methods_calls']:,} authentication-methods), median gap "
        f"{first['median_gap_s']} s (smallest {first['min_gap_s']} s). {live['checks']} live "
        f"checks ({live['client']} client, ~{live['spacing_s']} s apart), whole check p50 "
        f"{live['check_p50_s']} s; accounts a live check read first are not read again."
    )
    if first["windows_above_burst"]:
        note += (
            f" {first['windows_above_burst']} runs of {e['fake_burst'] + 1} consecutive "
            f"requests arrived within 1 s (tightest {first['tightest_span_s']} s)."
        )
    return note


def markdown(out: dict[str, Any], command: str) -> str:
    """The block for benchmarks/RESULTS.md."""
    lines = [f"### bench_sync ({out['date']})", "", f"`{command}`", "",
             "| target | wanted | measured | met |", "|---|---|---|---|"]  # fmt: skip
    for name, wanted, measured, met in verdicts(out):
        lines.append(f"| {name} | {wanted} | {measured} | {'yes' if met else '**no**'} |")
    if "enrichment" in out:
        lines += ["", enrichment_note(out["enrichment"])]
    if "reindex" in out:
        r = out["reindex"]
        lines += [
            "",
            f"Reindex: {r['users']:,} users ({r['ndjson_mb']} MB NDJSON), median of {r['repeat']}; "
            f"download {r['reindex_download_s']} s, whole run {r['reindex_total_s']} s; "
            f"peak RSS core {r['core_peak_rss_mb']} MB, reindex {r['reindex_peak_rss_mb']} MB.",
        ]
    lines.append(f"\nLoad average at the end: {out['loadavg']}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=2000, help="MFA accounts to enrich")
    parser.add_argument("--users", type=int, default=100_000, help="users in the reindex part")
    parser.add_argument("--max-rps", type=float, default=10.0, help="MFA_WHOIS_AUTH0_MAX_RPS")
    parser.add_argument("--fake-rate", type=float, help="the fake's refill rate (--max-rps)")
    parser.add_argument("--burst", type=int, default=10, help="the fake's bucket size")
    parser.add_argument("--live", type=int, default=20, help="live checks during enrichment")
    parser.add_argument(
        "--live-client",
        choices=("shared", "separate"),
        default="shared",
        help="live checks share the enrichment's client (one pacer, as in one "
        "process) or use their own (as another process would)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="reindex/core import runs")
    parser.add_argument("--skip-enrich", action="store_true")
    parser.add_argument("--skip-reindex", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mfa-whois-bench-sync-"))
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d")}
    try:
        if not args.skip_enrich:
            out["enrichment"] = enrichment_part(args, work)
        if not args.skip_reindex:
            out["reindex"] = reindex_part(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["targets_met"] = all(met for *_, met in verdicts(out))
    report(out, args.json, markdown)


if __name__ == "__main__":
    main()
