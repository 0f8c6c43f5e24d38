"""Amazon Connect: who is calling? An AWS Lambda (Python 3.11+) that asks mfa-whois.

In the contact flow, add "Invoke AWS Lambda function" (Connect waits 3 s by default, 8 s at most)
and read the answer as external attributes: `$.External.whois_status` (found, none, unusable,
error), `whois_count`, `whois_user_ids`, `whois_emails`, `whois_links`, `whois_stale`,
`whois_last_full_sync`; then "Set contact attributes" for the agent's screen pop. A match is a
routing hint, not proof of identity: the caller id can be spoofed.

Environment: MFA_WHOIS_URL (https://whois.example.com), MFA_WHOIS_API_KEY (the key part of one
`name:key` entry of MFA_WHOIS_API_KEYS; keep it in Secrets Manager or an encrypted variable),
optional MFA_WHOIS_TIMEOUT_S (default 2.0; always kept under the Lambda's remaining time).
Standard library only: paste it as the function's code. It never raises: Connect gets
`whois_status=error` and the flow goes on.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger(__name__)  # Lambda sends it to CloudWatch
MARGIN_S = 0.3  # time kept to build the answer before the Lambda itself times out


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    """Connect's Lambda entry point: a flat map of strings, as Connect requires."""
    endpoint = event.get("Details", {}).get("ContactData", {}).get("CustomerEndpoint") or {}
    caller = str(endpoint.get("Address") or "")  # withheld numbers come empty or "anonymous"
    try:
        status, document = _lookup(caller, _timeout(context))
    except (OSError, ValueError) as exc:  # timeouts, refused connections, a garbled answer
        log.warning("mfa-whois: lookup failed (%s)", type(exc).__name__)  # never the number
        return {"whois_status": "error", "whois_count": "0"}
    if status == 400:
        return {"whois_status": "unusable", "whois_count": "0"}
    if status != 200:
        log.warning("mfa-whois: lookup answered %s", status)
        return {"whois_status": "error", "whois_count": "0"}
    return _attributes(document)


def _timeout(context: Any) -> float:
    wanted = float(os.environ.get("MFA_WHOIS_TIMEOUT_S", "2.0"))
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return wanted
    return max(0.1, min(wanted, remaining() / 1000 - MARGIN_S))


def _lookup(caller: str, timeout: float) -> tuple[int, dict[str, Any]]:
    """POST /api/v1/lookup (the number in the body, never in a URL that proxies log)."""
    request = urllib.request.Request(
        os.environ["MFA_WHOIS_URL"].rstrip("/") + "/api/v1/lookup",
        data=json.dumps({"phone": caller}).encode(),
        headers={
            "Authorization": f"Bearer {os.environ['MFA_WHOIS_API_KEY']}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def _attributes(document: dict[str, Any]) -> dict[str, str]:
    """The lookup document as Connect attributes: every account, joined with commas."""
    accounts = document.get("accounts") or []
    freshness = document.get("freshness") or {}
    return {
        "whois_status": "found" if accounts else "none",
        "whois_count": str(len(accounts)),
        "whois_user_ids": ",".join(a.get("user_id") or "" for a in accounts),
        "whois_emails": ",".join(a.get("email") or "" for a in accounts),
        "whois_links": ",".join(
            "+".join(sorted({p.get("kind", "") for p in a.get("phones") or []})) for a in accounts
        ),
        "whois_stale": "true" if freshness.get("stale") else "false",
        "whois_last_full_sync": str(freshness.get("last_full_sync") or ""),
    }
