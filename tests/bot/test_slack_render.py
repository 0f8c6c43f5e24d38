"""Block Kit limits hold for any answer, and dashboard links follow Auth0's URL scheme."""

from __future__ import annotations

from typing import Any

from bot.answers import WhoisAnswer
from bot.dashboard import tenant_of, user_link
from bot.slack import ids, render
from tests.fake_slack import iter_texts

PHONE = "+14155550100"


def huge_answer(accounts: int, page: int) -> WhoisAnswer:
    phones = [
        {"kind": kind, "method": "sms" if kind == "mfa" else None, "confirmed": True,
         "source": "export", "updated_at": "2026-11-27T09:00:00Z"}
        for kind in ("mfa", "passwordless", "profile") * 4
    ]  # fmt: skip
    doc: dict[str, Any] = {
        "query": PHONE,
        "phone": PHONE,
        "accounts": [
            {
                "user_id": f"auth0|{n:024d}",
                "email": "e" * 3000 + "@example.com",
                "name": "<N&me>" * 600,
                "connection": "c" * 5000,
                "blocked": n % 2 == 0,
                "created_at": None,
                "last_login": None,
                "phones": phones,
            }
            for n in range(accounts)
        ],  # fmt: skip
        "freshness": {"last_full_sync": None, "last_update": None, "stale": True},
    }
    links = {
        a["user_id"]: user_link("acme.eu.auth0.com", a["user_id"]) or "" for a in doc["accounts"]
    }
    return WhoisAnswer(doc, links, page)


def test_every_page_stays_within_block_kit_limits() -> None:
    seen_ids: set[str] = set()
    for page in range(13):
        message = render.whois(huge_answer(123, page))
        blocks = message["blocks"]
        assert len(blocks) <= render.MAX_BLOCKS
        assert all(len(text) <= render.MAX_TEXT for text in iter_texts(blocks))
        assert all(len(b.get("elements", [])) <= 10 for b in blocks if b["type"] == "context")
        assert len(message["text"]) <= render.MAX_TEXT
        shown = [t for t in iter_texts(blocks) if t.startswith("*&lt;N&amp;me&gt;")]
        assert len(shown) == (3 if page == 12 else 10)
        seen_ids |= {t.split("`")[1] for t in iter_texts(blocks) if "`auth0|" in t}
        values = [e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
        assert all(v.split(" ")[0] == PHONE and len(v) < 30 for v in values)
    assert len(seen_ids) == 123  # no cap: every account is on some page


def test_page_buttons_at_the_ends() -> None:
    def actions(page: int) -> list[str]:
        blocks = render.whois(huge_answer(25, page))["blocks"]
        return [e["action_id"] for e in blocks[-1]["elements"]]

    assert actions(0) == [ids.VERIFY_LIVE, ids.PAGE_NEXT]
    assert actions(1) == [ids.VERIFY_LIVE, ids.PAGE_PREVIOUS, ids.PAGE_NEXT]
    assert actions(2) == [ids.VERIFY_LIVE, ids.PAGE_PREVIOUS]
    assert actions(99) == [ids.VERIFY_LIVE, ids.PAGE_PREVIOUS]  # a stale page: the last one


def test_dashboard_links() -> None:
    assert user_link("acme.us.auth0.com", "auth0|61ec") == (
        "https://manage.auth0.com/dashboard/us/acme/users/YXV0aDAlN0M2MWVj"
    )
    assert tenant_of("acme.auth0.com") == ("us", "acme")
    assert tenant_of("https://acme.eu.auth0.com/") == ("eu", "acme")
    assert tenant_of("ACME.jp.Auth0.com") == ("jp", "acme")
    for custom in ("login.acme.com", "http://127.0.0.1:8080", "", None, "a.b.c.auth0.com"):
        assert tenant_of(custom) is None
    assert user_link("login.acme.com", "auth0|61ec") is None
    link = user_link("acme.auth0.com", "google-oauth2|1 2")
    assert link is not None and "=" not in link.rsplit("/", 1)[1]


def test_auth0_values_in_linked_lines_and_live_notes_are_escaped() -> None:
    phone = {"kind": "passwordless", "method": None, "confirmed": True, "source": "export",
             "updated_at": None, "identity": "sms|<!here>&x"}  # fmt: skip
    doc = huge_answer(1, 0).doc
    doc["accounts"][0]["phones"] = [phone]
    doc["live"] = {"checked": 1, "errors": 1, "error": "<!channel> & co"}
    seen = "\n".join(iter_texts(render.whois(WhoisAnswer(doc, live="verify"))["blocks"]))
    assert "of the linked identity `sms|&lt;!here&gt;&amp;x`" in seen
    assert "1 not checked (&lt;!channel&gt; &amp; co)" in seen
    assert "<!here>" not in seen and "<!channel>" not in seen
