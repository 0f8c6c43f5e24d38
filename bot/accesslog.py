"""uvicorn's access log without phone numbers: `?phone=` values and number-like text masked.

`GET /api/v1/lookup?phone=%2B14155550100` is logged as `GET /api/v1/lookup?phone=•••00`: a
query value whose name says it is a number is always masked, and anywhere else in the request
target (path or query) a run of 7 or more digits (separators allowed) is masked too. At most
the last 2 digits stay, enough to tell two requests apart, never enough to call anyone.
`serve` installs the filter before uvicorn starts; its dictConfig keeps a logger's filters.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, unquote_plus

ACCESS_LOGGER = "uvicorn.access"
DOTS = "•••"
SHOWN_DIGITS = 2
MIN_RUN_DIGITS = 7  # shorter digit runs (ids, ports, counts) cannot be a full number
# Query names whose value is a number, whatever it looks like.
_NUMBER_NAMES = re.compile(r"phone|number|msisdn|caller|callee|^(tel|ani|dnis|from|to)$", re.I)
_RUN = re.compile(r"\+?\(?\d(?:[\s().\-/]*\d)+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")  # ISO dates in `since=` and the like stay readable
_DIGIT = re.compile(r"\d")


def hide(text: str) -> str:
    """`•••` and at most the last 2 digits of `text` (none when it has fewer than 7)."""
    digits = "".join(_DIGIT.findall(text))
    return DOTS + (digits[-SHOWN_DIGITS:] if len(digits) >= MIN_RUN_DIGITS else "")


def mask_runs(text: str) -> str:
    """`text` with every run of 7 or more digits (a possible phone number) hidden."""

    def masked(match: re.Match[str]) -> str:
        run = match.group()
        if len(_DIGIT.findall(run)) < MIN_RUN_DIGITS or _DATE.fullmatch(run):
            return run
        return hide(run)

    return _RUN.sub(masked, text)


def mask_target(target: str) -> str:
    """A request target (path and query string) with phone numbers masked; else unchanged."""
    path, question, query = target.partition("?")
    plain = unquote(path)
    hidden = mask_runs(plain)
    parts = [hidden if hidden != plain else path]
    if question:
        parts += ["?", "&".join(_mask_pair(pair) for pair in query.split("&"))]
    return "".join(parts)


def _mask_pair(pair: str) -> str:
    """One `name=value` of a query string, its value masked when it is or holds a number."""
    name, equals, value = pair.partition("=")
    plain = unquote_plus(value)
    if _NUMBER_NAMES.search(unquote_plus(name)) and _DIGIT.search(plain):
        return f"{name}{equals}{hide(plain)}"
    hidden = mask_runs(plain)
    return f"{name}{equals}{hidden}" if hidden != plain else pair


class MaskNumbers(logging.Filter):
    """Masks phone numbers in uvicorn access records (the request target is their 3rd arg)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's request target; never drops a record."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            masked = mask_target(args[2])
            if masked != args[2]:
                record.args = (*args[:2], masked, *args[3:])
        return True


def mask_access_log() -> None:
    """Install MaskNumbers on uvicorn's access logger (once, however often it is called)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, MaskNumbers) for f in logger.filters):
        logger.addFilter(MaskNumbers())
