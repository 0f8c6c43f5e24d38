"""GET /metrics: Prometheus text format.

Two kinds of numbers: what this process counted (lookups, their latency, Auth0 requests and the
tenant's rate-limit budget: jobs/telemetry.py), and what the database knows, read at scrape time
and cached for SCRAPE_CACHE_S (index size, sync runs by kind and outcome, the age of the last
full sync and of the last log event applied), so every process answers the same for those.
With several worker processes, set PROMETHEUS_MULTIPROC_DIR to an empty directory before they
start: /metrics then adds up every process's counters (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from jobs.runs import Runs
from jobs.telemetry import COLLECTORS
from phoneindex.store import Store

METRICS = "/metrics"
SCRAPE_CACHE_S = 15.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class IndexCollector(Collector):
    """The index and its syncs as the database tells them (cached between scrapes)."""

    def __init__(self, runs: Runs, clock: Callable[[], float] = time.monotonic) -> None:
        self.runs = runs
        self._clock = clock
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not read (and cache) the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        if self._cached is None or now - self._cached[0] > SCRAPE_CACHE_S:
            self._cached = (now, self._read())
        yield from self._cached[1]

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("mfa_whois_database_up", "1 when the database answered the scrape.")
        try:
            status = self.runs.status_document()
            counts = self.runs.counts()
        except SQLAlchemyError:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_index(status), _runs(counts), *_ages(status, self.runs.clock())]


def _index(status: dict[str, Any]) -> list[Metric]:
    accounts = GaugeMetricFamily("mfa_whois_index_accounts", "Accounts in the index.")
    accounts.add_metric([], status["accounts"])
    numbers = GaugeMetricFamily(
        "mfa_whois_index_numbers",
        "Distinct numbers in the index, by kind of link.",
        labels=["kind"],
    )
    for kind, n in sorted(status["numbers"].items()):
        numbers.add_metric([kind], n)
    masked = GaugeMetricFamily(
        "mfa_whois_index_masked_mfa_numbers", "MFA numbers Auth0 answered masked (not indexed)."
    )
    masked.add_metric([], status["masked_mfa_numbers"])
    stale = GaugeMetricFamily("mfa_whois_index_stale", "1 when the index is stale.")
    stale.add_metric([], 1 if status["stale"] else 0)
    running = GaugeMetricFamily("mfa_whois_sync_running", "1 while a sync holds the writer lease.")
    running.add_metric([], 0 if status["running"] is None else 1)
    return [accounts, numbers, masked, stale, running]


def _runs(counts: dict[tuple[str, str], int]) -> Metric:
    family = CounterMetricFamily(
        "mfa_whois_sync_runs",
        "Finished sync runs by kind (full, enrich, incremental) and outcome (succeeded, failed).",
        labels=["kind", "outcome"],
    )
    for (kind, outcome), n in sorted(counts.items()):
        family.add_metric([kind, outcome], n)
    return family


def _ages(status: dict[str, Any], now: datetime) -> list[Metric]:
    full = GaugeMetricFamily(
        "mfa_whois_last_full_sync_age_seconds",
        "Seconds since the data of the last successful full sync (absent before the first).",
    )
    events = GaugeMetricFamily(
        "mfa_whois_last_log_event_age_seconds",
        "Seconds since Auth0 log events are known applied, pulled or pushed (absent before).",
    )
    as_of = _when(status.get("data_as_of"))
    if as_of is not None:
        full.add_metric([], max(0.0, (now - as_of).total_seconds()))
    push = status.get("last_push") or {}
    latest = max(
        (t for t in (_when(status.get("log_checkpoint_at")), _when(push.get("at"))) if t),
        default=None,
    )
    if latest is not None:
        events.add_metric([], max(0.0, (now - latest).total_seconds()))
    return [full, events]


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def registry_for(store: Store) -> CollectorRegistry:
    """This app's registry: the process counters (or every process's) and the index collector."""
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in COLLECTORS:
            registry.register(collector)
    registry.register(IndexCollector(Runs(store.engine, store)))
    return registry


def register(app: FastAPI, store: Store) -> None:
    """Mount GET /metrics."""
    registry = registry_for(store)

    @app.get(METRICS, include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text format; database numbers are cached for SCRAPE_CACHE_S."""
        body = await asyncio.to_thread(generate_latest, registry)
        # The classic text format (0.0.4): every Prometheus version, and the agents, read it.
        return Response(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})
