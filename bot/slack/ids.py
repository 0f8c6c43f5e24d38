"""Identifiers shared by the manifest, the listeners and the Block Kit renderer."""

from __future__ import annotations

WHOIS = "/whois"
REINDEX = "/reindex"
COMMANDS = (WHOIS, REINDEX)

VERIFY_LIVE = "whois_verify_live"
SEARCH_LIVE = "whois_search_live"
PAGE_PREVIOUS = "whois_page_previous"
PAGE_NEXT = "whois_page_next"
ACTIONS = (VERIFY_LIVE, SEARCH_LIVE, PAGE_PREVIOUS, PAGE_NEXT)

HOME_OPENED = "app_home_opened"
EVENTS = (HOME_OPENED,)
