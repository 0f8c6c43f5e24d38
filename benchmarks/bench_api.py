"""HTTP lookup API benchmark (issue 9, performance): POST /api/v1/lookup against GET /healthz.

    python benchmarks/bench_api.py                                        # the issue's target
    python benchmarks/bench_api.py --users 100000 --pg '' --duration 5    # quicker, SQLite only

Setup, per database (SQLite file, then a fresh PostgreSQL database unless --pg ''): the cached
synthetic export of --users users (benchmarks/synth.py, the file bench_core.py uses) is
imported with `mfa-whois import`, then `mfa-whois serve --no-scheduler` (one uvicorn worker)
runs on it with one API key whose hourly limit is 0 (unlimited: admitted in memory, nothing
counted in the database). Every lookup is still audited: its row is written behind the answer
(the rows of each 50 ms in one transaction), and the run checks that none is missing.

Load: --clients concurrent clients in closed loop (each sends its next request as soon as the
previous answer is in), over keep-alive HTTP/1.1 connections spoken directly on asyncio streams
so the client costs little of the 2 cores it shares with the server. Lookups are POSTs of
`{"phone": ...}`: 90% numbers in the export (drawn per user, so shared numbers come up more
often), 10% valid numbers that are not; the export's unusable numbers are left out. An answer
counts when it is a 200 listing as many accounts as the index (read before the load) links to
the number. After a --warmup of lookups, each of --rounds
rounds runs GET /healthz for --duration seconds, then the lookups for --duration seconds.

Targets (issue 9): lookups sustain >= half the requests/s of /healthz on the same server in the
same run; lookup p99 <= 20 ms. On a shared machine both move with other work: the ratio is
what to compare, and the load average is printed with the numbers.

Prints progress on stderr, then a JSON summary and a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import synth  # noqa: E402
from bench_core import fresh_pg_database  # noqa: E402
from bench_slack import (  # noqa: E402
    Query,
    cli,
    cpu_seconds,
    export_numbers,
    free_port,
    indexed,
    percentile,
    plan_queries,
    wait_healthy,
)
from report import report  # noqa: E402

KEY = "bench-0123456789abcdef0123456789abcdef"
LOOKUP = "/api/v1/lookup"
HEALTHZ = "/healthz"
CLEARED_PREFIXES = ("SLACK_", "AUTH0_", "MFA_WHOIS_", "DATABASE_URL", "PORT", "TEAMS_")


def say(text: str) -> None:
    """Progress for people, on stderr."""
    print(text, file=sys.stderr, flush=True)


def env_for(url: str) -> dict[str, str]:
    """A child's environment: this one without our settings, plus the database and one key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    return env | {
        "DATABASE_URL": url,
        "MFA_WHOIS_API_KEYS": f"bench:{KEY}:0",
        "MFA_WHOIS_SECRET_KEY": "bench-audit-key",
    }


@contextmanager
def serving(
    env: dict[str, str], cwd: Path, log: TextIO, workers: int = 1
) -> Iterator[tuple[int, int]]:
    """`mfa-whois serve --no-scheduler` on a free port: the port and pid; stopped cleanly."""
    port = free_port()
    cmd = [*cli(), "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)  # graceful: the audit rows behind the answers are written
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- load


def post(query: Query) -> bytes:
    """The raw HTTP/1.1 request of one lookup."""
    body = json.dumps({"phone": query.phone}).encode()
    head = (f"POST {LOOKUP} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


GET_HEALTHZ = f"GET {HEALTHZ} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


@dataclass(frozen=True)
class Sample:
    ms: float
    status: int
    ok: bool


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; the status and body of the answer."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def closed_loop(
    port: int, clients: int, seconds: float, request: Callable[[int], tuple[bytes, int | None]]
) -> list[Sample]:
    """`clients` connections, each sending its next request when the last is answered."""
    samples: list[Sample] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                raw, accounts = request(next(counter))
                sent = time.perf_counter()
                status, body = await exchange(reader, writer, raw)
                ms = (time.perf_counter() - sent) * 1e3
                ok = status == 200 and (
                    accounts is None or body.count(b'"user_id"') == accounts
                )  # fmt: skip
                samples.append(Sample(ms, status, ok))
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return samples


def summary(samples: list[Sample], seconds: float, cpu: float) -> dict[str, Any]:
    """Throughput, latency percentiles and failures of one phase."""
    ms = [s.ms for s in samples] or [0.0]
    n = len(samples)
    return {
        "requests": n,
        "rps": round(n / seconds, 1),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 1),
        "non_200": sum(1 for s in samples if s.status != 200),
        "wrong": sum(1 for s in samples if s.status == 200 and not s.ok),
        "server_cpu_ms_per_request": round(cpu * 1e3 / n, 2) if n else None,
    }


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of the server and its worker processes (serve --workers)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            total += cpu_seconds(int(stat.parent.name))
    return total


def phase(
    port: int, pid: int, args: argparse.Namespace, request: Callable[[int], tuple[bytes, Any]]
) -> tuple[list[Sample], float, float]:
    """One closed-loop run: the samples, its seconds and the server's CPU seconds."""
    cpu0, t0 = tree_cpu_seconds(pid), time.perf_counter()
    samples = asyncio.run(closed_loop(port, args.clients, args.duration, request))
    return samples, time.perf_counter() - t0, tree_cpu_seconds(pid) - cpu0


# --------------------------------------------------------------------------- one database


def import_export(data: Path, env: dict[str, str], work: Path) -> float:
    """`mfa-whois import DATA` into the empty index; its seconds."""
    with open(work / "import.log", "a") as log:
        start = time.perf_counter()
        code = subprocess.run([*cli(), "import", str(data)], env=env, cwd=work, stdout=log,
                              stderr=log, check=False).returncode  # fmt: skip
    if code != 0:
        raise RuntimeError(f"the import failed ({code}): see {work}/import.log")
    return time.perf_counter() - start


def audit_rows(url: str) -> int:
    """Lookups the API recorded (read after the server has stopped)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM audit_event WHERE via = 'api'")).scalar()
    engine.dispose()
    return int(rows or 0)


def measure(
    name: str,
    url: str,
    data: Path | None,
    planned: list[Query],
    args: argparse.Namespace,
    work: Path,
    workers: int = 1,
) -> dict[str, Any]:
    """Import (unless `data` is None: already there), serve, warm up, then healthz and lookup
    phases in turns; the summary."""
    env = env_for(url)
    out: dict[str, Any] = {"import_s": None, "workers": workers}
    before = 0 if data is not None else audit_rows(url)  # an earlier run's rows stay
    if data is not None:
        say(f"{name}: importing {data.name}")
        out["import_s"] = round(import_export(data, env, work), 1)
        say(f"  {out['import_s']} s")
    queries = indexed(url, planned)

    def lookup(i: int) -> tuple[bytes, int]:
        query = queries[i % len(queries)]
        return post(query), query.accounts

    def healthz(_i: int) -> tuple[bytes, None]:
        return GET_HEALTHZ, None

    kept: dict[str, list[Sample]] = {"healthz": [], "lookup": []}
    spent = {"healthz": [0.0, 0.0], "lookup": [0.0, 0.0]}
    answered = 0
    with (
        open(work / f"serve-{name}.log", "w") as log,
        serving(env, work, log, workers) as (port, pid),
    ):
        warm = argparse.Namespace(**vars(args) | {"duration": args.warmup})
        samples, _, _ = phase(port, pid, warm, lookup)
        answered += sum(s.status == 200 for s in samples)
        for r in range(args.rounds):
            for kind, request in (("healthz", healthz), ("lookup", lookup)):
                samples, seconds, cpu = phase(port, pid, args, request)
                kept[kind] += samples
                spent[kind][0] += seconds
                spent[kind][1] += cpu
                if kind == "lookup":
                    answered += sum(s.status == 200 for s in samples)
                one = summary(samples, seconds, cpu)
                say(f"  round {r + 1} {kind}: {one['rps']}/s, p50 {one['p50_ms']} ms, "
                    f"p99 {one['p99_ms']} ms")  # fmt: skip
    for kind in kept:
        out[kind] = summary(kept[kind], *spent[kind])
    out["ratio"] = round(out["lookup"]["rps"] / out["healthz"]["rps"], 3)
    rows = audit_rows(url) - before
    out["audit"] = {"answered": answered, "rows": rows, "missing": answered - rows}
    say(f"  lookups/healthz {out['ratio']}; audit rows {rows:,} for {answered:,} lookups")
    return out


# --------------------------------------------------------------------------- report


def markdown(out: dict[str, Any], command: str) -> str:
    """The block for benchmarks/RESULTS.md."""
    header = ("| database | phase | req/s | p50 ms | p95 ms | p99 ms | max ms | non-200 | wrong | "
              "server CPU ms/req |")  # fmt: skip
    lines = [f"### bench_api ({out['date']}, load average {out['loadavg']})", "",
             f"`{command}`", "", header, "|---" * 10 + "|"]  # fmt: skip
    for db in out["databases"]:
        d = out[db]
        for kind in ("healthz", "lookup"):
            p = d[kind]
            lines.append(
                f"| {db} | {'GET /healthz' if kind == 'healthz' else 'POST /api/v1/lookup'} | "
                f"{p['rps']} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} | {p['max_ms']} | "
                f"{p['non_200']} | {p['wrong']} | {p['server_cpu_ms_per_request']} |"
            )
    lines += ["", "| database | lookups / healthz (>= 0.5) | lookup p99 (<= 20 ms) | import s | "
              "audit rows missing |", "|---|---|---|---|---|"]  # fmt: skip
    for db in out["databases"]:
        d = out[db]
        lines.append(
            f"| {db} | {d['ratio']} {'yes' if d['ratio'] >= 0.5 else '**no**'} | "
            f"{d['lookup']['p99_ms']} {'yes' if d['lookup']['p99_ms'] <= 20 else '**no**'} | "
            f"{d['import_s']} | {d['audit']['missing']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the index")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="healthz + lookup turns")
    parser.add_argument("--warmup", type=float, default=3.0, help="uncounted lookups first, s")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL admin URL ('' to skip the PostgreSQL part)",
    )
    parser.add_argument(
        "--pg-workers", type=int, default=2, help="also serve PostgreSQL with N workers (1: no)"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()

    data = synth.write(args.users, synth.export_path(args.users))
    phones, counts = export_numbers(data)
    queries = plan_queries(phones, counts, 5_000)
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "users": args.users,
                           "clients": args.clients, "databases": []}  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="mfa-whois-bench-api-"))
    try:
        if not args.skip_sqlite:
            url = f"sqlite:///{work / 'index.db'}"
            out["sqlite"] = measure("sqlite", url, data, queries, args, work)
            out["databases"].append("sqlite")
        if args.pg:
            url, drop = fresh_pg_database(args.pg)
            try:
                out["postgresql"] = measure("postgresql", url, data, queries, args, work)
                out["databases"].append("postgresql")
                if args.pg_workers > 1:  # the same index, served by several workers
                    name = f"postgresql, {args.pg_workers} workers"
                    out[name] = measure(name, url, None, queries, args, work, args.pg_workers)
                    out["databases"].append(name)
            finally:
                drop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(out, args.json, markdown)


if __name__ == "__main__":
    main()
