"""Importing Auth0 export files: formats, classification, atomicity, clear errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from jobs.exports import import_export
from phoneindex.errors import ImportFileError
from phoneindex.store import Store
from tests.conftest import EXAMPLES, T0

SAMPLE = EXAMPLES / "users-export.ndjson"


def sample_users() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines()]


def auth0_csv(users: list[dict[str, Any]], fields: list[str]) -> str:
    """A CSV export as Auth0 writes it: string values prefixed with ' and quoted."""
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(fields)
    for user in users:
        row = []
        for field in fields:
            value = user.get(field)
            if value is None:
                row.append("")
            elif isinstance(value, bool | int):
                row.append(str(value).lower() if isinstance(value, bool) else str(value))
            elif isinstance(value, list | dict):
                row.append("'" + json.dumps(value))
            elif field in ("created_at", "last_login", "multifactor_last_modified"):
                row.append(value)  # dates are left as they are
            else:
                row.append("'" + value)
        writer.writerow(row)
    return buf.getvalue()


FIELDS = ["user_id", "email", "name", "phone_number", "phone_verified", "identities",
          "multifactor", "multifactor_last_modified", "blocked", "created_at", "last_login",
          "logins_count"]  # fmt: skip


def write(path: Path, text: str, *, gz: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def ndjson(users: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(u) + "\n" for u in users)


@pytest.mark.parametrize(
    ("name", "fmt", "gz"),
    [("users.json", "ndjson", False), ("users.ndjson.gz", "ndjson", True),
     ("users.csv", "csv", False), ("users.csv.gz", "csv", True)],
)  # fmt: skip
def test_every_export_format_gives_the_same_index(
    store: Store, tmp_path: Path, name: str, fmt: str, gz: bool
) -> None:
    users = sample_users()
    text = ndjson(users) if fmt == "ndjson" else auth0_csv(users, FIELDS)
    result = import_export(store, write(tmp_path / name, text, gz=gz), observed_at=T0)

    assert result.users == 35
    doc = store.lookup("+14155550100")
    by_id = {a["user_id"]: a for a in doc["accounts"]}
    assert len(by_id) == 3
    kinds = sorted(a["phones"][0]["kind"] for a in by_id.values())
    assert kinds == ["passwordless", "profile", "profile"]
    jane = next(a for a in by_id.values() if a["email"] == "jane@example.com")
    assert jane["name"] == "Jane Doe"
    assert jane["connection"] == "Username-Password-Authentication"
    assert jane["created_at"] == "2025-02-01T10:00:00Z"
    assert store.lookup("+390669820000")["accounts"][0]["name"] == "Giulia Rossi"
    assert store.lookup("+447700900123")["accounts"], "a spaced profile number is normalised"


def test_classification_by_user_id_and_identity_provider(store: Store, tmp_path: Path) -> None:
    users = [
        {"user_id": "sms|1", "phone_number": "+14155550100"},
        {"user_id": "auth0|2", "phone_number": "+14155550100",
         "identities": [{"provider": "sms", "connection": "sms"}]},  # primary identity is sms
        {"user_id": "auth0|3", "phone_number": "+14155550100", "phone_verified": False},
    ]  # fmt: skip
    import_export(store, write(tmp_path / "u.json", ndjson(users)), observed_at=T0)
    phones = {a["user_id"]: a["phones"][0] for a in store.lookup("+14155550100")["accounts"]}
    assert phones["sms|1"]["kind"] == "passwordless"
    assert phones["auth0|2"]["kind"] == "passwordless"
    assert phones["auth0|3"]["kind"] == "profile"
    assert phones["auth0|3"]["confirmed"] is False


def test_unusable_numbers_are_skipped_and_counted(store: Store, tmp_path: Path) -> None:
    users = [{"user_id": "auth0|1", "phone_number": "call me"}, {"user_id": "auth0|2"}]
    result = import_export(store, write(tmp_path / "u.json", ndjson(users)), observed_at=T0)
    assert result.users == 2
    assert result.unusable_numbers == 1
    assert "1 unusable numbers skipped" in result.summary()
    assert store.summary()["accounts"] == 2


def _imported(store: Store, tmp_path: Path) -> dict[str, Any]:
    import_export(store, write(tmp_path / "first.json", ndjson(sample_users())), observed_at=T0)
    return store.lookup("+14155550100")


def test_truncated_gzip_names_the_file_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    before = _imported(store, tmp_path)
    users = [{"user_id": f"auth0|{i}", "phone_number": "+14155550100"} for i in range(5000)]
    data = gzip.compress(ndjson(users).encode())
    broken = tmp_path / "export.json.gz"
    broken.write_bytes(data[: len(data) // 2])

    with pytest.raises(ImportFileError) as caught:
        import_export(store, broken)

    assert str(caught.value).startswith("export.json.gz, line ")
    assert "truncated or corrupt gzip" in str(caught.value)
    assert store.lookup("+14155550100") == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"user_id": "auth0|1"}\n{"user_id": "auth0|2"\n', "bad.json, line 2: not a JSON object"),
        (
            '{"user_id": "auth0|1"}\n{"email": "x@example.com"}\n',
            "bad.json, line 2: missing user_id",
        ),
        ('{"user_id": "auth0|1", "created_at": "yesterday"}\n', "line 1: created_at is not an ISO"),
        ('[{"user_id": "auth0|1"}]', "bad.json, line 1: a JSON array; expected NDJSON"),
        ("\x00\x01binary\xff", "bad.json, line"),
        ("email,name\n'a@example.com,'A\n", "no user_id column"),
        (
            "user_id,phone_number\n'auth0|1,'+14155550100,extra\n",
            "line 2: 3 values where the header has 2",
        ),
    ],
)
def test_malformed_files_name_the_line_and_change_nothing(
    store: Store, tmp_path: Path, content: str, message: str
) -> None:
    before = _imported(store, tmp_path)
    with pytest.raises(ImportFileError) as caught:
        import_export(store, write(tmp_path / "bad.json", content))
    assert message in str(caught.value)
    assert store.lookup("+14155550100") == before


def test_a_missing_file_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="nothing.json"):
        import_export(store, tmp_path / "nothing.json")


def test_error_messages_never_contain_the_numbers(store: Store, tmp_path: Path) -> None:
    content = '{"user_id": "auth0|1", "phone_number": "+14155550100", "blocked": "maybe"}\n'
    with pytest.raises(ImportFileError) as caught:
        import_export(store, write(tmp_path / "u.json", content))
    assert "blocked is not true or false" in str(caught.value)
    assert "4155550100" not in str(caught.value)


def test_progress_reaches_the_end(store: Store, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    path = write(tmp_path / "u.json.gz", ndjson(sample_users()), gz=True)
    import_export(store, path, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


LINKED = {
    "user_id": "auth0|5f7c8ec7c33c6c004bbafe82", "email": "maria@example.com", "name": "Maria",
    "phone_number": "+14155550111", "phone_verified": True,
    "identities": [
        {"provider": "auth0", "connection": "Username-Password-Authentication",
         "user_id": "5f7c8ec7c33c6c004bbafe82", "isSocial": False},
        {"provider": "sms", "connection": "sms", "user_id": "560ebaeef609ee1adaa7c551",
         "isSocial": False,
         "profileData": {"phone_number": "+14155550122", "phone_verified": True}},
        {"provider": "google-oauth2", "connection": "google-oauth2", "isSocial": True,
         "user_id": "109876543210987654321",
         "profileData": {"email": "maria@gmail.com", "name": "Maria G"}},
    ],
}  # fmt: skip


def test_a_linked_sms_identity_is_a_passwordless_number_of_the_primary(
    store: Store, tmp_path: Path
) -> None:
    import_export(store, write(tmp_path / "u.json", ndjson([LINKED])), observed_at=T0)

    [linked] = store.lookup("+14155550122")["accounts"]
    assert linked["user_id"] == "auth0|5f7c8ec7c33c6c004bbafe82"
    assert linked["connection"] == "Username-Password-Authentication"
    assert linked["phones"] == [
        {"kind": "passwordless", "method": None, "confirmed": True, "source": "export",
         "updated_at": "2026-11-27T09:00:00Z", "identity": "sms|560ebaeef609ee1adaa7c551"},
    ]  # fmt: skip
    [own] = store.lookup("+14155550111")["accounts"]  # the root number is its own profile number
    assert [(p["kind"], p["identity"]) for p in own["phones"]] == [("profile", None)]
    assert store.lookup("+15550000000")["accounts"] == []


def test_unlinking_an_identity_removes_its_number_at_the_next_import(
    store: Store, tmp_path: Path
) -> None:
    import_export(store, write(tmp_path / "a.json", ndjson([LINKED])), observed_at=T0)
    unlinked = LINKED | {"identities": LINKED["identities"][:1]}
    later = T0.replace(hour=10)
    import_export(store, write(tmp_path / "b.json", ndjson([unlinked])), observed_at=later)

    assert store.lookup("+14155550122")["accounts"] == []
    assert len(store.lookup("+14155550111")["accounts"]) == 1


def test_the_sample_export_has_a_linked_sms_identity(store: Store, tmp_path: Path) -> None:
    import_export(store, SAMPLE, observed_at=T0)
    [alex] = store.lookup("+14155550188")["accounts"]
    assert (alex["name"], alex["phones"][0]["kind"]) == ("Alex Kim", "passwordless")
    assert alex["phones"][0]["identity"] == "sms|6579f3b1c2a94e0d8f1b2c3d"


@pytest.mark.parametrize(
    ("connection_column", "multifactor_column"),
    [("connection", "multifactor"), ("Provider", "Multifactor[0]"),
     ("identities[0].connection", "multifactor[0]"), ("IDENTITIES[0].PROVIDER", "MultiFactor")],
)  # fmt: skip
def test_csv_columns_named_by_the_exporter(
    store: Store, tmp_path: Path, connection_column: str, multifactor_column: str
) -> None:
    header = ["User_Id", "Email", connection_column, "Phone Number", multifactor_column]
    rows = [
        ["'sms|1", "", "'sms", "'+14155550100", ""],
        ["'auth0|2", "'b@example.com", "'Username-Password-Authentication", "'+14155550100",
         "'guardian"],
    ]  # fmt: skip
    text = "\n".join(",".join(f'"{v}"' if v else "" for v in row) for row in [header, *rows])
    import_export(store, write(tmp_path / "users.csv", text + "\n"), observed_at=T0)

    accounts = {a["user_id"]: a for a in store.lookup("+14155550100")["accounts"]}
    assert accounts["sms|1"]["connection"] == "sms"
    assert accounts["sms|1"]["phones"][0]["kind"] == "passwordless"
    assert accounts["auth0|2"]["connection"] == "Username-Password-Authentication"
    assert accounts["auth0|2"]["phones"][0]["kind"] == "profile"
    assert store.enrich_candidates()[0].user_id == "auth0|2"  # multifactor read from its column


def test_a_csv_provider_of_sms_means_passwordless(store: Store, tmp_path: Path) -> None:
    text = 'user_id,provider,phone_number\n"\'email|9","\'sms","\'+14155550100"\n'
    import_export(store, write(tmp_path / "users.csv", text), observed_at=T0)
    [account] = store.lookup("+14155550100")["accounts"]
    assert account["phones"][0]["kind"] == "passwordless"


def test_a_csv_identities_column_holds_json_with_linked_identities(
    store: Store, tmp_path: Path
) -> None:
    text = auth0_csv([LINKED], ["user_id", "email", "phone_number", "identities"])
    import_export(store, write(tmp_path / "users.csv.gz", text, gz=True), observed_at=T0)
    [account] = store.lookup("+14155550122")["accounts"]
    assert account["user_id"] == LINKED["user_id"]
    assert account["connection"] == "Username-Password-Authentication"
    assert account["phones"][0]["identity"] == "sms|560ebaeef609ee1adaa7c551"


def test_json_fields_renamed_by_export_as_are_read(store: Store, tmp_path: Path) -> None:
    user = {"user_id": "sms|7", "Connection": "sms", "phone_number": "+14155550100"}
    renamed = {"USER_ID": "auth0|8", "identities[0].connection": "Username-Password-Authentication",
               "phone_number": "+14155550100"}  # fmt: skip
    import_export(store, write(tmp_path / "u.json", ndjson([user, renamed])), observed_at=T0)
    accounts = {a["user_id"]: a for a in store.lookup("+14155550100")["accounts"]}
    assert accounts["auth0|8"]["connection"] == "Username-Password-Authentication"
    assert accounts["sms|7"]["phones"][0]["kind"] == "passwordless"


def test_a_csv_without_user_id_names_the_missing_column(store: Store, tmp_path: Path) -> None:
    text = 'email,phone_number\n"\'a@example.com","\'+14155550100"\n'
    with pytest.raises(ImportFileError) as caught:
        import_export(store, write(tmp_path / "users.csv", text), observed_at=T0)
    message = str(caught.value)
    assert "users.csv" in message and "no user_id column" in message
    assert "email, phone_number" in message
    assert "14155550100" not in message


def test_the_export_path_indexes_exactly_what_the_change_path_does(
    store: Store, engine: Engine, tmp_path: Path
) -> None:
    from jobs.exports import UserMapper

    users = sample_users()
    import_export(store, write(tmp_path / "u.json", ndjson(users)), observed_at=T0)
    fast = {p: store.lookup(p) for p in _numbers(users)}
    profiles = _profiles(engine)

    mapper = UserMapper(T0, None)
    store.replace_export([c for u in users for c in mapper.changes(u)], T0)  # type: ignore[arg-type]

    assert {p: store.lookup(p) for p in _numbers(users)} == fast
    assert _profiles(engine) == profiles


def test_after_a_reindex_mfa_numbers_already_read_are_not_read_again(
    store: Store, tmp_path: Path
) -> None:
    from phoneindex.changes import MfaPhonesReplaced, mfa_key

    user = {"user_id": "auth0|1", "multifactor": ["guardian"],
            "multifactor_last_modified": "2025-02-01T11:00:00.120Z"}  # fmt: skip
    path = write(tmp_path / "u.json", ndjson([user]))
    import_export(store, path, observed_at=T0)
    key = mfa_key(("guardian",), datetime.fromisoformat("2025-02-01T11:00:00.120Z"))
    store.apply([MfaPhonesReplaced("auth0|1", (), T0, fetched_key=key)])  # what enrich records

    import_export(store, path, observed_at=T0 + timedelta(days=1))  # the next night

    assert store.enrich_candidates() == []


def _numbers(users: list[dict[str, Any]]) -> list[str]:
    from phoneindex.numbers import to_e164_or_none

    found = [to_e164_or_none(str(u.get("phone_number", ""))) for u in users]
    return sorted({n for n in found if n})


def _profiles(engine: Engine) -> list[Any]:
    from sqlalchemy import select

    from phoneindex.models import account_table

    cols = [c for c in account_table.c if c.name != "updated_at"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*cols).order_by(account_table.c.user_id))]


def test_an_export_older_than_the_last_one_imported_is_refused_and_changes_nothing(
    store: Store, tmp_path: Path
) -> None:
    later = T0 + timedelta(hours=1)
    import_export(store, write(tmp_path / "new.json", ndjson([LINKED])), observed_at=later)
    before = store.lookup("+14155550122")
    old = [LINKED, {"user_id": "sms|gone", "phone_number": "+14155550199"}]
    with pytest.raises(ImportFileError) as caught:
        import_export(store, write(tmp_path / "old.json", ndjson(old)), observed_at=T0)
    message = str(caught.value)
    assert message.startswith("old.json: its data (as of 2026-11-27T09:00:00Z) is older")
    assert "(as of 2026-11-27T10:00:00Z)" in message
    assert store.lookup("+14155550199")["accounts"] == []  # nothing came back
    assert store.lookup("+14155550122") == before


def test_a_csv_without_phone_number_is_refused_instead_of_emptying_the_index(
    store: Store, tmp_path: Path
) -> None:
    before = _imported(store, tmp_path)
    text = 'user_id,email\n"\'auth0|1","\'a@example.com"\n'
    with pytest.raises(ImportFileError) as caught:
        import_export(store, write(tmp_path / "users.csv", text))
    assert "no phone_number column (columns: user_id, email)" in str(caught.value)
    assert store.lookup("+14155550100") == before
