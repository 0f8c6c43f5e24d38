"""Block Kit for every Slack surface; no logic beyond layout. Words come from texts.

Limits kept here: at most 50 blocks per message (100 in a Home tab), 3000 characters per text
object, 10 elements per context block, 75 characters per button label.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from bot.slack import ids, texts
from jobs.alerts import Alert
from phoneindex.numbers import mask
from phoneindex.store import iso

if TYPE_CHECKING:
    from bot.answers import Queued, WhoisAnswer

Block = dict[str, Any]
Message = dict[str, Any]

MAX_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
PAGE_SIZE = 10  # accounts per message: 3 blocks each, well under MAX_BLOCKS with the rest
FIELD_CHARS = 200  # a name or email longer than this is cut
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}(?![0-9])")
_SLACK_USER = re.compile(r"\bslack:([UW][A-Z0-9]{2,})\b")


# ---------------------------------------------------------------------------- primitives


def esc(value: object) -> str:
    """Text from the index or Auth0, safe inside mrkdwn (`&`, `<`, `>` escaped)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str) -> str:
    """Any full phone number in `text` masked to its last four digits (alerts, error texts)."""
    return _PHONE.sub(lambda m: mask(m.group(0)), text)


def mentions(text: str) -> str:
    """`slack:U123` (how runs record a Slack requester) as a Slack mention."""
    return _SLACK_USER.sub(lambda m: texts.user(m.group(1)), text)


def section(text: str) -> Block:
    """A mrkdwn section."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text)}}


def context(*lines: str) -> Block:
    """A context block: small grey lines (merged when there are too many)."""
    items = list(lines)
    if len(items) > MAX_CONTEXT_ELEMENTS:
        items = [*items[: MAX_CONTEXT_ELEMENTS - 1], "\n".join(items[MAX_CONTEXT_ELEMENTS - 1 :])]
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(line)} for line in items],
    }


def divider() -> Block:
    """A horizontal rule."""
    return {"type": "divider"}


def header(text: str) -> Block:
    """A header (plain text, at most 150 characters)."""
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150)}}


def button(label: str, action_id: str, value: str, *, primary: bool = False) -> dict[str, Any]:
    """A button; its value carries the E.164 number at most, never account data."""
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(label, 75)},
        "action_id": action_id,
        "value": value,
    }
    if primary:
        element["style"] = "primary"
    return element


def message(text: str) -> Message:
    """A one-section ephemeral message (refusals, usage, confirmations)."""
    return {"response_type": "ephemeral", "text": _plain(text), "blocks": [section(text)]}


# ---------------------------------------------------------------------------- /whois


def whois(answer: WhoisAnswer) -> Message:
    """The ephemeral answer: every account of the current page, freshness, buttons."""
    doc = answer.doc
    accounts: list[dict[str, Any]] = doc["accounts"]
    phone = str(doc["phone"])
    pages = max(1, math.ceil(len(accounts) / PAGE_SIZE))
    page = min(max(answer.page, 0), pages - 1)
    shown = accounts[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    top = texts.matches(phone, len(accounts))
    if pages > 1:
        top += "\n" + texts.page_of(
            page * PAGE_SIZE + 1, page * PAGE_SIZE + len(shown), len(accounts)
        )
    blocks: list[Block] = [section(top)]
    for account in shown:
        blocks += _account(account, answer.links.get(account["user_id"]))
    blocks.append(divider())
    if "live" in doc:
        blocks.append(context(scrub(texts.live_note(_escaped(doc["live"], "error"), answer.live))))
    blocks.append(context(texts.freshness(doc["freshness"])))
    blocks.append(context(texts.IDENTITY_REMINDER if accounts else texts.NO_MATCH_HINT))
    blocks.append(_whois_buttons(phone, bool(accounts), page, pages))
    assert len(blocks) <= MAX_BLOCKS
    fallback = texts.matches(phone, len(accounts)) + ("" if accounts else f". {texts.NO_MATCH}")
    return {"response_type": "ephemeral", "text": _plain(fallback), "blocks": blocks}


def _account(account: dict[str, Any], link: str | None) -> list[Block]:
    name = clip(esc(account.get("name") or ""), FIELD_CHARS)
    email = clip(esc(account.get("email") or ""), FIELD_CHARS)
    user_id = clip(esc(account["user_id"]), FIELD_CHARS)
    title = f"*{name or email or user_id}*"
    if name and email and name != email:
        title += f" · {email}"
    lines = [
        title,
        f"`{user_id}`",
        texts.account_details(
            esc(account.get("connection") or "") or None,
            account.get("last_login"),
            bool(account.get("blocked")),
        ),
    ]
    if link:
        lines.append(f"<{link}|{texts.OPEN_IN_AUTH0}>")
    linked = [texts.linked(_escaped(phone, "identity")) for phone in account["phones"]]
    return [divider(), section("\n".join(lines)), context(*linked)]


def _whois_buttons(phone: str, found: bool, page: int, pages: int) -> Block:
    elements = [
        button(texts.VERIFY_LIVE, ids.VERIFY_LIVE, phone, primary=True)
        if found
        else button(texts.SEARCH_LIVE, ids.SEARCH_LIVE, phone, primary=True)
    ]
    if page > 0:
        elements.append(button(texts.PREVIOUS, ids.PAGE_PREVIOUS, f"{phone} {page - 1}"))
    if page < pages - 1:
        elements.append(button(texts.NEXT, ids.PAGE_NEXT, f"{phone} {page + 1}"))
    return {"type": "actions", "elements": elements}


# ---------------------------------------------------------------------------- /reindex, home


def reindex(answer: Queued) -> Message:
    """What /reindex says once the full sync is queued (or was already)."""
    run = answer.run
    return message(texts.reindex_queued(run) if answer.created else texts.reindex_pending(run))


def status(doc: dict[str, Any]) -> Message:
    """`/reindex status`: runs, index size, freshness, next full sync."""
    blocks = [
        section(f"*{texts.STATUS_TITLE}*\n" + texts.runs(_escaped_runs(doc))),
        section(texts.index_size(doc)),
        context(texts.freshness(doc["freshness"]), texts.schedule(doc)),
    ]
    return {"response_type": "ephemeral", "text": texts.STATUS_TITLE, "blocks": blocks}


def home(doc: dict[str, Any]) -> dict[str, Any]:
    """The App Home tab view."""
    blocks = [
        header(texts.HOME_TITLE),
        section(texts.HOME_HOW),
        divider(),
        section(texts.index_size(doc)),
        context(texts.freshness(doc["freshness"])),
        divider(),
        section(f"*{texts.RUNS_TITLE}*\n" + texts.runs(_escaped_runs(doc))),
        context(texts.schedule(doc)),
    ]
    assert len(blocks) <= MAX_HOME_BLOCKS
    return {"type": "home", "blocks": blocks}


def home_refused() -> dict[str, Any]:
    """The App Home tab for someone who is neither an agent nor an admin: no data."""
    return {"type": "home", "blocks": [header(texts.HOME_TITLE), section(texts.HOME_NOT_YOURS)]}


def _escaped(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """`doc` with its `key` (a value from Auth0: an error text, an identity) safe for mrkdwn."""
    return doc | {key: esc(doc[key])} if doc.get(key) else doc


def _escaped_runs(doc: dict[str, Any]) -> dict[str, Any]:
    """The run documents with their error texts made safe for mrkdwn."""
    out = dict(doc)
    for key in ("running", "queued", "last_full_sync", "last_enrich", "last_incremental_sync"):
        run = doc.get(key)
        if run and run.get("error"):
            out[key] = run | {"error": clip(scrub(esc(run["error"])), 500)}
    return out


def run_report(run: dict[str, Any], summary: dict[str, Any]) -> Message:
    """The direct message telling an admin how their full sync ended."""
    if run.get("error"):
        run = run | {"error": clip(scrub(esc(run["error"])), 1000)}
    text = texts.run_report(run, summary)
    return {"text": _plain(text), "blocks": [section(text)]}


# ---------------------------------------------------------------------------- alerts


def alert(item: Alert) -> Message:
    """A supervisor alert: headline, text, incident and time; no full phone numbers."""
    title = scrub(item.title)
    body = mentions(scrub(esc(item.text)))
    blocks = [
        section(f"{texts.alert_headline(item.severity, esc(title))}\n{body}"),
        context(texts.alert_footer(esc(item.key), iso(item.at))),
    ]
    return {"text": _plain(f"{title}: {scrub(item.text)}"), "blocks": blocks}


def _plain(text: str) -> str:
    """Notification text: no longer than a section."""
    return clip(text)
