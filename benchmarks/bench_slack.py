"""Slack benchmark (issue 4): signed /whois requests against a real `mfa-whois serve` process.

    python benchmarks/bench_slack.py                                    # the issue's target
    python benchmarks/bench_slack.py --users 100000 --duration 10       # quicker
    python benchmarks/bench_slack.py --users 100000 --skip-reindex      # idle part only

Setup: the synthetic export of --users users (benchmarks/synth.py) is imported with
`mfa-whois import` into a fresh SQLite file in a temp dir (timed: the idle import). Then
`mfa-whois serve --no-scheduler` runs as a child process on that file, with Slack configured
against tests/fake_slack.py (a local fake Web API; response URLs point at it too),
SLACK_AGENT_USERS empty (everyone may ask), MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=0 (unlimited:
admitted in memory, every lookup still audited) and the requests spread over --agents user ids.

Load: slash commands form-encoded and signed as Slack sends them (tests/fake_slack.py builds
and signs them), sent open-loop at --rate per second: send times are fixed in advance (i/rate)
and nothing waits for an answer before the next send. 90% ask for a number in the export
(drawn per user, so shared numbers come up more often), 10% for valid numbers that are not.
Each request's latency runs from its send to the full HTTP response: the acknowledgement that
carries the answer. A request counts as answered when it is a 200 with an ephemeral message
naming the number and the number of accounts the index links to it (read from the index after
the import: linked identities' and MFA numbers count; the export's unusable numbers are left out).

- warm-up: --warmup seconds of the same load, not counted;
- baseline: GET /healthz at the same rate for --baseline seconds (HTTP, a worker-thread hop,
  the client's own time): the floor under every answer;
- phase 1 (idle): --duration seconds. Targets: p50 <= 20 ms, p99 <= 100 ms;
- phase 2 (reindex): the same load while `mfa-whois import` of the same export (the atomic
  export import a full reindex runs) writes to the same SQLite file; the load starts with the
  import and goes on until --tail seconds after it ends. Target: no request over 3 s.
Also reported: non-200 answers, wrong answers, the generator's send lag, the server's CPU time
per request, the import's wall time under load vs. idle, and whether every answered lookup got
its audit row (counted in the database after the server has shut down cleanly).

Prints progress on stderr, then a JSON summary and a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import synth  # noqa: E402
from report import report  # noqa: E402

from tests.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackSender, sign  # noqa: E402

EVENTS = "/slack/events"
HEALTHZ = "/healthz"
SLOW_S = 3.0  # Slack gives up on an acknowledgement after 3 seconds
TICKS = os.sysconf("SC_CLK_TCK")
CLEARED_PREFIXES = ("SLACK_", "AUTH0_", "MFA_WHOIS_", "DATABASE_URL", "PORT")


def say(text: str) -> None:
    """Progress for people, on stderr."""
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


def cli() -> list[str]:
    """How to run `mfa-whois` (the installed console script, else the module)."""
    exe = shutil.which("mfa-whois")
    return [exe] if exe else [sys.executable, "-m", "bot.cli"]


def base_env(db: Path) -> dict[str, str]:
    """The environment of every child: this one without our settings, plus the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    env["DATABASE_URL"] = f"sqlite:///{db}"
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    """One /whois: the number typed, and how many accounts the index links to it."""

    phone: str
    accounts: int

    def expected(self) -> str:
        """How the answer's notification text starts."""
        found = f"{self.accounts:,} account" if self.accounts else "no account"
        return f"*{self.phone}*: {found}"


def export_numbers(path: Path) -> tuple[list[str], Counter[str]]:
    """Every user's phone number in the export, and how many users have each."""
    phones: list[str] = []
    with gzip.open(path, "rb") as lines:
        for line in lines:
            user = json.loads(line)
            if "phone_number" in user:
                phones.append(user["phone_number"])
    return phones, Counter(phones)


def plan_queries(phones: list[str], counts: Counter[str], n: int, seed: int = 11) -> list[Query]:
    """`n` queries: 90% numbers in the export (drawn per user), 10% valid numbers not in it."""
    rnd = random.Random(seed)
    misses = [p for p in synth.number_pool(2000, random.Random(seed + 1)) if p not in counts]
    queries = []
    for _ in range(n):
        phone = rnd.choice(phones) if rnd.random() < 0.9 else rnd.choice(misses)
        queries.append(Query(phone, counts.get(phone, 0)))
    return queries


def indexed(url: str, planned: list[Query]) -> list[Query]:
    """The planned numbers the index can answer, each with the accounts it links to them.

    What a lookup must list, read from the index itself after the import: the export's root
    `phone_number` alone misses linked identities' numbers and MFA numbers, and the pool holds
    unusable numbers (a refusal, not an answer), which are left out.
    """
    from phoneindex.db import make_engine
    from phoneindex.numbers import to_e164_or_none
    from phoneindex.store import Store

    store = Store(make_engine(url))
    found: dict[str, int] = {}
    queries = []
    for query in planned:
        phone = to_e164_or_none(query.phone, "US")
        if phone is None:
            continue
        if phone not in found:
            found[phone] = len(store.lookup(phone)["accounts"])
        queries.append(Query(query.phone, found[phone]))
    store.engine.dispose()
    return queries


# --------------------------------------------------------------------------- processes


def run_import(data: Path, env: dict[str, str], cwd: Path, log: TextIO) -> subprocess.Popen[bytes]:
    """Start `mfa-whois import DATA` (the atomic export import a full reindex runs)."""
    return subprocess.Popen(
        [*cli(), "import", str(data)], env=env, cwd=cwd, stdout=log, stderr=log
    )  # fmt: skip


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(env: dict[str, str], cwd: Path, log: TextIO) -> Iterator[tuple[str, int]]:
    """`mfa-whois serve --no-scheduler` on a free port: its base URL and pid; stopped cleanly."""
    port = free_port()
    cmd = [*cli(), "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown: deferred writes finish
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            say("the server did not stop within 120 s; killed")


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait until /healthz answers 200."""
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"mfa-whois serve exited with {proc.returncode}")
            try:
                if client.get(url + "/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError("mfa-whois serve did not become healthy in time")


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Sample:
    """One request: when it was due, how late it went out, how long it took, what came back."""

    at: float  # scheduled send, seconds from the phase start
    lag_ms: float
    ms: float
    status: int  # 0: no HTTP response (connection error, timeout)
    answered: bool  # 200 with the ephemeral answer the export predicts


class Load:
    """Open-loop requests at a fixed rate: signed /whois commands, or GET /healthz (baseline)."""

    def __init__(self, url: str, fake: FakeSlack, queries: list[Query], rate: float, agents: int):
        self.url = url
        self.sender = SlackSender(httpx.post, fake)  # only builds bodies here
        self.queries = queries
        self.rate = rate
        self.agents = agents
        self.sent = 0
        self.answered = 0  # every answered lookup should get its audit row

    async def run(self, keep_going: Callable[[float], bool], healthz: bool = False) -> list[Sample]:
        """Send at i/rate seconds while `keep_going(seconds since start)`; every sample."""
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
        timeout = httpx.Timeout(60.0)
        one = self._healthz if healthz else self._whois
        async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
            start = time.perf_counter()
            tasks = []
            for i in range(10**9):
                at = i / self.rate
                delay = start + at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not keep_going(at):
                    break
                tasks.append(asyncio.create_task(one(client, start, at)))
            return list(await asyncio.gather(*tasks))

    async def _whois(self, client: httpx.AsyncClient, start: float, at: float) -> Sample:
        n = self.sent
        self.sent += 1
        query = self.queries[n % len(self.queries)]
        agent = f"UBENCH{n % self.agents:04d}"
        body = self.sender.command_body("/whois", query.phone, agent, f"bench-{n}")
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(SIGNING_SECRET, stamp, body),
        }
        sent = time.perf_counter()
        lag = (sent - start - at) * 1e3
        try:
            response = await client.post(self.url + EVENTS, content=body, headers=headers)
        except httpx.HTTPError:
            return Sample(at, lag, (time.perf_counter() - sent) * 1e3, 0, False)
        ms = (time.perf_counter() - sent) * 1e3
        ok = answered(response, query)
        self.answered += ok
        return Sample(at, lag, ms, response.status_code, ok)

    async def _healthz(self, client: httpx.AsyncClient, start: float, at: float) -> Sample:
        sent = time.perf_counter()
        lag = (sent - start - at) * 1e3
        try:
            response = await client.get(self.url + HEALTHZ)
        except httpx.HTTPError:
            return Sample(at, lag, (time.perf_counter() - sent) * 1e3, 0, False)
        ms = (time.perf_counter() - sent) * 1e3
        ok = response.status_code == 200 and response.json().get("status") == "ok"
        return Sample(at, lag, ms, response.status_code, ok)


def answered(response: httpx.Response, query: Query) -> bool:
    """A 200 carrying the ephemeral answer with the expected number of accounts."""
    if response.status_code != 200:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    text = str(body.get("text") or "")
    return (
        body.get("response_type") == "ephemeral"
        and text.startswith(query.expected())
        and (query.accounts == 0 or text[len(query.expected()) :] in ("", "s"))
        and len(body.get("blocks") or []) >= 4
    )


def summary(samples: list[Sample], seconds: float, cpu: float, client_cpu: float) -> dict[str, Any]:
    """Latency percentiles and failure counts of one phase."""
    ms = [s.ms for s in samples]
    lags = [s.lag_ms for s in samples]
    n = len(samples)
    return {
        "requests": n,
        "seconds": round(seconds, 1),
        "rate_per_s": round(n / seconds, 1) if seconds else None,
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "over_3s": sum(1 for s in samples if s.ms > SLOW_S * 1e3 or s.status == 0),
        "non_200": sum(1 for s in samples if s.status != 200),
        "no_response": sum(1 for s in samples if s.status == 0),
        "wrong_answer": sum(1 for s in samples if s.status == 200 and not s.answered),
        "send_lag_p99_ms": round(percentile(lags, 99), 1),
        "send_lag_max_ms": round(max(lags), 1),
        "server_cpu_ms_per_request": round(cpu * 1e3 / n, 2),
        "client_cpu_ms_per_request": round(client_cpu * 1e3 / n, 2),
    }


def phase(
    load: Load, pid: int, keep_going: Callable[[float], bool], healthz: bool = False
) -> tuple[list[Sample], dict[str, Any]]:
    """Run the load once; its samples and summary (with the server's CPU time meanwhile)."""
    cpu0, mine0, t0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
    samples = asyncio.run(load.run(keep_going, healthz))
    seconds = time.perf_counter() - t0
    cpu, mine = cpu_seconds(pid) - cpu0, time.process_time() - mine0
    return samples, summary(samples, seconds, cpu, mine)


# --------------------------------------------------------------------------- phases


def baseline_phase(load: Load, pid: int, duration: float) -> dict[str, Any]:
    """The HTTP floor: GET /healthz (a worker-thread hop, cached freshness) at the same rate."""
    say(f"baseline: GET /healthz for {duration:g} s at {load.rate:g}/s")
    _, out = phase(load, pid, lambda at: at < duration, healthz=True)
    say(f"  p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
    return out


def idle_phase(load: Load, pid: int, duration: float) -> dict[str, Any]:
    """Phase 1: the load against an idle index."""
    say(f"phase 1: {duration:g} s at {load.rate:g}/s, idle index")
    _, out = phase(load, pid, lambda at: at < duration)
    say(f"  p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, max {out['max_ms']} ms, "
        f"{out['non_200']} non-200, {out['wrong_answer']} wrong")  # fmt: skip
    return out


def reindex_phase(
    load: Load, pid: int, args: argparse.Namespace, data: Path, env: dict[str, str], work: Path
) -> dict[str, Any]:
    """Phase 2: the load while `mfa-whois import` rewrites the same SQLite file."""
    say(f"phase 2: {load.rate:g}/s while `mfa-whois import` rewrites the index")
    ended: list[float] = []
    with open(work / "reindex.log", "w") as log:
        started = time.perf_counter()
        importer = run_import(data, env, work, log)

        def keep_going(at: float) -> bool:
            if not ended and importer.poll() is not None:
                ended.append(time.perf_counter() - started)
            if at > args.reindex_timeout:
                return False
            return not ended or at < ended[0] + args.tail

        samples, out = phase(load, pid, keep_going)
        if not ended:
            importer.kill()
            importer.wait()
            raise RuntimeError(f"the import took over {args.reindex_timeout:g} s; killed it")
    if importer.returncode != 0:
        raise RuntimeError(f"the import failed ({importer.returncode}): see {work}/reindex.log")
    during = [s.ms for s in samples if s.at <= ended[0]] or [0.0]
    slowest = sorted(samples, key=lambda s: -s.ms)[:5]
    out |= {
        "import_s": round(ended[0], 1),
        "requests_during_import": sum(1 for s in samples if s.at <= ended[0]),
        "p99_ms_during_import": round(percentile(during, 99), 1),
        "max_ms_by_5s": max_by_window(samples, 5.0),
        "slowest": [{"at_s": round(s.at, 2), "ms": round(s.ms), "status": s.status}
                    for s in slowest],
    }  # fmt: skip
    say(f"  import {out['import_s']} s; p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, max "
        f"{out['max_ms']} ms, {out['over_3s']} over 3 s, {out['non_200']} non-200, "
        f"{out['wrong_answer']} wrong")  # fmt: skip
    return out


def max_by_window(samples: list[Sample], width: float) -> list[int]:
    """The slowest request (ms) of each `width`-second window of send times."""
    worst: dict[int, float] = {}
    for s in samples:
        key = int(s.at // width)
        worst[key] = max(worst.get(key, 0.0), s.ms)
    return [round(worst.get(k, 0.0)) for k in range(max(worst) + 1)] if worst else []


def audit_rows(db: Path) -> int:
    """Lookups recorded in the audit trail (read after the server has stopped)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM audit_event WHERE via = 'slack'").fetchone()
    return int(rows)


# --------------------------------------------------------------------------- report


def verdicts(out: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, wanted, measured, met) rows."""
    idle = out["idle"]
    rows = [
        (f"ack p50, idle, {out['rate']:g}/s", "<= 20 ms", f"{idle['p50_ms']} ms",
         idle["p50_ms"] <= 20),
        (f"ack p99, idle, {out['rate']:g}/s", "<= 100 ms", f"{idle['p99_ms']} ms",
         idle["p99_ms"] <= 100),
        ("idle: every request answered", "200 + expected answer",
         f"{idle['non_200']} non-200, {idle['wrong_answer']} wrong of {idle['requests']:,}",
         idle["non_200"] == idle["wrong_answer"] == 0),
    ]  # fmt: skip
    if "reindex" in out:
        r = out["reindex"]
        rows += [
            ("requests over 3 s during a full reindex", "0",
             f"{r['over_3s']} of {r['requests']:,} (max {r['max_ms']:,.0f} ms)", r["over_3s"] == 0),
            ("reindex: every request answered", "200 + expected answer",
             f"{r['non_200']} non-200, {r['wrong_answer']} wrong of {r['requests']:,}",
             r["non_200"] == r["wrong_answer"] == 0),
        ]  # fmt: skip
    return rows


def phase_row(name: str, p: dict[str, Any]) -> str:
    """One Markdown table row of a phase's numbers."""
    return (
        f"| {name} | {p['requests']:,} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | "
        f"{p['max_ms']:,} | {p['over_3s']} | {p['non_200']} | {p['wrong_answer']} | "
        f"{p['server_cpu_ms_per_request']} |"
    )


def markdown(out: dict[str, Any], command: str) -> str:
    """The block for benchmarks/RESULTS.md."""
    lines = [f"### bench_slack ({out['date']})", "", f"`{command}`", "",
             "| target | wanted | measured | met |", "|---|---|---|---|"]  # fmt: skip
    for name, wanted, measured, met in verdicts(out):
        lines.append(f"| {name} | {wanted} | {measured} | {'yes' if met else '**no**'} |")
    lines += ["", "| phase | requests | p50 ms | p95 ms | p99 ms | max ms | > 3 s | non-200 | "
              "wrong | server CPU ms/req |", "|---|---|---|---|---|---|---|---|---|---|",
              phase_row("idle", out["idle"])]  # fmt: skip
    if "healthz" in out:
        lines.insert(-1, phase_row("baseline: GET /healthz", out["healthz"]))
    if "reindex" in out:
        r = out["reindex"]
        lines.append(phase_row("during reindex", r))
        lines += [
            "",
            f"Index: {out['users']:,} users, idle `mfa-whois import` {out['idle_import_s']} s; "
            f"under load {r['import_s']} s ({r['requests_during_import']:,} requests during "
            f"it, p99 {r['p99_ms_during_import']} ms; load kept {out['tail_s']:g} s after). "
            f"Slowest by 5 s window (ms): {r['max_ms_by_5s']}.",
        ]
    a = out["audit"]
    lines.append(f"\nAudit rows: {a['rows']:,} for {a['answered']:,} answered lookups "
                 f"({a['missing']} missing). Load average: {out['loadavg']}.")  # fmt: skip
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def prepare(args: argparse.Namespace, work: Path) -> tuple[Path, Path, float]:
    """The export (cached), and a fresh SQLite index of it; the idle import's seconds."""
    data = synth.write(args.users, HERE / "data" / f"users-{args.users}.ndjson.gz")
    db = work / "index.db"
    say(f"importing {data.name} into a fresh SQLite index")
    with open(work / "import.log", "w") as log:
        start = time.perf_counter()
        code = run_import(data, base_env(db), work, log).wait()
    if code != 0:
        raise RuntimeError(f"the import failed ({code}): see {work}/import.log")
    seconds = time.perf_counter() - start
    say(f"  {seconds:.1f} s")
    return data, db, seconds


def serve_env(db: Path, fake: FakeSlack) -> dict[str, str]:
    """Slack configured against the fake; everyone an agent; no hourly limit; no Auth0."""
    return base_env(db) | {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake.api_url,
        "SLACK_AGENT_USERS": "",
        "MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR": "0",
    }


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Both phases against one server; the JSON summary."""
    data, db, idle_import = prepare(args, work)
    phones, counts = export_numbers(data)
    queries = indexed(f"sqlite:///{db}", plan_queries(phones, counts, 50_000))
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "users": args.users,
                           "rate": args.rate, "agents": args.agents, "tail_s": args.tail,
                           "idle_import_s": round(idle_import, 1)}  # fmt: skip
    with FakeSlack() as fake, open(work / "serve.log", "w") as log:
        with serving(serve_env(db, fake), work, log) as (url, pid):
            load = Load(url, fake, queries, args.rate, args.agents)
            say(f"server up (pid {pid}); warm-up {args.warmup:g} s")
            phase(load, pid, lambda at: at < args.warmup)
            if args.baseline:
                out["healthz"] = baseline_phase(load, pid, args.baseline)
            out["idle"] = idle_phase(load, pid, args.duration)
            if not args.skip_reindex:
                out["reindex"] = reindex_phase(load, pid, args, data, base_env(db), work)
        answered = load.answered  # warm-up included
        failures = (work / "serve.log").read_text().count("deferred audit record failed")
        out["audit"] = {"answered": answered, "rows": audit_rows(db),
                        "failed_writes_logged": failures}  # fmt: skip
        out["audit"]["missing"] = answered - out["audit"]["rows"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the index")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="idle phase, seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted load first, s")
    parser.add_argument("--baseline", type=float, default=10.0, help="GET /healthz, s (0: skip)")
    parser.add_argument("--agents", type=int, default=100, help="distinct Slack user ids")
    parser.add_argument("--tail", type=float, default=5.0, help="load after the import ends, s")
    parser.add_argument("--reindex-timeout", type=float, default=900.0, help="phase 2 cap, s")
    parser.add_argument("--skip-reindex", action="store_true", help="phase 1 only")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, index)")
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mfa-whois-bench-slack-"))
    try:
        out = measure(args, work)
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out["targets_met"] = all(met for *_, met in verdicts(out))
    report(out, args.json, markdown)


if __name__ == "__main__":
    main()
