"""Phone index core benchmark: import speed and memory, lookup latency, cold CLI start.

    python benchmarks/bench_core.py                              # 1,000,000 users, SQLite + PG
    python benchmarks/bench_core.py --users 100000 --pg ''       # quicker, SQLite only
    python benchmarks/bench_core.py --format csv                 # the CSV variant of the export

The export is `benchmarks/synth.py`'s real-shaped one (generated once, cached in
benchmarks/data/). Measures, in one run so that the ratios are fair on a noisy shared machine,
--repeat rounds of:
- two parse-only baselines on the NDJSON export: gunzip + json.loads, gunzip + orjson.loads;
- `import_export` into an empty index (a fresh SQLite file; a fresh PostgreSQL database), in a
  child process (wall time, the child's peak RSS), and then again into that same index (a full
  replace of a populated index, what the nightly reindex does);
then medians, ratios to both baselines, and the worst peak RSS. Afterwards: in-process
`Store.lookup()` latency (p50/p99; 90% hits, 10% misses) on each database, and a cold
`mfa-whois lookup` process against the SQLite index (median of 11).
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


def parse_orjson(path: Path) -> float:
    """The second baseline: gunzip and orjson.loads every line."""
    import orjson

    start = time.perf_counter()
    with gzip.open(path, "rb") as lines:
        for line in lines:
            orjson.loads(line)
    return time.perf_counter() - start


def import_once(url: str, path: Path) -> dict[str, float]:
    """Import in a child process; its wall time and peak RSS."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CHILD, url, str(path)],
        capture_output=True, text=True, check=False, cwd=HERE.parent,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"import failed:\n{done.stderr}")
    elapsed, rss_kib, users, links = done.stdout.split()
    return {
        "seconds": float(elapsed),
        "peak_rss_mb": int(rss_kib) / 1024,
        "users": int(users),
        "links": int(links),
    }


def sample_numbers(path: Path, k: int, seed: int = 3) -> list[str]:
    """Usable numbers present in the (NDJSON) export, for lookups that hit."""
    from phoneindex.numbers import to_e164_or_none

    phones: list[str] = []
    with gzip.open(path, "rb") as lines:
        for line in lines:
            number = json.loads(line).get("phone_number")
            if number and to_e164_or_none(number) == number:
                phones.append(number)
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


def fresh_pg_database(admin_url: str, i: int = 0) -> tuple[str, Any]:
    """A new empty PostgreSQL database and a function that drops it."""
    from sqlalchemy import create_engine, text

    name = f"mfa_whois_bench_{os.getpid()}_{i}"
    admin = create_engine(admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def _round(
    i: int, ndjson: Path, data: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """One round: both baselines, then each database's first import and a full replace."""
    out: dict[str, Any] = {"json": parse_only(ndjson), "orjson": parse_orjson(ndjson)}
    targets: list[tuple[str, str, Any]] = []
    if not args.skip_sqlite:
        targets.append(("sqlite", f"sqlite:///{work / f'import-{i}.db'}", None))
    if args.pg:
        targets.append(("pg", *fresh_pg_database(args.pg, i)))
    for name, url, _drop in targets:
        out[name] = import_once(url, data)
        if not args.no_replace:
            out[f"{name}_replace"] = import_once(url, data)
        out[f"{name}_url"] = url
    note = ", ".join(
        f"{k} {v['seconds']:.2f}s/{v['peak_rss_mb']:.0f}MB" if isinstance(v, dict) else
        f"{k} {v:.2f}s" for k, v in out.items() if not k.endswith("_url")
    )  # fmt: skip
    print(f"round {i + 1}: {note}", file=sys.stderr)
    out["drops"] = [drop for _n, _u, drop in targets if drop is not None]
    return out


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians, ratios to both baselines, peak RSS."""
    base = statistics.median(r["json"] for r in rounds)
    fast = statistics.median(r["orjson"] for r in rounds)
    out: dict[str, Any] = {
        "json_loads_s": round(base, 2),
        "orjson_s": round(fast, 2),
        "runs_json": [round(r["json"], 2) for r in rounds],
    }
    for key in ("sqlite", "sqlite_replace", "pg", "pg_replace"):
        if key not in rounds[0]:
            continue
        runs = [r[key]["seconds"] for r in rounds]
        median = statistics.median(runs)
        out[key] = {
            "median_s": round(median, 2),
            "runs": [round(x, 2) for x in runs],
            "x_json_loads": round(median / base, 2),
            "x_orjson": round(median / fast, 2),
            "peak_rss_mb": round(max(r[key]["peak_rss_mb"] for r in rounds)),
            "users": rounds[0][key]["users"],
            "links": rounds[0][key]["links"],
        }
    return out


def _markdown(out: dict[str, Any]) -> str:
    rows = [
        "| import | median (runs) | x json.loads | x orjson | peak RSS |",
        "|---|---|---|---|---|",
    ]
    labels = {"sqlite": "SQLite, empty index", "sqlite_replace": "SQLite, replace",
              "pg": "PostgreSQL, empty index", "pg_replace": "PostgreSQL, replace"}  # fmt: skip
    for key, label in labels.items():
        if key in out:
            r = out[key]
            runs = ", ".join(f"{x:.1f}" for x in r["runs"])
            rows.append(f"| {label} | {r['median_s']:.2f} s ({runs}) | {r['x_json_loads']:.2f}x | "
                        f"{r['x_orjson']:.2f}x | {r['peak_rss_mb']} MB |")  # fmt: skip
    rows.append(f"\nBaselines (median): gunzip + json.loads {out['json_loads_s']:.2f} s, "
                f"gunzip + orjson {out['orjson_s']:.2f} s.")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--format",
        choices=("ndjson", "csv"),
        default="ndjson",
        help="the export imported (baselines always parse the NDJSON)",
    )
    parser.add_argument(
        "--no-replace", action="store_true", help="skip the second import into the populated index"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-lookups", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL admin URL ('' to skip the PostgreSQL part)",
    )
    args = parser.parse_args()  # fmt: skip

    ndjson = synth.write(args.users, synth.export_path(args.users, "ndjson", args.seed))
    data = synth.write(args.users, synth.export_path(args.users, args.format, args.seed))
    work = Path(tempfile.mkdtemp(prefix="mfa-whois-bench-"))
    out: dict[str, Any] = {"users": args.users, "format": args.format,
                           "file_mb": round(data.stat().st_size / 1e6, 1)}  # fmt: skip
    drops: list[Any] = []
    try:
        rounds = [_round(i, ndjson, data, work, args) for i in range(args.repeat)]
        drops = [d for r in rounds for d in r["drops"]]
        out |= _summary(rounds)
        if not args.skip_lookups:
            hits = sample_numbers(ndjson, 5000)
            last = rounds[-1]
            if "sqlite_url" in last:
                out["sqlite_lookup"] = lookup_latency(last["sqlite_url"], hits, args.lookups)
                db = Path(last["sqlite_url"].removeprefix("sqlite:///"))
                out["cold_cli_lookup_s"] = round(cold_cli(db, hits[0], 11), 3)
            if "pg_url" in last:
                out["pg_lookup"] = lookup_latency(last["pg_url"], hits, args.lookups)
    finally:
        for drop in drops:
            drop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))  # noqa: T201
    print(_markdown(out))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
