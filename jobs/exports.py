"""Auth0 bulk export files (NDJSON or CSV, gzipped or not) -> changes, imported atomically."""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import orjson
from isal import igzip, isal_zlib

from phoneindex.changes import AccountSeen, Change, Kind, PhoneLinked, ProfilePhone
from phoneindex.errors import ImportFileError
from phoneindex.fullload import ExportedAccount, utc_text
from phoneindex.numbers import to_e164_or_none
from phoneindex.store import ApplyStats, Store, iso, utcnow

# The fields a users-export job must ask for (CSV exports allow at most 30).
EXPORT_FIELDS = (
    "user_id",
    "email",
    "name",
    "phone_number",
    "phone_verified",
    "identities",
    "multifactor",
    "multifactor_last_modified",
    "blocked",
    "created_at",
    "last_login",
    "logins_count",
)
_DATES = ("created_at", "last_login", "multifactor_last_modified")
# A CSV export must have these columns: an import replaces every passwordless/profile number.
REQUIRED_COLUMNS = ("user_id", "phone_number")
# Column names exporters give the same data (Auth0's `export_as`, the dashboard, the User
# Import / Export extension), matched case-insensitively -> the name the mapper reads.
COLUMN_ALIASES = {
    "identities[0].connection": "connection",
    "identities[0].provider": "provider",
    "multifactor[0]": "multifactor",
}
_READ_BUFFER = 1 << 20
_fromisoformat = datetime.fromisoformat
_LINES_CHUNK = 1 << 18
# ISA-L's gzip reader: the same format and checks as the standard library's, inflating about
# twice as fast (a sixth of a million-user import was zlib). Its stubs leave it untyped and call
# its exception class an instance.
_gunzip: Callable[..., Any] = igzip.IGzipFile
_BAD_GZIP = (EOFError, zlib.error, cast(type[Exception], isal_zlib.error), gzip.BadGzipFile)


@dataclass
class ImportResult:
    """What an import did: counts for the summary line and the run record."""

    users: int
    stats: ApplyStats
    unusable_numbers: int

    def summary(self) -> str:
        """One line for people."""
        links = self.stats.links
        return (
            f"imported {self.users:,} accounts: {links.get('passwordless', 0):,} passwordless and "
            f"{links.get('profile', 0):,} profile numbers; "
            f"{self.stats.accounts_removed:,} accounts gone from the export removed"
            + (
                f"; {self.unusable_numbers:,} unusable numbers skipped"
                if self.unusable_numbers
                else ""
            )
        )

    def counts(self) -> dict[str, Any]:
        """Counts for the run record."""
        return {"users": self.users, "unusable_numbers": self.unusable_numbers} | (
            self.stats.as_dict()
        )


class ExportFile:
    """A readable Auth0 export file; iterating yields (line number, user dict)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = self.path.name
        try:
            self.size = self.path.stat().st_size
            self._raw: IO[bytes] = open(self.path, "rb", buffering=_READ_BUFFER)  # noqa: SIM115
        except OSError as exc:
            raise ImportFileError(str(path), None, exc.strerror or "cannot be read") from None
        self.gzipped = self._raw.read(2) == b"\x1f\x8b"
        self._raw.seek(0)
        self.line = 0

    def position(self) -> int:
        """Bytes of the file consumed so far (for progress)."""
        try:
            return self._raw.tell()
        except ValueError:  # closed once fully read
            return self.size

    def close(self) -> None:
        """Release the file."""
        self._raw.close()

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def users(self) -> Iterator[dict[str, Any]]:
        """Every user of the file, in order; any defect raises ImportFileError naming the line."""
        buffered: Any = _gunzip(fileobj=self._raw, mode="rb") if self.gzipped else self._raw
        try:
            first = buffered.peek(64).lstrip()[:1]
            if first == b"[":
                self.line = 1
                raise self._error("a JSON array; expected NDJSON (one user per line) or CSV")
            if first == b"{" or (not first and self._is_json_name()):
                yield from self._ndjson(buffered)
            else:
                yield from self._csv(buffered)
        except _BAD_GZIP as exc:
            self.line += 1  # the first line not read whole
            raise self._error(f"truncated or corrupt gzip data ({type(exc).__name__})") from None
        except UnicodeDecodeError:
            raise self._error("not UTF-8 text") from None

    def _is_json_name(self) -> bool:
        suffixes = [s.lower() for s in self.path.suffixes]
        return ".json" in suffixes or ".ndjson" in suffixes

    def _ndjson(self, stream: IO[bytes]) -> Iterator[dict[str, Any]]:
        loads = orjson.loads  # several times faster than json.loads on export-sized lines
        for raw in _lines(stream):
            self.line += 1
            if not raw.strip():
                continue
            try:
                user = loads(raw)
            except ValueError:
                raise self._error("not a JSON object (malformed line)") from None
            if not isinstance(user, dict):
                raise self._error("not a JSON object")
            yield user

    def _csv(self, stream: IO[bytes]) -> Iterator[dict[str, Any]]:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        try:
            header = [column_key(_unquote(h) or "") for h in next(reader)]
        except StopIteration:
            return
        except csv.Error:
            raise self._error("not a CSV header row") from None
        self.line = 1
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            # Without phone_number every passwordless/profile number would be swept away.
            shown = ", ".join(h for h in header[:12] if h) or "none"
            none = ", ".join(f"no {name} column" for name in missing)
            wanted = " and ".join(missing)
            raise self._error(f"{none} (columns: {shown}); export the {wanted} field")
        width = len(header)
        try:
            for row in reader:
                self.line = reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    raise self._error(f"{len(row)} values where the header has {width}")
                # Inline _unquote: a function call per cell is most of the CSV cost.
                yield {
                    k: (v[1:] or None if v[0] == "'" else v) if v else None
                    for k, v in zip(header, row, strict=True)
                }
        except csv.Error as exc:
            raise self._error(f"malformed CSV ({exc})") from None

    def _error(self, reason: str) -> ImportFileError:
        return ImportFileError(self.name, self.line or None, reason)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream's lines (without their newline), cut from big reads: faster than readline."""
    rest = b""
    while chunk := stream.read(_LINES_CHUNK):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def column_key(name: str) -> str:
    """A CSV column name as the mapper reads it: `Phone Number` -> `phone_number`, aliases."""
    key = "_".join(name.strip().lower().replace("-", " ").split())
    return COLUMN_ALIASES.get(key, key)


def _unquote(value: str) -> str | None:
    """Auth0 prefixes CSV string values with `'` against CSV injection; empty means absent."""
    if value.startswith("'"):
        value = value[1:]
    return value or None


class UserMapper:
    """One Auth0 user object (export line, `GET /api/v2/users/{id}`, search hit) -> changes."""

    def __init__(self, observed_at: datetime, default_region: str | None) -> None:
        self.observed_at = observed_at
        self.region = default_region
        self.unusable_numbers = 0

    def changes(self, user: dict[str, Any]) -> list[Change]:
        """The account and each of its numbers as changes; ValueError names a bad field."""
        account, phones = self.read(user)
        at = self.observed_at
        out: list[Change] = [account]
        out += [
            PhoneLinked(
                account.user_id, p.phone, p.kind, "export", at, None, p.confirmed, p.identity
            )
            for p in phones
        ]
        return out

    def exported(self, user: dict[str, Any]) -> list[ExportedAccount | PhoneLinked]:
        """changes() for a full replace: the account's timestamps as stored text (no datetimes)."""
        fields, phones = self._fields(user, _stamp)
        account = ExportedAccount(*fields)
        if not phones:
            return [account]
        at = self.observed_at
        uid = account.user_id
        out: list[ExportedAccount | PhoneLinked] = [account]
        out += [
            PhoneLinked(uid, p.phone, p.kind, "export", at, None, p.confirmed, p.identity)
            for p in phones
        ]
        return out

    def read(self, user: dict[str, Any]) -> tuple[AccountSeen, list[ProfilePhone]]:
        """The account's profile fields and its passwordless/profile numbers."""
        fields, phones = self._fields(user, _date)
        return AccountSeen(*fields), phones

    def _fields(
        self, user: dict[str, Any], date: Callable[[Any, str], Any]
    ) -> tuple[tuple[Any, ...], list[ProfilePhone]]:
        """AccountSeen's fields in order (timestamps converted by `date`), and the numbers."""
        get = user.get
        user_id = get("user_id")
        if user_id is None and user:
            user = {column_key(k): v for k, v in user.items()}  # `export_as` names in JSON
            get = user.get
            user_id = get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise ValueError("missing user_id")
        identities = get("identities")
        if type(identities) is not list or (identities and type(identities[0]) is not dict):
            identities = _identities(identities)  # not the usual shape: checked, converted
        primary = identities[0] if identities else {}
        provider = primary.get("provider") or get("provider")
        # Auth0's documented CSV example exports `identities[0].connection` as "provider".
        connection = primary.get("connection") or get("connection") or provider
        # The usual types are taken as they are (a million users: every call counts).
        email, name, blocked = get("email"), get("name"), get("blocked")
        count, multifactor = get("logins_count"), get("multifactor")
        modified = get("multifactor_last_modified")
        account = (
            user_id,
            self.observed_at,
            email if email is None or type(email) is str else str(email),
            name if name is None or type(name) is str else str(name),
            connection if connection is None or type(connection) is str else str(connection),
            blocked if type(blocked) is bool else _flag(blocked, "blocked") or False,
            date(get("created_at"), "created_at"),
            date(get("last_login"), "last_login"),
            count
            if count is None or (type(count) is int and 0 <= count < 2**31)
            else _count(count),
            () if multifactor is None else _providers(multifactor),
            None if modified is None else date(modified, "multifactor_last_modified"),
        )
        phones: list[ProfilePhone] = []
        raw_phone = get("phone_number")
        if raw_phone:
            own_sms = user_id.startswith("sms|") or "sms" in (provider, connection)
            kind: Kind = "passwordless" if own_sms else "profile"
            self._add(phones, raw_phone, kind, _flag(get("phone_verified"), "phone_verified"))
        if len(identities) > 1 or (identities and "profileData" in primary):
            self._linked(phones, user_id, identities)
        return account, phones

    def _linked(
        self, phones: list[ProfilePhone], user_id: str, identities: list[dict[str, Any]]
    ) -> None:
        """Numbers of linked identities (account linking moves them into `profileData`)."""
        for ident in identities:
            data = ident.get("profileData") if isinstance(ident, dict) else None
            if not isinstance(data, dict) or not data.get("phone_number"):
                continue
            provider = _text(ident.get("provider")) or ""
            key = f"{provider}|{ident.get('user_id', '')}"
            if key == user_id:
                continue  # the primary's own identity: its number is the root one
            sms = "sms" in (provider, ident.get("connection"))
            confirmed = _flag(data.get("phone_verified"), "phone_verified")
            self._add(phones, data["phone_number"], "passwordless" if sms else "profile",
                      confirmed, key)  # fmt: skip

    def _add(
        self,
        phones: list[ProfilePhone],
        raw: Any,
        kind: Kind,
        confirmed: bool | None,
        identity: str | None = None,
    ) -> None:
        phone = to_e164_or_none(str(raw), self.region)
        if phone is None:
            self.unusable_numbers += 1
        elif not any(p.phone == phone and p.kind == kind for p in phones):
            phones.append(ProfilePhone(phone, kind, confirmed, identity))


def import_export(
    store: Store,
    path: str | os.PathLike[str],
    *,
    default_region: str | None = None,
    observed_at: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Replace the export-sourced part of the index with the file's users, atomically."""
    mapper = UserMapper(observed_at or utcnow(), default_region)
    users = 0

    with ExportFile(path) as export:
        newer = store.export_snapshot()
        if newer is not None and mapper.observed_at < newer:
            raise export._error(
                f"its data (as of {iso(mapper.observed_at)}) is older than the export already "
                f"imported (as of {iso(newer)}) and would bring back what that one removed; "
                "import a newer export (or give --as-of when the file is newer than it looks)"
            )

        def changes() -> Iterator[ExportedAccount | PhoneLinked]:
            nonlocal users
            for user in export.users():
                try:
                    yield from mapper.exported(user)
                except ValueError as exc:
                    raise export._error(str(exc)) from None
                users += 1

        def on_batch(_stats: ApplyStats) -> None:
            if progress is not None:
                progress(export.position(), export.size)

        stats = store.replace_export(changes(), mapper.observed_at, on_batch=on_batch)
        if progress is not None:
            progress(export.size, export.size)
    return ImportResult(users=users, stats=stats, unusable_numbers=mapper.unusable_numbers)


def _identities(value: Any) -> list[dict[str, Any]]:
    if type(value) is list and (not value or type(value[0]) is dict):
        return value  # the usual shape; later items are checked where they are used
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except ValueError:
            raise ValueError("identities is not JSON") from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("identities is not a list")
    return [i for i in value if isinstance(i, dict)]


def _connection(identities: list[dict[str, Any]]) -> str | None:
    return _text(identities[0].get("connection")) if identities else None


def _providers(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = orjson.loads(text)
            except ValueError:
                raise ValueError("multifactor is not a list") from None
        else:
            return tuple(p.strip() for p in text.split(",") if p.strip())
    if not isinstance(value, list):
        raise ValueError("multifactor is not a list")
    return tuple(str(p) for p in value)


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


def _flag(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{name} is not true or false")


def _count(value: Any) -> int | None:
    try:
        count = value if value is None or isinstance(value, int) else int(value)
    except (TypeError, ValueError):
        raise ValueError("logins_count is not a number") from None
    if count is not None and not 0 <= count < 2**31:  # a 32-bit count in Auth0, and ours
        raise ValueError("logins_count is out of range")
    return count


def _stamp(value: Any, name: str) -> str | None:
    """A timestamp in the stored text form, checked like _date."""
    if value is None:
        return None
    try:
        if type(value) is str and len(value) == 24 and value[23] == "Z" and value[19] == ".":
            _fromisoformat(value)  # Auth0's own form (utc_text's fast path, inlined): check it
            return value[:23] + "000+00:00"
        return utc_text(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not an ISO 8601 timestamp with a time zone") from None


def _date(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        pass
    else:
        if stamp.tzinfo is not None:
            return stamp
    raise ValueError(f"{name} is not an ISO 8601 timestamp with a time zone")
