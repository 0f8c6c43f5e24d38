"""A full replace (stage, merge into fresh tables, swap) keeps every rule of the index."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from phoneindex.changes import (
    AccountSeen,
    MfaPhone,
    MfaPhonesReplaced,
    PhoneLinked,
    RefetchRequested,
    mfa_key,
)
from phoneindex.fullload import ExportedAccount, Listing, utc_text
from phoneindex.models import account_table
from phoneindex.store import Store
from tests.conftest import T0

PHONE = "+14155550100"
OTHER = "+442079460958"
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
MFA_AT = datetime(2026, 5, 1, 8, 30, 15, 123000, tzinfo=UTC)


def export(*users: tuple[str, str | None], at: datetime = T0) -> list[Listing]:
    out: list[Listing] = []
    for user_id, phone in users:
        out.append(AccountSeen(user_id, at, email=f"{user_id}@example.com"))
        if phone:
            out.append(PhoneLinked(user_id, phone, "profile", "export", at))
    return out


def account_row(engine: Engine, user_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(account_table).where(account_table.c.user_id == user_id)
        ).one_or_none()


def users_of(store: Store, phone: str = PHONE) -> list[str]:
    return sorted(a["user_id"] for a in store.lookup(phone)["accounts"])


def test_enrichment_bookkeeping_of_remaining_accounts_survives(
    store: Store, engine: Engine
) -> None:
    key = mfa_key(("guardian",), MFA_AT)
    mfa = AccountSeen("auth0|1", T0, multifactor=("guardian",), multifactor_last_modified=MFA_AT)
    first = [mfa, AccountSeen("auth0|2", T0)]
    store.replace_export(first, T0)
    store.apply([MfaPhonesReplaced("auth0|1", (MfaPhone(OTHER, "sms", True),), T0, masked=1,
                                   fetched_key=key),
                 RefetchRequested("auth0|2", T1)])  # fmt: skip
    assert [t.user_id for t in store.enrich_candidates()] == ["auth0|2"]

    # The nightly export, in the export path's own form (timestamps as stored text).
    store.replace_export(
        [
            ExportedAccount(
                "auth0|1",
                T2,
                multifactor=("guardian",),
                multifactor_last_modified=utc_text("2026-05-01T08:30:15.123Z"),
            ),
            ExportedAccount("auth0|2", T2),
        ],  # fmt: skip
        T2,
    )

    one = account_row(engine, "auth0|1")
    assert (one.mfa_fetched_key, one.mfa_fetched_at, one.mfa_masked) == (key, T0, 1)
    assert account_row(engine, "auth0|2").refetch_requested_at == T1
    # Same MFA state as when its numbers were read: nothing to read again but the queued one.
    assert [t.user_id for t in store.enrich_candidates()] == ["auth0|2"]
    assert users_of(store, OTHER) == ["auth0|1"]
    assert store.summary()["masked_mfa_numbers"] == 1


def test_facts_observed_after_the_snapshot_are_kept(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE)), T0)
    # A live check at T2 saw a new email and a second number; the log saw a confirmation.
    store.apply([AccountSeen("auth0|1", T2, email="live@example.com"),
                 PhoneLinked("auth0|1", OTHER, "profile", "live", T2, None, True)])  # fmt: skip

    stats = store.replace_export(export(("auth0|1", PHONE), at=T1), T1)  # snapshot before T2

    [acc] = store.lookup(OTHER)["accounts"]
    assert acc["email"] == "live@example.com"
    assert acc["phones"][0]["source"] == "live" and acc["phones"][0]["confirmed"] is True
    assert users_of(store) == ["auth0|1"]
    assert stats.accounts_removed == 0 and stats.links_removed == 0


def test_accounts_and_numbers_gone_from_the_export_are_counted(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE), ("auth0|2", PHONE), ("auth0|3", None)), T0)
    stats = store.replace_export(export(("auth0|1", None), ("auth0|3", OTHER), at=T1), T1)
    assert (stats.accounts_seen, stats.accounts_removed, stats.links_removed) == (2, 1, 2)
    assert stats.links == {"profile": 1}
    assert users_of(store) == [] and users_of(store, OTHER) == ["auth0|3"]


def test_the_last_listing_of_an_account_wins(store: Store) -> None:
    listings: list[Listing] = [
        AccountSeen("auth0|1", T0, email="first@example.com"),
        PhoneLinked("auth0|1", PHONE, "profile", "export", T0, None, False),
        AccountSeen("auth0|2", T0),
        AccountSeen("auth0|1", T0, email="second@example.com"),
        PhoneLinked("auth0|1", PHONE, "profile", "export", T0, None, True),
    ]
    stats = store.replace_export(listings, T0, batch_size=2)
    [acc] = store.lookup(PHONE)["accounts"]
    assert acc["email"] == "second@example.com" and acc["phones"][0]["confirmed"] is True
    assert store.summary()["accounts"] == 2
    assert stats.accounts_removed == 0


def test_a_number_listed_without_its_account_keeps_or_creates_the_account(store: Store) -> None:
    store.replace_export(export(("auth0|1", None)), T0)
    store.replace_export([PhoneLinked("auth0|1", PHONE, "profile", "export", T1),
                          PhoneLinked("auth0|9", PHONE, "profile", "export", T1)], T1)  # fmt: skip
    doc = store.lookup(PHONE)
    assert {a["user_id"]: a["email"] for a in doc["accounts"]} == {
        "auth0|1": "auth0|1@example.com",
        "auth0|9": None,
    }


def test_lookups_answer_from_the_old_index_while_the_export_is_staged(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE)), T0)
    during: list[list[str]] = []

    listings = export(("auth0|1", None), *[(f"auth0|x{i}", PHONE) for i in range(6)], at=T1)
    store.replace_export(
        listings, T1, batch_size=2, on_batch=lambda _s: during.append(users_of(store))
    )

    assert during and all(seen == ["auth0|1"] for seen in during)  # nothing half-written
    assert users_of(store) == [f"auth0|x{i}" for i in range(6)]


def test_postgresql_changes_applied_while_the_export_is_staged_survive(
    store: Store, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite: an import holds the write lock, other writers wait for its commit")
    store.replace_export(export(("auth0|1", PHONE)), T0)

    def meanwhile(_stats: object) -> None:
        if len(users_of(store)) == 1:  # a log event while the import reads its file
            link = PhoneLinked("auth0|new", PHONE, "mfa", "logs", T2, "sms", True)
            store.apply([AccountSeen("auth0|new", T2), link])

    listings = export(("auth0|1", None), *[(f"auth0|x{i}", PHONE) for i in range(6)], at=T1)
    store.replace_export(listings, T1, batch_size=2, on_batch=meanwhile)

    assert users_of(store) == ["auth0|new", *[f"auth0|x{i}" for i in range(6)]]


def test_a_failed_replace_leaves_nothing_behind(store: Store, engine: Engine) -> None:
    store.replace_export(export(("auth0|1", PHONE)), T0)
    before = store.lookup(PHONE)

    def broken() -> Iterator[Listing]:
        yield from export(*[(f"auth0|x{i}", OTHER) for i in range(30)], at=T1)
        raise ValueError("line 31 is malformed")

    with pytest.raises(ValueError):
        store.replace_export(broken(), T1, batch_size=10)

    assert store.lookup(PHONE) == before and users_of(store, OTHER) == []
    tables = set(inspect(engine).get_table_names())
    assert not {t for t in tables if t.endswith("_new") or t.startswith("stage_")}
    store.replace_export(export(("auth0|2", OTHER), at=T1), T1)  # the next one works
    assert users_of(store, OTHER) == ["auth0|2"] and users_of(store) == []


def test_the_swapped_tables_are_the_models_tables(store: Store, engine: Engine) -> None:
    for at in (T0, T1):
        store.replace_export(export(("auth0|1", PHONE), at=at), at)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        insp = inspect(conn)
        indexes = {i["name"] for t in ("account", "phone_link") for i in insp.get_indexes(t)}
        pk = insp.get_pk_constraint("account")
    assert diff == []
    assert {"ix_phone_link_user_id", "ix_account_refetch_requested_at"} <= indexes
    if engine.dialect.name == "postgresql":
        assert pk["name"] == "account_pkey"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2024-03-05T11:22:33.456Z", "2024-03-05T11:22:33.456000+00:00"),
        ("2024-03-05T11:22:33Z", "2024-03-05T11:22:33.000000+00:00"),
        ("2024-03-05T13:22:33.456+02:00", "2024-03-05T11:22:33.456000+00:00"),
        ("2024-03-05T11:22:33.456789+00:00", "2024-03-05T11:22:33.456789+00:00"),
    ],
)
def test_timestamps_are_stored_in_one_text_form(given: str, stored: str) -> None:
    assert utc_text(given) == stored
    assert datetime.fromisoformat(stored) == datetime.fromisoformat(given)


@pytest.mark.parametrize("bad", ["2024-03-05T11:22:33", "yesterday", "2024-13-05T11:22:33.456Z"])
def test_a_timestamp_without_a_zone_or_not_one_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        utc_text(bad)


def test_lookups_before_and_after_a_swap_on_the_same_connections(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE)), T0)
    for _ in range(8):  # enough for drivers to prepare the lookup statement server-side
        assert users_of(store) == ["auth0|1"]
    store.replace_export(export(("auth0|2", PHONE), at=T1), T1)
    for _ in range(3):
        assert users_of(store) == ["auth0|2"]


def test_listings_older_than_the_snapshot_are_swept_with_their_numbers(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE)), T0)
    store.apply([AccountSeen("auth0|2", T2), PhoneLinked("auth0|2", OTHER, "profile", "logs", T2)])
    # Listings observed before the snapshot they claim: no fresher than what the sweep removes.
    store.replace_export([*export(("auth0|1", PHONE)), *export(("auth0|3", OTHER))], T1)
    assert users_of(store) == []
    assert users_of(store, OTHER) == ["auth0|2"]
    assert store.summary()["accounts"] == 1
