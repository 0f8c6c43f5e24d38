"""Log-stream benchmark (issue 8): POST /hooks/auth0/logs on a real `mfa-whois serve` process.

    python benchmarks/bench_logstream.py                           # the issue's target
    python benchmarks/bench_logstream.py --users 100000 --batches 20   # quicker

Setup: as bench_slack.py (the synthetic export of --users users imported into a fresh SQLite
file, `mfa-whois serve --no-scheduler` on it with Slack against tests/fake_slack.py), plus
MFA_WHOIS_LOGSTREAM_TOKEN.

Load: signed /whois slash commands open-loop at --rate per second (bench_slack.py's generator)
for the whole run. Meanwhile, one delivery at a time (as Auth0 sends them: the next after the
previous answer), --batches deliveries of each size 1, 100 and 1,000 events, in JSON lines. A
batch is the mix a tenant's stream carries: 60% events that say nothing about numbers (`s`,
`seacft`, `fp`, `slo`), 40% MFA and signup events (`gd_send_sms` to an existing account's new
number, `gd_enrollment_complete`, `gd_unenroll`, `ss` of an SMS passwordless user), on accounts
of the export. Latency runs from the send to the 200 (the batch is applied by then).
After every delivery, the very next request is a /whois for a number that delivery enrolled:
it must list the account.

Target: a 100-event delivery in <= 100 ms p95 while the lookups run at 50/s. Reported: p50,
p95 and max per batch size, non-200 answers, the follow-up lookups that missed, and the
lookups' own p50/p99: alone for --alone seconds first (the baseline in the same run), then
while each size's deliveries run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import bench_slack as bs  # noqa: E402
import synth  # noqa: E402
from report import report  # noqa: E402

from tests.fake_slack import SIGNING_SECRET, FakeSlack, sign  # noqa: E402

LOGS = "/hooks/auth0/logs"
TOKEN = "bench-logstream-token-3f9a"
SIZES = (1, 100, 1000)
TARGET_SIZE, TARGET_P95_MS = 100, 100.0
IGNORED = ("s", "seacft", "fp", "slo")


class Events:
    """Auth0 log events about accounts of the synthetic export, dated in increasing order."""

    def __init__(self, users: int, seed: int = 8) -> None:
        self.rnd = random.Random(seed)
        self.users = users
        self.numbers = iter(synth.number_pool(200_000, random.Random(seed + 1)))
        self.n = 0

    def user(self) -> str:
        """An `auth0|` account of the export (every third user may be passwordless)."""
        i = self.rnd.randrange(self.users // 3) * 3 + 1
        return f"auth0|{i:024x}"

    def event(self, type_: str, user: str, **fields: Any) -> dict[str, Any]:
        self.n += 1
        stamp = 1_764_000_000 + self.n / 1000
        date = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{self.n % 1000:03d}Z"
        log_id = f"90020261127{self.n:045d}"
        return {"date": date, "type": type_, "user_id": user, "log_id": log_id,
                "client_id": "AaiyAPdpYdesoKnqjj8HJqRn4T5titww", "ip": "203.0.113.7",
                "user_agent": "Chrome 131.0.0 / Mac OS X 10.15.7", "description": "",
                "details": {}, **fields}  # fmt: skip

    def enrollment(self) -> tuple[dict[str, Any], str, str]:
        """gd_enrollment_complete of a fresh number: the event, its number, its account."""
        user, number = self.user(), next(self.numbers)
        details = {"authenticator": {"phone_number": number}}
        desc = "Guardian - Enrollment complete (sms)"
        return (
            self.event("gd_enrollment_complete", user, details=details, description=desc),
            number,
            user,
        )

    def relevant(self) -> dict[str, Any]:
        kind = self.rnd.random()
        if kind < 0.4:
            return self.enrollment()[0]
        details = {"authenticator": {"id": "sms|dev_x", "phone_number": next(self.numbers)}}
        if kind < 0.7:
            return self.event("gd_send_sms", self.user(), details=details,
                              description="Guardian - Second factor sms sent")  # fmt: skip
        if kind < 0.85:
            return self.event("gd_unenroll", self.user(), details=details)
        body = {"phone_number": next(self.numbers), "phone_verified": True, "connection": "sms"}
        sms_user = f"sms|bench{self.n:019x}"
        return self.event("ss", sms_user, strategy="sms", connection="sms", details={"body": body})

    def batch(self, size: int) -> tuple[bytes, str, str]:
        """A JSON-lines delivery of `size` events; a number it enrolls and that account."""
        first, number, user = self.enrollment()
        events = [first]
        while len(events) < size:
            if self.rnd.random() < 0.6:
                events.append(self.event(self.rnd.choice(IGNORED), self.user()))
            else:
                events.append(self.relevant())
        self.rnd.shuffle(events)
        lines = (json.dumps({"log_id": e["log_id"], "data": e}) for e in events)
        return "\n".join(lines).encode(), number, user


Batch = tuple[bytes, str, str]


async def deliveries(
    url: str, fake: FakeSlack, plan: dict[int, list[Batch]], pause: float, t0: float
) -> tuple[dict[str, Any], dict[int, tuple[float, float]]]:
    """Each size in turn, one delivery at a time; after each, a /whois for its new number.

    Also returns when each size's deliveries ran, in seconds since `t0`.
    """
    sender = bs.SlackSender(httpx.post, fake)
    out: dict[str, Any] = {}
    windows: dict[int, tuple[float, float]] = {}
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=60.0, trust_env=False) as client:
        for size, batches in plan.items():
            ms: list[float] = []
            errors = missed = 0
            began = time.perf_counter() - t0
            for i, (body, number, user) in enumerate(batches):
                start = time.perf_counter()
                answer = await client.post(url + LOGS, content=body, headers=headers)
                ms.append((time.perf_counter() - start) * 1e3)
                errors += answer.status_code != 200
                command = sender.command_body("/whois", number, "UBENCHPUSH", f"push-{size}-{i}")
                stamp = str(int(time.time()))
                found = await client.post(url + bs.EVENTS, content=command, headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": sign(SIGNING_SECRET, stamp, command),
                })  # fmt: skip
                missed += found.status_code != 200 or user not in found.text
                await asyncio.sleep(pause)
            windows[size] = (began, time.perf_counter() - t0)
            out[str(size)] = {
                "deliveries": len(batches),
                "p50_ms": round(bs.percentile(ms, 50), 1),
                "p95_ms": round(bs.percentile(ms, 95), 1),
                "max_ms": round(max(ms), 1),
                "non_200": errors,
                "next_lookup_missed": missed,
            }
            bs.say(f"  {size:>5} events: {out[str(size)]}")
    return out, windows


def lookup_stats(samples: list[Any], start: float, end: float) -> dict[str, Any]:
    """The /whois load's latency between `start` and `end` (seconds since it began)."""
    ms = [s.ms for s in samples if start <= s.at < end]
    if not ms:
        return {"requests": 0}
    return {"requests": len(ms), "p50_ms": round(bs.percentile(ms, 50), 1),
            "p99_ms": round(bs.percentile(ms, 99), 1), "max_ms": round(max(ms), 1),
            "non_200": sum(s.status != 200 for s in samples if start <= s.at < end)}  # fmt: skip


async def under_load(args: argparse.Namespace, url: str, fake: FakeSlack, queries: Any) -> Any:
    """The deliveries while the lookups run at --rate; both results.

    Every delivery body is built before the load starts: building 1,000-event bodies in the
    load's own event loop would delay its sends and reads.
    """
    events = Events(args.users)
    plan = {size: [events.batch(size) for _ in range(args.batches)] for size in SIZES}
    load = bs.Load(url, fake, queries, args.rate, 100)
    done = asyncio.Event()
    t0 = time.perf_counter()
    lookups = asyncio.create_task(load.run(lambda _at: not done.is_set()))
    await asyncio.sleep(args.warmup + args.alone)
    pushes, windows = await deliveries(url, fake, plan, args.pause, t0)
    done.set()
    samples = await lookups
    lookup = {"alone": lookup_stats(samples, args.warmup, args.warmup + args.alone)}
    for size, (start, end) in windows.items():
        lookup[f"during {size}"] = lookup_stats(samples, start, end)
    return pushes, lookup


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data, db, _ = bs.prepare(args, work)
    phones, counts = bs.export_numbers(data)
    queries = bs.plan_queries(phones, counts, 50_000)
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "users": args.users,
                           "rate": args.rate, "batches": args.batches}  # fmt: skip
    with FakeSlack() as fake, open(work / "serve.log", "w") as log:
        env = bs.serve_env(db, fake) | {"MFA_WHOIS_LOGSTREAM_TOKEN": TOKEN}
        with bs.serving(env, work, log) as (url, pid):
            bs.say(f"server up (pid {pid}); lookups at {args.rate:g}/s, then deliveries")
            out["deliveries"], out["lookups"] = asyncio.run(under_load(args, url, fake, queries))
    target = out["deliveries"][str(TARGET_SIZE)]
    out["targets_met"] = (
        target["p95_ms"] <= TARGET_P95_MS
        and all(d["non_200"] == 0 and d["next_lookup_missed"] == 0
                for d in out["deliveries"].values())
    )  # fmt: skip
    return out


def markdown(out: dict[str, Any], command: str) -> str:
    lines = [f"## Log stream (issue 8): `{command}`", "",
             f"{out['users']:,} accounts (SQLite), /whois at {out['rate']:g}/s throughout, "
             f"{out['batches']} deliveries per size, one at a time.", "",
             "| events per delivery | p50 | p95 | max | non-200 | next lookup missed |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for size, d in out["deliveries"].items():
        lines.append(f"| {int(size):,} | {d['p50_ms']} ms | {d['p95_ms']} ms | {d['max_ms']} ms "
                     f"| {d['non_200']} | {d['next_lookup_missed']} |")  # fmt: skip
    lines += [
        "",
        "/whois meanwhile:",
        "",
        "| when | requests | p50 | p99 | max | non-200 |",
        "|---|---|---|---|---|---|",
    ]
    for when, lk in out["lookups"].items():
        lines.append(
            f"| {when} | {lk['requests']:,} | {lk.get('p50_ms')} ms | "
            f"{lk.get('p99_ms')} ms | {lk.get('max_ms')} ms | {lk.get('non_200')} |"
        )
    lines.append(f"\nTarget (100 events, p95 <= 100 ms): {_met(out)}.")  # fmt: skip
    return "\n".join(lines)


def _met(out: dict[str, Any]) -> str:
    return "met" if out["targets_met"] else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000, help="accounts in the index")
    parser.add_argument("--rate", type=float, default=50.0, help="/whois per second meanwhile")
    parser.add_argument("--batches", type=int, default=100, help="deliveries per size")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between deliveries")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted load first, s")
    parser.add_argument("--alone", type=float, default=15.0, help="lookups alone (baseline), s")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, index)")
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mfa-whois-bench-logstream-"))
    try:
        out = measure(args, work)
    finally:
        if args.keep:
            bs.say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(out, args.json, markdown)


if __name__ == "__main__":
    main()
