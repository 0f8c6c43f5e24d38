"""Supervisors' alerts for an actor over the hourly lookup limit: one per incident, no flapping.

An incident opens at an actor's first refused lookup in an hour (Slack or Teams user, API key)
and is over when an hour has passed without a refusal: the limit's own window. Allowed lookups
in between do not end it. The scheduler's `limit_recovery_job` sends the one recovery message
then, whether or not the actor looks anything up again. Without a scheduler, an incident whose
hour is over is closed when the actor is next refused, just before the new alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from jobs.alerts import Alerts
from phoneindex.audit import WINDOW, Allowance, Audit

if TYPE_CHECKING:
    from jobs.schedule import Deps

log = logging.getLogger(__name__)

JOB_LIMITS = "limit-recovery"
LIMITS_EVERY = timedelta(minutes=1)
# How far back the job looks for refusals: covers a scheduler that was down for a while; older
# incidents close at the actor's next refusal.
LOOKBACK = timedelta(hours=6)
KEY_PREFIX = "lookups."


def alert_key(actor: str) -> str:
    """The alert incident of one actor over the limit."""
    return KEY_PREFIX + actor


def who(surface: str, actor: str) -> str:
    """`slack:U123`, `teams:<object id>`, `api:<key name>`: renderers turn it into a mention."""
    return f"{surface}:{actor}"


def limit_alert(surface: str, actor: str, allowance: Allowance) -> tuple[str, str]:
    """Title and text of the alert for an actor over the hourly lookup limit (plain text)."""
    made = f"{allowance.used:,} lookup{'' if allowance.used == 1 else 's'}"
    return (
        "An agent is over the lookup limit",
        f"{who(surface, actor)} made {made} in the last hour (limit {allowance.limit:,}). "
        "Further lookups are refused until enough of them are an hour old; `mfa-whois audit` "
        "lists them.",
    )


def limit_recovered(surface: str, actor: str) -> tuple[str, str]:
    """Title and text when an hour has passed without a refused lookup."""
    return (
        "An agent is back under the lookup limit",
        f"{who(surface, actor)} has had no refused lookup for an hour.",
    )


def over_limit(
    alerts: Alerts, *, surface: str, actor: str, allowance: Allowance, first: bool
) -> None:
    """Alert once per incident; `first`: no refusal in the hour before (an older one is over)."""
    key = alert_key(actor)
    if first:
        alerts.close(key, *limit_recovered(surface, actor))  # nothing when none is open
    alerts.open(key, *limit_alert(surface, actor, allowance), severity="warning")


# This process's latest refusal of an actor, written to the database yet or not.
RecentRefusal = Callable[[str], datetime | None]


def close_finished(
    alerts: Alerts, audit: Audit, now: datetime, recent: RecentRefusal | None = None
) -> int:
    """Send the recovery of every open incident whose actor had no refusal for an hour.

    `recent` tells refusals that still wait to be written (a long write lock): without it a
    recovery could go out mid-incident, then a new alert (the flapping this exists to prevent).
    """
    closed = 0
    for actor, (via, last) in audit.refused_actors(now - LOOKBACK).items():
        pending = recent(actor) if recent is not None else None
        if pending is not None and pending > last:
            last = pending
        if last > now - WINDOW or not alerts.is_open(alert_key(actor)):
            continue
        surface = via.partition("-")[0]  # "slack-live" was refused on Slack
        if alerts.close(alert_key(actor), *limit_recovered(surface, actor)):
            closed += 1
    return closed


def limit_recovery_job(deps: Deps) -> None:
    """Scheduler job: recoveries for over-limit incidents whose hour is over."""
    try:
        audit = Audit(deps.store.engine, clock=deps.store.clock)
        closed = close_finished(deps.alerts, audit, deps.store.clock(), deps.recent_refusal)
    except Exception:
        log.exception("%s failed", JOB_LIMITS)
        return
    if closed:
        log.info("%s: %d over-limit incidents are over", JOB_LIMITS, closed)
