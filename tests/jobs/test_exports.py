"""Importing Auth0 export files: formats, classification, atomicity, clear errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

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
         "identities": [{"provider": "sms", "connection": "sms"}]},  # linked sms identity
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
            "user_id,email\n'auth0|1,'a@example.com,extra\n",
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
