"""The index's one write path and one read path, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from phoneindex.changes import (
    AccountDeleted,
    AccountSeen,
    Change,
    EnrollmentRemoved,
    MfaPhone,
    MfaPhonesReplaced,
    PhoneLinked,
    PhoneUnlinked,
    ProfilePhone,
    ProfilePhonesReplaced,
    RefetchRequested,
)
from phoneindex.store import LAST_FULL_SYNC, Store
from tests.conftest import T0, Clock

PHONE = "+14155550100"
OTHER = "+442079460958"
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
MINUTE = timedelta(minutes=1)


def users_of(store: Store, phone: str = PHONE) -> list[str]:
    return [a["user_id"] for a in store.lookup(phone)["accounts"]]


def links_of(store: Store, user_id: str, phone: str = PHONE) -> list[tuple[str, str]]:
    for acc in store.lookup(phone)["accounts"]:
        if acc["user_id"] == user_id:
            return [(p["kind"], p["source"]) for p in acc["phones"]]
    return []


def export(*users: tuple[str, str | None, str], at=T0) -> list[Change]:  # type: ignore[no-untyped-def]
    """Changes an export would produce: (user_id, phone or None, kind)."""
    out: list[Change] = []
    for user_id, phone, kind in users:
        out.append(AccountSeen(user_id, at, email=f"{user_id}@example.com", name=user_id))
        if phone:
            out.append(PhoneLinked(user_id, phone, kind, "export", at))  # type: ignore[arg-type]
    return out


def test_lookup_lists_every_account_sharing_a_number(store: Store) -> None:
    store.replace_export(
        export(
            ("sms|1", PHONE, "passwordless"),
            ("auth0|2", PHONE, "profile"),
            ("auth0|3", OTHER, "profile"),
        ),
        T0,
    )
    store.apply([MfaPhonesReplaced("auth0|4", (MfaPhone(PHONE, "voice", True),), T1)])

    doc = store.lookup(PHONE, query="(415) 555-0100")

    assert doc["query"] == "(415) 555-0100"
    assert doc["phone"] == PHONE
    assert sorted(a["user_id"] for a in doc["accounts"]) == ["auth0|2", "auth0|4", "sms|1"]
    kinds = {a["user_id"]: a["phones"][0] for a in doc["accounts"]}
    assert kinds["sms|1"]["kind"] == "passwordless"
    assert kinds["auth0|2"] == {
        "kind": "profile", "method": None, "confirmed": None, "source": "export",
        "updated_at": "2026-11-27T09:00:00Z", "identity": None,
    }  # fmt: skip
    assert kinds["auth0|4"]["method"] == "voice" and kinds["auth0|4"]["source"] == "authenticators"
    assert set(doc["freshness"]) == {"last_full_sync", "last_update", "stale"}


def test_a_miss_is_an_empty_document_with_freshness(store: Store) -> None:
    doc = store.lookup("+15005550006")
    assert doc["accounts"] == []
    assert doc["freshness"] == {"last_full_sync": None, "last_update": None, "stale": True}


def test_freshness_follows_the_last_full_sync(store: Store, clock: Clock) -> None:
    store.set_checkpoint(LAST_FULL_SYNC, "2026-11-27T09:00:00Z")
    assert store.freshness()["stale"] is False
    clock.advance(hours=27)
    assert store.freshness()["stale"] is True


def test_older_profile_never_overwrites_newer(store: Store) -> None:
    store.apply([AccountSeen("auth0|1", T2, email="new@example.com")])
    store.apply([AccountSeen("auth0|1", T1, email="old@example.com")])
    store.apply([PhoneLinked("auth0|1", PHONE, "profile", "logs", T0)])
    assert store.lookup(PHONE)["accounts"][0]["email"] == "new@example.com"


def _batches() -> list[list[Change]]:
    return [
        [AccountSeen("auth0|1", T0, name="One"),
         PhoneLinked("auth0|1", PHONE, "mfa", "logs", T0, "sms", True)],
        [PhoneUnlinked("auth0|1", PHONE, "mfa", "logs", T1), AccountSeen("auth0|2", T1)],
        [PhoneLinked("auth0|2", PHONE, "mfa", "logs", T2, "voice", False)],
    ]  # fmt: skip


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 0, 1, 2, 1)])
def test_batches_in_any_order_or_twice_give_the_same_index(
    store: Store, order: tuple[int, ...]
) -> None:
    batches = _batches()
    for i in order:
        store.apply(batches[i])
    doc = store.lookup(PHONE)
    assert [a["user_id"] for a in doc["accounts"]] == ["auth0|2"]
    assert doc["accounts"][0]["phones"][0]["method"] == "voice"


@pytest.mark.parametrize("order", [(0, 1), (1, 0), (0, 1, 0, 1)])
def test_a_later_event_that_does_not_know_keeps_confirmed(
    store: Store, order: tuple[int, ...]
) -> None:
    events = [
        [PhoneLinked("auth0|1", PHONE, "mfa", "authenticators", T0, "sms", True)],
        [PhoneLinked("auth0|1", PHONE, "mfa", "logs", T1, "sms", None)],  # an SMS was sent
    ]
    for i in order:
        store.apply(events[i])
    [phone] = store.lookup(PHONE)["accounts"][0]["phones"]
    assert (phone["confirmed"], phone["source"]) == (True, "logs")
    assert phone["updated_at"] == "2026-11-27T10:00:00Z"
    store.apply([PhoneLinked("auth0|1", PHONE, "mfa", "authenticators", T2, "sms", False)])
    assert store.lookup(PHONE)["accounts"][0]["phones"][0]["confirmed"] is False


def test_an_mfa_read_replaces_the_accounts_mfa_numbers(store: Store) -> None:
    store.apply(
        [
            MfaPhonesReplaced(
                "auth0|1", (MfaPhone(PHONE, "sms", True), MfaPhone(OTHER, "sms", True)), T0
            )
        ]
    )
    store.apply([MfaPhonesReplaced("auth0|1", (MfaPhone(OTHER, "voice", True),), T1)])

    assert users_of(store, PHONE) == []
    assert store.lookup(OTHER)["accounts"][0]["phones"][0]["method"] == "voice"
    # A late, older read changes nothing.
    store.apply([MfaPhonesReplaced("auth0|1", (MfaPhone(PHONE, "sms", True),), T0)])
    assert users_of(store, PHONE) == []


def test_a_read_with_masked_numbers_keeps_the_numbers_it_cannot_see(store: Store) -> None:
    store.apply([PhoneLinked("auth0|1", PHONE, "mfa", "logs", T0, "sms", True)])
    store.apply([MfaPhonesReplaced("auth0|1", (), T1, masked=1)])
    assert users_of(store) == ["auth0|1"]
    assert store.summary()["masked_mfa_numbers"] == 1


def test_a_deleted_account_disappears_and_stays_gone(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE, "profile"), ("auth0|2", PHONE, "profile")), T0)
    store.apply([AccountDeleted("auth0|1", T1)])
    assert users_of(store) == ["auth0|2"]
    store.apply([AccountSeen("auth0|1", T0, email="late@example.com")])  # replayed, older
    assert users_of(store) == ["auth0|2"]
    assert store.summary()["accounts"] == 1


def test_import_replaces_accounts_and_export_numbers_but_keeps_mfa(store: Store) -> None:
    store.replace_export(
        export(("auth0|1", PHONE, "profile"), ("auth0|2", OTHER, "profile"),
               ("sms|3", PHONE, "passwordless")),
        T0,
    )  # fmt: skip
    store.apply([MfaPhonesReplaced("auth0|1", (MfaPhone(OTHER, "sms", True),), T0)])
    store.apply([MfaPhonesReplaced("auth0|2", (MfaPhone(PHONE, "sms", True),), T0)])

    # Next export: auth0|1 dropped its profile number, auth0|2 is gone, sms|3 unchanged.
    stats = store.replace_export(
        export(("auth0|1", None, ""), ("sms|3", PHONE, "passwordless"), at=T2), T2
    )

    assert stats.accounts_removed == 1
    assert users_of(store, PHONE) == ["sms|3"]
    assert users_of(store, OTHER) == ["auth0|1"]  # its MFA number survived the import
    assert links_of(store, "auth0|1", OTHER) == [("mfa", "authenticators")]
    assert store.summary() == {
        "accounts": 2,
        "numbers": {"mfa": 1, "passwordless": 1, "profile": 0},
        "masked_mfa_numbers": 0,
        "failing_reads": 0,
    }


def test_import_keeps_what_other_sources_saw_after_the_snapshot(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE, "profile")), T0)
    # A user registered (seen by an Action) while the next export job was running.
    store.apply([AccountSeen("auth0|new", T2, email="new@example.com"),
                 PhoneLinked("auth0|new", PHONE, "profile", "action", T2)])  # fmt: skip
    store.replace_export(export(("auth0|1", PHONE, "profile"), at=T1), T1)
    assert sorted(users_of(store)) == ["auth0|1", "auth0|new"]


def test_a_failing_import_changes_nothing(store: Store) -> None:
    store.replace_export(export(("auth0|1", PHONE, "profile")), T0)
    before = store.lookup(PHONE)

    def broken() -> Iterator[Change]:
        yield from export(*[(f"auth0|x{i}", OTHER, "profile") for i in range(30)], at=T1)
        raise ValueError("line 31 is malformed")

    with pytest.raises(ValueError):
        store.replace_export(broken(), T1, batch_size=10)

    assert store.lookup(PHONE) == before
    assert users_of(store, OTHER) == []


def queued(store: Store, due_at: datetime | None = None) -> list[str]:
    return [t.user_id for t in store.refetch_queue(due_at=due_at)]


def test_refetch_requests_queue_until_a_whole_account_read_answers_them(store: Store) -> None:
    mfa = AccountSeen("auth0|1", T0, multifactor=("guardian",), multifactor_last_modified=T0)
    store.apply([mfa, RefetchRequested("auth0|1", T1)])
    assert queued(store) == ["auth0|1"]
    # An MFA-only read (the walk of changed `multifactor`) does not re-read the profile.
    store.apply([MfaPhonesReplaced("auth0|1", (), T2)])
    assert queued(store) == ["auth0|1"]
    # The user object read at T2 as well: the request is answered.
    store.apply([mfa._replace(observed_at=T2), ProfilePhonesReplaced("auth0|1", (), T2)])
    assert queued(store) == []
    # A late request older than that read is answered already; a newer one queues again.
    store.apply([RefetchRequested("auth0|1", T1 + timedelta(minutes=1))])
    assert queued(store) == []
    store.apply([RefetchRequested("auth0|1", T2 + timedelta(minutes=1))])
    assert queued(store) == ["auth0|1"]


def test_a_request_newer_than_the_read_keeps_the_account_queued_in_its_place(
    store: Store,
) -> None:
    store.apply([AccountSeen("auth0|1", T0), AccountSeen("auth0|2", T0)])
    store.apply([RefetchRequested("auth0|1", T1), RefetchRequested("auth0|2", T1 + MINUTE)])
    read_at = T1 + 2 * MINUTE  # a read of auth0|1 starts (stamped before its call)...
    store.apply([RefetchRequested("auth0|1", read_at + MINUTE)])  # ...a change while it runs
    store.apply([AccountSeen("auth0|1", read_at), ProfilePhonesReplaced("auth0|1", (), read_at)])
    # Still queued, in its first place: the read does not show the change at read_at + 1 min.
    assert queued(store) == ["auth0|1", "auth0|2"]
    later = read_at + 2 * MINUTE
    store.apply([AccountSeen("auth0|1", later), ProfilePhonesReplaced("auth0|1", (), later)])
    assert queued(store) == ["auth0|2"]


def test_a_failed_read_goes_to_the_back_of_the_queue_until_a_read_works(store: Store) -> None:
    store.apply([AccountSeen(u, T0) for u in ("auth0|1", "auth0|2", "auth0|3")])
    store.apply([RefetchRequested("auth0|1", T1), RefetchRequested("auth0|2", T1 + MINUTE)])
    stats = store.apply([RefetchRequested("auth0|1", T1 + MINUTE, failed=True)])
    assert stats.read_failures == 1
    assert queued(store, due_at=T1 + 15 * MINUTE) == ["auth0|2"]  # its backoff is not over
    store.apply([RefetchRequested("auth0|3", T1 + 16 * MINUTE)])
    # Its retry time (T1 + 16 min) is its new place: after auth0|2, before later requests.
    assert queued(store, due_at=T1 + 20 * MINUTE) == ["auth0|2", "auth0|1", "auth0|3"]
    for n in (2, 3):  # each failure in a row doubles the wait
        store.apply([RefetchRequested("auth0|1", T2, failed=True)])
        assert [t.read_failures for t in store.refetch_queue() if t.user_id == "auth0|1"] == [n]
    assert "auth0|1" not in queued(store, due_at=T2 + 59 * MINUTE)
    assert "auth0|1" in queued(store, due_at=T2 + 60 * MINUTE)
    assert store.summary()["failing_reads"] == 1
    # A read that works ends the backoff and answers the request.
    store.apply(
        [AccountSeen("auth0|1", T2 + MINUTE), ProfilePhonesReplaced("auth0|1", (), T2 + MINUTE)]
    )
    assert queued(store, due_at=T2) == ["auth0|2", "auth0|3"]
    assert store.summary()["failing_reads"] == 0


def test_read_failures_and_queued_requests_survive_a_full_replace(store: Store) -> None:
    store.replace_export([AccountSeen("auth0|1", T0)], T0)
    store.apply([RefetchRequested("auth0|1", T1), RefetchRequested("auth0|1", T1, failed=True)])
    store.apply([RefetchRequested("auth0|1", T1 + MINUTE)])  # a newer request: still unanswered

    store.replace_export([AccountSeen("auth0|1", T2), AccountSeen("auth0|new", T2)], T2)

    [target] = store.refetch_queue()
    assert (target.user_id, target.refetch_requested_at, target.read_failures) == (
        "auth0|1", T1, 1,
    )  # fmt: skip
    assert queued(store, due_at=T1 + 14 * MINUTE) == []  # its backoff holds
    # Accounts the replace created take failed reads like any other.
    store.apply([RefetchRequested("auth0|new", T2 + MINUTE, failed=True)])
    store.apply([AccountSeen("auth0|x", T2), RefetchRequested("auth0|x", T2 + MINUTE)])
    assert queued(store) == ["auth0|1", "auth0|x", "auth0|new"]


def test_an_account_without_mfa_is_answered_by_its_user_object(store: Store) -> None:
    store.apply([AccountSeen("auth0|1", T0), RefetchRequested("auth0|1", T1)])
    store.apply([AccountSeen("auth0|1", T2), ProfilePhonesReplaced("auth0|1", (), T2)])
    assert queued(store) == []


def test_links_for_unknown_accounts_create_them(store: Store) -> None:
    store.apply([PhoneLinked("auth0|later", PHONE, "mfa", "logs", T1, "sms", True)])
    doc = store.lookup(PHONE)
    assert doc["accounts"][0]["user_id"] == "auth0|later"
    assert doc["accounts"][0]["email"] is None
    store.apply([AccountSeen("auth0|later", T0, email="known@example.com")])
    assert store.lookup(PHONE)["accounts"][0]["email"] == "known@example.com"


def test_accounts_come_most_recent_login_first(store: Store) -> None:
    store.apply([
        AccountSeen("a", T0, last_login=None), PhoneLinked("a", PHONE, "profile", "export", T0),
        AccountSeen("b", T0, last_login=T1), PhoneLinked("b", PHONE, "profile", "export", T0),
        AccountSeen("c", T0, last_login=T2), PhoneLinked("c", PHONE, "profile", "export", T0),
    ])  # fmt: skip
    assert users_of(store) == ["c", "b", "a"]


def test_migrations_build_the_same_schema_as_the_models(engine: Engine) -> None:
    from alembic.command import upgrade
    from sqlalchemy import text

    from phoneindex.db import _alembic_config

    with engine.begin() as conn:
        names = [t.name for t in reversed(SQLModel.metadata.sorted_tables)] + ["alembic_version"]
        for name in names:
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    cfg = _alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        upgrade(cfg, "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


# ------------------------------------------------------ user objects read whole, enrollments


def phones_of(store: Store, user_id: str, phone: str) -> list[tuple[str, str, str | None]]:
    """(kind, source, identity) of each link of `phone` to `user_id`."""
    for acc in store.lookup(phone)["accounts"]:
        if acc["user_id"] == user_id:
            return [(p["kind"], p["source"], p["identity"]) for p in acc["phones"]]
    return []


LINKED = "sms|65a1b2c3d4e5f6a7b8c9d0e1"


def test_a_user_object_read_replaces_its_profile_numbers_and_keeps_mfa(store: Store) -> None:
    store.apply([
        AccountSeen("auth0|1", T0),
        PhoneLinked("auth0|1", PHONE, "profile", "export", T0),
        PhoneLinked("auth0|1", OTHER, "passwordless", "export", T0, None, True, LINKED),
        MfaPhonesReplaced("auth0|1", (MfaPhone("+14155550111", "sms", True),), T0),
    ])  # fmt: skip
    # Read at T1: the root number changed to OTHER's identity gone, a new linked identity.
    store.apply([
        ProfilePhonesReplaced("auth0|1", (
            ProfilePhone("+14155550122", "profile", False),
            ProfilePhone("+14155550133", "passwordless", True, "sms|new"),
        ), T1),
    ])  # fmt: skip

    assert users_of(store, PHONE) == []
    assert users_of(store, OTHER) == []
    assert phones_of(store, "auth0|1", "+14155550122") == [("profile", "live", None)]
    assert phones_of(store, "auth0|1", "+14155550133") == [("passwordless", "live", "sms|new")]
    assert phones_of(store, "auth0|1", "+14155550111") == [("mfa", "authenticators", None)]
    # The unlinks are tombstones: an older export line arriving late does not bring them back.
    store.apply([PhoneLinked("auth0|1", PHONE, "profile", "export", T0)])
    assert users_of(store, PHONE) == []


def test_an_older_user_object_read_loses_to_newer_links(store: Store) -> None:
    store.apply([PhoneLinked("auth0|1", PHONE, "passwordless", "logs", T2, None, True)])
    store.apply([ProfilePhonesReplaced("auth0|1", (ProfilePhone(OTHER, "profile"),), T1)])
    assert phones_of(store, "auth0|1", PHONE) == [("passwordless", "logs", None)]
    assert phones_of(store, "auth0|1", OTHER) == [("profile", "live", None)]


def test_an_enrollment_delete_queues_a_reread_of_its_owner(store: Store) -> None:
    read = MfaPhone(PHONE, "sms", True, "phone|dev_AbC123")
    store.apply([AccountSeen("auth0|1", T0), MfaPhonesReplaced("auth0|1", (read,), T0)])
    store.apply([AccountSeen("auth0|2", T0), MfaPhonesReplaced("auth0|2", (), T0)])

    stats = store.apply([EnrollmentRemoved("dev_AbC123", T1)])
    assert (stats.refetches, stats.unknown_enrollments) == (1, 0)
    assert queued(store) == ["auth0|1"]
    again = store.apply([EnrollmentRemoved("phone|dev_AbC123", T1), EnrollmentRemoved("dev_x", T1)])
    assert again.unknown_enrollments == 1
    assert again.as_dict()["unknown_enrollments"] == 1
    assert queued(store) == ["auth0|1"]


def test_a_late_older_event_does_not_bring_back_what_an_import_removed(store: Store) -> None:
    store.apply([PhoneLinked("sms|1", PHONE, "passwordless", "logs", T0, None, True)])
    store.apply([PhoneLinked("auth0|gone", OTHER, "mfa", "logs", T0, "sms", True)])
    # The export taken at T1 no longer has sms|1's number, nor auth0|gone at all.
    store.replace_export(export(("sms|1", None, "passwordless")), T1)
    assert users_of(store) == [] and users_of(store, OTHER) == []

    # Log deliveries are at-least-once and unordered: the same events arrive again, late.
    stats = store.apply([
        PhoneLinked("sms|1", PHONE, "passwordless", "logs", T0, None, True),
        PhoneLinked("auth0|gone", OTHER, "mfa", "logs", T0, "sms", True),
        AccountSeen("auth0|gone", T0),
    ])  # fmt: skip

    assert users_of(store) == [] and users_of(store, OTHER) == []
    assert store.account("auth0|gone") is None
    assert stats.superseded == 3
    # What happened after the export still counts.
    store.apply([PhoneLinked("auth0|gone", OTHER, "mfa", "logs", T2, "sms", True)])
    assert users_of(store, OTHER) == ["auth0|gone"]
