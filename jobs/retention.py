"""Audit retention: the scheduler deletes audit rows older than MFA_WHOIS_AUDIT_RETENTION_DAYS.

It runs once when the scheduler starts and then daily, deleting in small batches (one short
write transaction each) so lookups' audit writes and syncs are never held up for long. Rows
still waiting to be written (a long import holding SQLite's write lock, the spool) are written
first; retention applies to them once they are in the table.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from phoneindex.audit import Audit
from phoneindex.db import is_busy

if TYPE_CHECKING:
    from jobs.schedule import Deps

log = logging.getLogger(__name__)

JOB_RETENTION = "audit-retention"
RETENTION_EVERY = timedelta(days=1)


def delete_expired_audit_rows(deps: Deps) -> int:
    """Delete the audit rows older than the retention; how many were deleted."""
    days = deps.settings.audit_retention_days
    cutoff = deps.store.clock() - timedelta(days=days)
    audit = Audit(deps.store.engine, clock=deps.store.clock)
    deleted = audit.delete_before(cutoff, should_stop=deps.should_stop)
    log.info(
        "%s: deleted %d audit rows older than %d days (before %s)",
        JOB_RETENTION,
        deleted,
        days,
        cutoff.isoformat(timespec="seconds"),
    )
    return deleted


def audit_retention_job(deps: Deps) -> None:
    """Scheduler job: apply the audit retention; a busy database is retried at the next run."""
    try:
        delete_expired_audit_rows(deps)
    except Exception as exc:
        if is_busy(exc):
            log.info("%s skipped: busy (another writer holds the database)", JOB_RETENTION)
            return
        log.exception("%s failed", JOB_RETENTION)
