"""httpx's request log lines without query strings (phone numbers, signed webhook URLs)."""

from __future__ import annotations

import logging

import httpx


class _RedactQuery(logging.Filter):
    """Drop query strings from httpx's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.copy_with(query=None) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


def redact_httpx_logs() -> None:
    """Install the redacting filter on httpx's logger, once per process (idempotent)."""
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuery) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactQuery())
