"""Links to an account in the Auth0 dashboard."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlsplit

DASHBOARD = "https://manage.auth0.com/dashboard"
_AUTH0_SUFFIX = ".auth0.com"
# What JavaScript's encodeURIComponent leaves as it is, besides letters, digits and `-_.~`.
_URI_COMPONENT_SAFE = "!*'()"


def tenant_of(domain: str | None) -> tuple[str, str] | None:
    """(region, tenant) of an `*.auth0.com` domain; None for custom domains and local URLs."""
    if not domain:
        return None
    host = urlsplit(domain).hostname if "://" in domain else domain.split("/", 1)[0]
    host = (host or "").lower().rstrip(".")
    if not host.endswith(_AUTH0_SUFFIX):
        return None
    labels = host.removesuffix(_AUTH0_SUFFIX).split(".")
    if len(labels) == 1 and labels[0]:
        return "us", labels[0]
    if len(labels) == 2 and all(labels):
        return labels[1], labels[0]
    return None


def user_link(domain: str | None, user_id: str) -> str | None:
    """The dashboard page of `user_id`, or None when the tenant cannot be told from `domain`."""
    where = tenant_of(domain)
    if where is None:
        return None
    region, tenant = where
    encoded = quote(user_id, safe=_URI_COMPONENT_SAFE)
    key = base64.b64encode(encoded.encode("ascii")).decode("ascii").rstrip("=")
    return f"{DASHBOARD}/{region}/{tenant}/users/{key}"
