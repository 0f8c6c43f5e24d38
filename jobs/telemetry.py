"""Process counters for Prometheus (served at GET /metrics by bot/metrics.py).

Created unregistered: each app registers them in its own registry, or, with several worker
processes (PROMETHEUS_MULTIPROC_DIR set before start), prometheus-client writes them to that
directory and /metrics adds up every process's values. Labels are small fixed vocabularies:
never a number, a user id, a key or a key name.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter, Gauge, Histogram

Surface = Literal["slack", "teams", "api", "cli"]
# found: at least one account; none: no account; unusable: not a phone number; refused: the
# asker may not look up; over_limit: the hourly limit; unavailable: the database did not answer.
Outcome = Literal["found", "none", "unusable", "refused", "over_limit", "unavailable"]

LOOKUPS = Counter(
    "mfa_whois_lookups",
    "Lookups asked, by surface and outcome.",
    ["surface", "outcome"],
    registry=None,
)
LOOKUP_SECONDS = Histogram(
    "mfa_whois_lookup_seconds",
    "Time to answer a lookup from the index (live checks not included), by surface.",
    ["surface"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=None,
)
AUTH0_REQUESTS = Counter(
    "mfa_whois_auth0_requests",
    "Management API requests sent, by outcome (ok, client_error, rate_limited, server_error, "
    "transport_error).",
    ["outcome"],
    registry=None,
)
AUTH0_REMAINING = Gauge(
    "mfa_whois_auth0_ratelimit_remaining",
    "Requests left in the tenant's Management API budget (x-ratelimit-remaining), last seen.",
    registry=None,
    multiprocess_mode="mostrecent",
)
AUTH0_LIMIT = Gauge(
    "mfa_whois_auth0_ratelimit_limit",
    "The tenant's Management API budget (x-ratelimit-limit), last seen.",
    registry=None,
    multiprocess_mode="mostrecent",
)

COLLECTORS = (LOOKUPS, LOOKUP_SECONDS, AUTH0_REQUESTS, AUTH0_REMAINING, AUTH0_LIMIT)


def auth0_outcome(status: int | None) -> str:
    """The outcome label of one Management API answer (None: no answer, a transport error)."""
    if status is None:
        return "transport_error"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "client_error" if status >= 400 else "ok"
