"""Adaptive Cards (version 1.5) and messages for every Teams surface; no logic beyond layout.

Values from the index or Auth0 (names, emails, ids, connections) go into RichTextBlock text
runs, which Teams shows as plain text, never into markdown. Buttons are Action.Execute: a
click comes back as an `adaptiveCard/action` invoke carrying `verb` and `data` (the E.164
number and a page at most, never account data).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from bot.teams import texts
from jobs.alerts import Alert
from phoneindex.numbers import mask
from phoneindex.store import iso

if TYPE_CHECKING:
    from bot.answers import Queued, WhoisAnswer

Card = dict[str, Any]
Element = dict[str, Any]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
PAGE_SIZE = 10
FIELD_CHARS = 200
VERB_PAGE = "whois.page"
VERB_VERIFY = "whois.verify"
VERB_SEARCH = "whois.search"
VERBS = frozenset({VERB_PAGE, VERB_VERIFY, VERB_SEARCH})
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}(?![0-9])")


# ---------------------------------------------------------------------------- primitives


def clip(text: str, limit: int = FIELD_CHARS) -> str:
    """`text` cut to `limit` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scrub(text: str) -> str:
    """Any full phone number in `text` masked to its last four digits."""
    return _PHONE.sub(lambda m: mask(m.group(0)), text)


def card(body: list[Element], actions: list[Element] | None = None) -> Card:
    """An Adaptive Card 1.5."""
    out: Card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
    }
    if actions:
        out["actions"] = actions
    return out


def text(words: str, *, subtle: bool = False, size: str | None = None) -> Element:
    """A wrapped TextBlock of our own words (markdown)."""
    block: Element = {"type": "TextBlock", "text": words, "wrap": True}
    if subtle:
        block |= {"isSubtle": True, "size": "Small"}
    if size:
        block["size"] = size
    return block


def run(value: object, *, bold: bool = False, mono: bool = False) -> Element:
    """A plain-text run (no markdown) for a value from the index or Auth0."""
    out: Element = {"type": "TextRun", "text": clip(str(value))}
    if bold:
        out["weight"] = "Bolder"
    if mono:
        out["fontType"] = "Monospace"
    return out


def rich(*runs: Element) -> Element:
    """A RichTextBlock of runs."""
    return {"type": "RichTextBlock", "inlines": list(runs)}


def execute(title: str, verb: str, data: dict[str, Any], *, primary: bool = False) -> Element:
    """An Action.Execute button."""
    action: Element = {"type": "Action.Execute", "title": title, "verb": verb, "data": data}
    if primary:
        action["style"] = "positive"
    return action


def attachment(content: Card) -> dict[str, Any]:
    """A card as a message attachment."""
    return {"contentType": CARD_CONTENT_TYPE, "content": content}


def message(words: str) -> dict[str, Any]:
    """A plain message activity (refusals, usage, confirmations)."""
    return {"type": "message", "textFormat": "markdown", "text": words}


def card_message(content: Card, summary: str) -> dict[str, Any]:
    """A message activity carrying one card."""
    return {"type": "message", "summary": summary, "attachments": [attachment(content)]}


# ---------------------------------------------------------------------------- whois


def whois(answer: WhoisAnswer) -> Card:
    """The answer card: every account of the current page, freshness, buttons."""
    doc = answer.doc
    accounts: list[dict[str, Any]] = doc["accounts"]
    phone = str(doc["phone"])
    pages = max(1, math.ceil(len(accounts) / PAGE_SIZE))
    page = min(max(answer.page, 0), pages - 1)
    shown = accounts[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    body: list[Element] = [text(texts.matches(phone, len(accounts)), size="Medium")]
    if pages > 1:
        first = page * PAGE_SIZE + 1
        body.append(text(texts.page_of(first, first + len(shown) - 1, len(accounts))))
    for account in shown:
        body.append(_account(account, answer.links.get(account["user_id"])))
    footer = [text(texts.freshness(doc["freshness"]), subtle=True)]
    if "live" in doc:
        footer.insert(0, text(texts.live_note(doc["live"], answer.live), subtle=True))
    footer.append(text(texts.IDENTITY_REMINDER if accounts else texts.NO_MATCH_HINT, subtle=True))
    body.append({"type": "Container", "separator": True, "items": footer})
    return card(body, _buttons(phone, bool(accounts), page, pages))


def summary(answer: WhoisAnswer) -> str:
    """The notification line of an answer (the number is the agent's own query)."""
    count = len(answer.doc["accounts"])
    return texts.matches(str(answer.doc["phone"]), count).replace("**", "")


def _account(account: dict[str, Any], link: str | None) -> Element:
    name, email = account.get("name") or "", account.get("email") or ""
    title = [run(name or email or account["user_id"], bold=True)]
    if name and email and name != email:
        title.append(run(f" · {email}"))
    items: list[Element] = [
        rich(*title),
        rich(run(account["user_id"], mono=True)),
        rich(run("Connection: "), run(account.get("connection") or texts.UNKNOWN)),
        text(texts.login(account.get("last_login"), bool(account.get("blocked")))),
    ]
    if link:
        items.append(text(f"[{texts.OPEN_IN_AUTH0}]({link})"))
    for phone in account["phones"]:
        items.append(text(texts.linked(phone), subtle=True))
        if phone.get("identity"):
            items.append(rich(run("of the linked identity "), run(phone["identity"], mono=True)))
    return {"type": "Container", "separator": True, "items": items}


def _buttons(phone: str, found: bool, page: int, pages: int) -> list[Element]:
    actions = [
        execute(texts.VERIFY_LIVE, VERB_VERIFY, {"phone": phone}, primary=True)
        if found
        else execute(texts.SEARCH_LIVE, VERB_SEARCH, {"phone": phone}, primary=True)
    ]
    if page > 0:
        actions.append(execute(texts.PREVIOUS, VERB_PAGE, {"phone": phone, "page": page - 1}))
    if page < pages - 1:
        actions.append(execute(texts.NEXT, VERB_PAGE, {"phone": phone, "page": page + 1}))
    return actions


def checking(phone: str) -> Card:
    """What a card shows while a live check runs (the result replaces it)."""
    return card([text(f"**{phone}**", size="Medium"), text(texts.CHECKING)])


# ---------------------------------------------------------------------------- reindex


def reindex(answer: Queued) -> dict[str, Any]:
    """What `reindex` says once the full sync is queued (or was already)."""
    run_doc = answer.run
    words = texts.reindex_queued(run_doc) if answer.created else texts.reindex_pending(run_doc)
    return message(words)


def status(doc: dict[str, Any]) -> dict[str, Any]:
    """`reindex status` as a card."""
    body = [text(f"**{texts.STATUS_TITLE}**", size="Medium")]
    body += [text(line) for line in texts.status_lines(doc)]
    return card_message(card(body), texts.STATUS_TITLE)


# ---------------------------------------------------------------------------- alerts


def alert(item: Alert) -> Card:
    """A supervisor alert: headline, text, incident and time; no full phone numbers."""
    return card(
        [
            rich(run(texts.alert_headline(item.severity, clip(scrub(item.title), 300)), bold=True)),
            rich({"type": "TextRun", "text": clip(scrub(item.text), 2000)}),
            text(texts.alert_footer(scrub(item.key), iso(item.at)), subtle=True),
        ]
    )
