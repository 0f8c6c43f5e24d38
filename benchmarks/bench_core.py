"""Phone index core benchmark: import speed and memory, lookup latency, cold CLI start.

    python benchmarks/bench_core.py                  # 1,000,000 users (the issue's target)
    python benchmarks/bench_core.py --users 100000   # quicker
    python benchmarks/bench_core.py --pg postgresql://postgres@127.0.0.1:5432/postgres

Measures, in one run so that the ratios are fair on a noisy shared machine:
- parse-only baseline: gunzip + json.loads of every line (median of --repeat runs);
- `import_export` of the same NDJSON.gz into a fresh SQLite file, in a child process (median
  wall time, peak RSS of the child), and the ratio to the baseline;
- in-process `Store.lookup()` latency (p50/p99) for numbers in the index and misses, on SQLite
  and on PostgreSQL;
- a cold `mfa-whois lookup` process against the SQLite index (median wall time).
Prints a JSON summary and a Markdown block for benchmarks/RESULTS.md.
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
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import synth  # noqa: E402

IMPORT_CHILD = """
import sys, time
from phoneindex.db import open_database
from phoneindex.store import Store
from jobs.exports import import_export
store = Store(open_database(sys.argv[1]))
t = time.perf_counter()
result = import_export(store, sys.argv[2])
elapsed = time.perf_counter() - t
# VmHWM: this process's own peak (ru_maxrss can carry the parent's over fork/exec).
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(elapsed, status, result.users, sum(result.stats.links.values()))
"""


def parse_only(path: Path) -> float:
    """The baseline: gunzip and json.loads every line."""
    start = time.perf_counter()
    with gzip.open(path, "rb") as lines:
        for line in lines:
            json.loads(line)
    return time.perf_counter() - start


def import_once(url: str, path: Path) -> dict[str, float]:
    """Import in a child process; its wall time and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CHILD, url, str(path)],
        capture_output=True, text=True, check=True, cwd=HERE.parent,
    )  # fmt: skip
    elapsed, rss_kib, users, links = done.stdout.split()
    return {
        "seconds": float(elapsed),
        "peak_rss_mb": int(rss_kib) / 1024,
        "users": int(users),
        "links": int(links),
    }


def sample_numbers(path: Path, k: int, seed: int = 3) -> list[str]:
    """Numbers present in the export, for lookups that hit."""
    phones: list[str] = []
    with gzip.open(path, "rb") as lines:
        for line in lines:
            user = json.loads(line)
            if "phone_number" in user:
                phones.append(user["phone_number"])
    return random.Random(seed).sample(phones, min(k, len(phones)))


def lookup_latency(url: str, hits: list[str], n: int) -> dict[str, float]:
    """p50/p99 of Store.lookup over `n` calls, 90% hits and 10% misses."""
    from phoneindex.db import open_database
    from phoneindex.store import Store

    store = Store(open_database(url))
    rnd = random.Random(5)
    queries = [rnd.choice(hits) if rnd.random() < 0.9 else "+15005550006" for _ in range(n)]
    for q in queries[:200]:  # warm the page cache and statement cache
        store.lookup(q)
    times = []
    for q in queries:
        start = time.perf_counter_ns()
        store.lookup(q)
        times.append((time.perf_counter_ns() - start) / 1e6)
    store.engine.dispose()
    times.sort()
    return {
        "p50_ms": times[len(times) // 2],
        "p99_ms": times[int(len(times) * 0.99)],
        "max_ms": times[-1],
    }


def cold_cli(db_path: Path, phone: str, runs: int) -> float:
    """Median wall time of a fresh `mfa-whois lookup` process."""
    exe = shutil.which("mfa-whois")
    cmd = [exe] if exe else [sys.executable, "-m", "bot.cli"]
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_path}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*cmd, "lookup", phone, "--json"], env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fresh_pg_database(admin_url: str) -> tuple[str, Any]:
    """A new empty PostgreSQL database and a function that drops it."""
    from sqlalchemy import create_engine, text

    name = f"mfa_whois_bench_{os.getpid()}"
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL admin URL ('' to skip the PostgreSQL part)",
    )
    args = parser.parse_args()  # fmt: skip

    data = synth.write(args.users, HERE / "data" / f"users-{args.users}.ndjson.gz")
    work = Path(tempfile.mkdtemp(prefix="mfa-whois-bench-"))
    out: dict[str, Any] = {"users": args.users, "file_mb": data.stat().st_size / 1e6}
    try:
        baselines, imports = [], []
        for i in range(args.repeat):
            baselines.append(parse_only(data))
            db = work / f"import-{i}.db"
            imports.append(import_once(f"sqlite:///{db}", data))
            print(f"run {i + 1}: parse {baselines[-1]:.2f}s, import {imports[-1]['seconds']:.2f}s, "
                  f"peak RSS {imports[-1]['peak_rss_mb']:.0f} MB", file=sys.stderr)  # fmt: skip
        base = statistics.median(baselines)
        seconds = statistics.median(r["seconds"] for r in imports)
        out["sqlite_import"] = {
            "parse_only_s": round(base, 2),
            "import_s": round(seconds, 2),
            "ratio": round(seconds / base, 2),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in imports)),
            "links": imports[0]["links"],
        }
        db = work / "import-0.db"
        hits = sample_numbers(data, 5000)
        out["sqlite_lookup"] = lookup_latency(f"sqlite:///{db}", hits, args.lookups)
        out["cold_cli_lookup_s"] = round(cold_cli(db, hits[0], 11), 3)
        if args.pg:
            url, drop = fresh_pg_database(args.pg)
            try:
                pg = import_once(url, data)
                out["pg_import_s"] = round(pg["seconds"], 2)
                out["pg_lookup"] = lookup_latency(url, hits, args.lookups)
            finally:
                drop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
