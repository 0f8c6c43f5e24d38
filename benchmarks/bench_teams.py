"""Teams benchmark (issue 10): `whois NUMBER` activities against a real `mfa-whois serve`.

    python benchmarks/bench_teams.py                                 # the issue's target
    python benchmarks/bench_teams.py --users 100000 --duration 10    # quicker

Setup as bench_slack.py: the synthetic export of --users users (benchmarks/synth.py) imported
into a fresh SQLite file, then `mfa-whois serve --no-scheduler` on it, with Teams configured
against tests/fake_teams.py in this process (OpenID metadata and keys, token endpoint, and the
connector that records each reply with its arrival time), TEAMS_AGENT_USERS empty and
MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR=0 (unlimited; the hourly count is still queried).

Load: personal-chat message activities `whois NUMBER`, each with a Bot Framework token signed
by the fake's key (so every request's token is checked), sent open-loop at --rate per second,
each in its own conversation so its reply can be told apart; 90% numbers in the export, 10%
valid numbers that are not. Measured per request: the HTTP answer (send to 200), and the reply
(send to the connector receiving the card, which must name the number and the account count
the export predicts). Targets: HTTP p99 <= 50 ms, reply p99 <= 200 ms at 20/s on 1M accounts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import bench_slack as bs  # noqa: E402
import report as finish  # noqa: E402

from tests.fake_teams import APP_ID, APP_PASSWORD, TENANT, FakeTeams, activity  # noqa: E402

MESSAGES = "/api/messages"
REPLY_WAIT_S = 15.0  # Teams' own patience


@dataclass(frozen=True)
class Sample:
    """One activity: HTTP answer time, reply time (None: no reply), right answer."""

    http_ms: float
    status: int
    reply_ms: float | None
    right: bool


def serve_env(db: Path, fake: FakeTeams) -> dict[str, str]:
    """Teams configured against the fake; everyone an agent; no hourly limit; no Slack."""
    env = {k: v for k, v in bs.base_env(db).items() if not k.startswith(("TEAMS_", "CLIENT_"))}
    return env | {
        "TEAMS_APP_ID": APP_ID,
        "TEAMS_APP_PASSWORD": APP_PASSWORD,
        "TEAMS_TENANT_ID": TENANT,
        "TEAMS_OPENID_METADATA_URL": fake.metadata_url,
        "TEAMS_LOGIN_URL": fake.base_url,
        "MFA_WHOIS_AGENT_LOOKUPS_PER_HOUR": "0",
    }


async def load(url: str, fake: FakeTeams, queries: list[bs.Query], rate: float, seconds: float,
               agents: int) -> list[Sample]:  # fmt: skip
    """Send open-loop for `seconds`; then wait for the replies."""
    token = fake.token()
    sent: dict[str, tuple[float, bs.Query]] = {}
    answers: list[tuple[str, float, int]] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)

    async def one(client: httpx.AsyncClient, n: int) -> None:
        query = queries[n % len(queries)]
        body = activity(fake, text=f"whois {query.phone}", user=f"agent-{n % agents}")
        conversation = f"a:bench-{n}-{uuid.uuid4().hex[:6]}"
        body["conversation"]["id"] = conversation
        start = time.perf_counter()
        sent[conversation] = (start, query)
        try:
            response = await client.post(url + MESSAGES, json=body,
                                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        answers.append((conversation, (time.perf_counter() - start) * 1e3, status))

    async with httpx.AsyncClient(limits=limits, timeout=60.0, trust_env=False) as client:
        t0, tasks = time.perf_counter(), []
        for n in range(int(seconds * rate)):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, n)))
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + REPLY_WAIT_S
    while len(fake.connector_calls()) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    replies = {}
    for posted in fake.connector_calls():
        conversation = posted.path.split("/v3/conversations/", 1)[1].split("/", 1)[0]
        replies.setdefault(conversation, posted)
    samples = []
    for conversation, http_ms, status in answers:
        start, query = sent[conversation]
        posted = replies.get(conversation)
        reply_ms = (posted.at - start) * 1e3 if posted else None
        found = f"{query.accounts:,} account" if query.accounts else "no account"
        summary = str(posted.body.get("summary") or "") if posted else ""
        right = summary in (f"{query.phone}: {found}", f"{query.phone}: {found}s")
        samples.append(Sample(http_ms, status, reply_ms, right))
    return samples


async def baseline(url: str, rate: float, seconds: float) -> dict[str, float]:
    """GET /healthz open-loop at the same rate: the machine's and the server's floor."""
    times: list[float] = []

    async def one(client: httpx.AsyncClient) -> None:
        start = time.perf_counter()
        await client.get(url + "/healthz")
        times.append((time.perf_counter() - start) * 1e3)

    async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:
        t0, tasks = time.perf_counter(), []
        for n in range(int(seconds * rate)):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client)))
        await asyncio.gather(*tasks)
    return {
        "p50_ms": round(bs.percentile(times, 50), 1),
        "p99_ms": round(bs.percentile(times, 99), 1),
    }


def report(samples: list[Sample], seconds: float, cpu: float) -> dict[str, Any]:
    """Percentiles of both latencies, failures, server CPU per request."""
    http = [s.http_ms for s in samples]
    replied = [s.reply_ms for s in samples if s.reply_ms is not None]
    return {
        "requests": len(samples),
        "rate_per_s": round(len(samples) / seconds, 1),
        "http_p50_ms": round(bs.percentile(http, 50), 1),
        "http_p99_ms": round(bs.percentile(http, 99), 1),
        "http_max_ms": round(max(http), 1),
        "reply_p50_ms": round(bs.percentile(replied, 50), 1) if replied else None,
        "reply_p99_ms": round(bs.percentile(replied, 99), 1) if replied else None,
        "reply_max_ms": round(max(replied), 1) if replied else None,
        "non_200": sum(1 for s in samples if s.status != 200),
        "no_reply": sum(1 for s in samples if s.reply_ms is None),
        "wrong_answer": sum(1 for s in samples if s.reply_ms is not None and not s.right),
        "server_cpu_ms_per_request": round(cpu * 1e3 / len(samples), 2),
    }


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Warm-up, then the measured phase, against one server."""
    data, db, idle_import = bs.prepare(args, work)
    phones, counts = bs.export_numbers(data)
    used = int((args.warmup + args.duration) * args.rate * 1.1) + 10
    queries = bs.indexed(f"sqlite:///{db}", bs.plan_queries(phones, counts, used))
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "users": args.users,
                           "rate": args.rate, "import_s": round(idle_import, 1)}  # fmt: skip
    with FakeTeams() as fake, open(work / "serve.log", "w") as log:
        with bs.serving(serve_env(db, fake), work, log) as (url, pid):
            bs.say(f"server up (pid {pid}); warm-up {args.warmup:g} s")
            asyncio.run(load(url, fake, queries, args.rate, args.warmup, args.agents))
            fake.posted.clear()
            if args.baseline:
                bs.say(f"baseline: GET /healthz for {args.baseline:g} s")
                out["healthz"] = asyncio.run(baseline(url, args.rate, args.baseline))
            bs.say(f"measuring: {args.duration:g} s at {args.rate:g}/s")
            cpu0, t0 = bs.cpu_seconds(pid), time.perf_counter()
            skip = int(args.warmup * args.rate)
            samples = asyncio.run(
                load(url, fake, queries[skip:], args.rate, args.duration, args.agents)
            )
            out["whois"] = report(samples, time.perf_counter() - t0, bs.cpu_seconds(pid) - cpu0)
    return out


def markdown(out: dict[str, Any], command: str) -> str:
    """The block for benchmarks/RESULTS.md."""
    w = out["whois"]
    rows = [
        ("HTTP answer p99", "<= 50 ms", f"{w['http_p99_ms']} ms", w["http_p99_ms"] <= 50),
        ("reply posted p99", "<= 200 ms", f"{w['reply_p99_ms']} ms",
         w["reply_p99_ms"] is not None and w["reply_p99_ms"] <= 200),
        ("every request answered right", "200 + reply", f"{w['non_200']} non-200, "
         f"{w['no_reply']} no reply, {w['wrong_answer']} wrong of {w['requests']:,}",
         w["non_200"] == w["no_reply"] == w["wrong_answer"] == 0),
    ]  # fmt: skip
    lines = [f"### bench_teams ({out['date']})", "", f"`{command}`", "",
             "| target | wanted | measured | met |", "|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {n} | {want} | {got} | {'yes' if ok else '**no**'} |" for n, want, got, ok in rows
    ]
    lines += ["", f"{out['users']:,} users (import {out['import_s']} s), {w['rate_per_s']}/s: "
              f"HTTP p50 {w['http_p50_ms']} ms, max {w['http_max_ms']} ms; reply p50 "
              f"{w['reply_p50_ms']} ms, max {w['reply_max_ms']} ms; server CPU "
              f"{w['server_cpu_ms_per_request']} ms/request. "
              f"Load average: {out['loadavg']}."]  # fmt: skip
    if "healthz" in out:
        h = out["healthz"]
        lines.append(f"Baseline in the same run: GET /healthz p50 {h['p50_ms']} ms, "
                     f"p99 {h['p99_ms']} ms.")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the index")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted load first, s")
    parser.add_argument("--baseline", type=float, default=10.0, help="GET /healthz, s (0: skip)")
    parser.add_argument("--agents", type=int, default=100, help="distinct Entra object ids")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, index)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mfa-whois-bench-teams-"))
    try:
        out = measure(args, work)
    finally:
        if args.keep:
            bs.say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    finish.report(out, None, markdown)


if __name__ == "__main__":
    main()
