"""Synthetic Auth0 bulk exports shaped like a real tenant's, for benchmarks.

    python benchmarks/synth.py 1000000 benchmarks/data/auth0-1000000.ndjson.gz
    python benchmarks/synth.py 1000000 benchmarks/data/auth0-1000000.csv.gz --format csv

Every user has its own millisecond `created_at`, `updated_at` and `last_login`, an `identities`
array, `app_metadata`, `logins_count`, `blocked`, an email and a name; database, social and SMS
passwordless users; about a quarter of users with a phone number: passwordless users' own numbers,
SMS identities linked to a database account (about 1 in 10 passwordless numbers; the number is in
`identities[1].profileData`), profile numbers on database users; numbers shared by several
accounts; some unusable numbers; `multifactor` on some. About 73 bytes a user gzipped (NDJSON).

The CSV variant is what Auth0 writes for a CSV job whose fields the exporter named
(`{"name": "identities[0].connection", "export_as": "connection"}`, ...): string values prefixed
with `'` and double-quoted, dates, numbers and booleans as they are, `identities` as JSON text.
Deterministic for a given N and seed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# (country calling code + prefix, digits to add): patterns libphonenumber accepts as valid.
PATTERNS = [
    ("+1212", 7), ("+1312", 7), ("+1415", 7), ("+1646", 7), ("+1718", 7), ("+1202", 7),
    ("+1305", 7), ("+1617", 7), ("+1206", 7), ("+1702", 7), ("+447700", 6), ("+447911", 6),
    ("+4915112", 7), ("+4917612", 7), ("+33612", 6), ("+33712", 6), ("+39347", 7),
    ("+5511987", 6), ("+9198", 8), ("+61412", 6), ("+8190", 8), ("+52155", 7),
]  # fmt: skip
# Values people and old integrations leave in `phone_number` that are no usable number.
UNUSABLE = ["+10000000000", "+1555", "000000", "+999123456", "n/a", "+440000"]
FIRST = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
         "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas",
         "sarah", "maria", "karen", "daniel", "lisa", "ana", "luca", "sofia", "yuki", "wei",
         "fatima", "omar", "priya", "raj", "olga", "ivan", "chen", "lea", "noah",
         "emma"]  # fmt: skip
LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rossi",
        "muller", "martin", "bernard", "kim", "lee", "wang", "singh", "kumar", "silva", "santos",
        "nguyen", "tanaka", "sato", "novak", "kowalski", "ivanova", "cohen", "haddad"]  # fmt: skip
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "example.com",
           "acme-corp.com", "proton.me", "web.de", "orange.fr"]  # fmt: skip
DATABASE = "Username-Password-Authentication"
# CSV columns: (exported field, the name the exporter gave it).
CSV_FIELDS = [
    ("user_id", "user_id"), ("email", "email"), ("name", "name"),
    ("phone_number", "phone_number"), ("phone_verified", "phone_verified"),
    ("identities[0].connection", "connection"), ("identities", "identities"),
    ("multifactor[0]", "multifactor[0]"),
    ("multifactor_last_modified", "multifactor_last_modified"),
    ("created_at", "created_at"), ("updated_at", "updated_at"), ("last_login", "last_login"),
    ("logins_count", "logins_count"), ("blocked", "blocked"),
]  # fmt: skip
_CSV_DATES = {"created_at", "updated_at", "last_login", "multifactor_last_modified"}
_T_START = 1_546_300_800_000  # 2019-01-01 in epoch ms
_T_END = 1_795_000_000_000  # late 2026


def number_pool(size: int, rnd: random.Random) -> list[str]:
    """`size` distinct, valid E.164 numbers spread over the patterns above."""
    from phoneindex.numbers import to_e164_or_none

    pool: set[str] = set()
    while len(pool) < size:
        prefix, digits = rnd.choice(PATTERNS)
        first = str(rnd.randint(2, 9))  # avoid N11 / 0-starting subscriber numbers
        candidate = prefix + first + "".join(rnd.choices("0123456789", k=digits - 1))
        if candidate not in pool and to_e164_or_none(candidate) == candidate:
            pool.add(candidate)
    return sorted(pool)


def _stamp(ms: int) -> str:
    """Auth0's timestamp form: `2024-03-05T11:22:33.456Z`."""
    import datetime as dt

    when = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class _Tenant:
    """Draws one realistic user after another."""

    def __init__(self, n: int, seed: int) -> None:
        self.rnd = random.Random(seed)
        # About 25% of users have a number; ~15% of the numbers are shared by several accounts.
        self.pool = number_pool(max(10, int(n * 0.25 * 0.85)), self.rnd)

    def hex24(self) -> str:
        return f"{self.rnd.getrandbits(96):024x}"

    def number(self) -> str:
        if self.rnd.random() < 0.01:
            return self.rnd.choice(UNUSABLE)
        return self.rnd.choice(self.pool)

    def user(self, i: int) -> dict[str, Any]:
        rnd = self.rnd
        draw = rnd.random()
        kind = "sms" if draw < 0.14 else "social" if draw < 0.34 else "database"
        created = rnd.randrange(_T_START, _T_END)
        updated = rnd.randrange(created, _T_END + 1)
        login = rnd.randrange(created, updated + 1)
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        email = f"{first}.{last}{rnd.randrange(10_000)}@{rnd.choice(DOMAINS)}"
        user: dict[str, Any]
        if kind == "sms":
            uid, phone = self.hex24(), self.number()
            user = {"user_id": f"sms|{uid}", "phone_number": phone,
                    "phone_verified": rnd.random() < 0.97, "name": phone,
                    "identities": [{"user_id": uid, "provider": "sms", "connection": "sms",
                                    "isSocial": False}]}  # fmt: skip
        elif kind == "social":
            uid = str(rnd.randrange(10**20, 10**21))
            user = {"user_id": f"google-oauth2|{uid}", "email": email,
                    "name": f"{first.title()} {last.title()}",
                    "identities": [{"user_id": uid, "provider": "google-oauth2",
                                    "connection": "google-oauth2", "isSocial": True}]}  # fmt: skip
        else:
            uid = self.hex24()
            user = {"user_id": f"auth0|{uid}", "email": email, "name": email,
                    "identities": [{"user_id": uid, "provider": "auth0", "connection": DATABASE,
                                    "isSocial": False}]}  # fmt: skip
            linked = rnd.random() < 0.023  # ~10% of passwordless numbers are linked identities
            if linked:
                user["identities"].append(
                    {"profileData": {"phone_number": self.number(), "phone_verified": True},
                     "user_id": self.hex24(), "provider": "sms", "connection": "sms",
                     "isSocial": False}
                )  # fmt: skip
            if rnd.random() < (0.02 if linked else 0.14):
                user["phone_number"] = self.number()
                user["phone_verified"] = rnd.random() < 0.6
            if rnd.random() < 0.15:
                user["multifactor"] = ["guardian"]
                user["multifactor_last_modified"] = _stamp(rnd.randrange(created, updated + 1))
        user["created_at"] = _stamp(created)
        user["updated_at"] = _stamp(updated)
        user["last_login"] = _stamp(login)
        user["logins_count"] = rnd.randrange(1, 400)
        user["blocked"] = rnd.random() < 0.005
        user["app_metadata"] = {"plan": rnd.choice(("free", "pro", "team"))} if i % 3 else {}
        return user


def user_dicts(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """N export users (dicts), one at a time."""
    tenant = _Tenant(n, seed)
    for i in range(n):
        yield tenant.user(i)


def users(n: int, seed: int = 1) -> Iterator[str]:
    """N NDJSON export lines, one at a time."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    for user in user_dicts(n, seed):
        yield dumps(user)


def _csv_value(user: dict[str, Any], field: str) -> tuple[str, bool]:
    """One CSV cell as Auth0 writes it, and whether it is a string (quoted, `'`-prefixed)."""
    if field == "identities[0].connection":
        value: Any = user["identities"][0]["connection"]
    elif field == "multifactor[0]":
        value = (user.get("multifactor") or [None])[0]
    else:
        value = user.get(field)
    if value is None:
        return "", False
    if isinstance(value, bool):
        return str(value).lower(), False
    if isinstance(value, int) or field in _CSV_DATES:
        return str(value), False
    if isinstance(value, list | dict):
        return "'" + json.dumps(value, separators=(",", ":")), True
    return "'" + value, True


def csv_lines(n: int, seed: int = 1) -> Iterator[str]:
    """The CSV export of the same N users: a header, then one row a user."""
    yield ",".join(f'"{name}"' for _field, name in CSV_FIELDS)
    for user in user_dicts(n, seed):
        cells = []
        for field, _name in CSV_FIELDS:
            text, string = _csv_value(user, field)
            # Unquoted cells are dates, numbers and booleans: never a comma or a quote in them.
            cells.append('"' + text.replace('"', '""') + '"' if string else text)
        yield ",".join(cells)


def export_path(n: int, fmt: str = "ndjson", seed: int = 1) -> Path:
    """Where the benchmarks keep the generated export of N users."""
    suffix = "csv.gz" if fmt == "csv" else "ndjson.gz"
    return Path(__file__).resolve().parent / "data" / f"auth0-{n}-s{seed}.{suffix}"


def write(n: int, path: Path, seed: int = 1, fmt: str | None = None) -> Path:
    """Write the gzipped export (kept if already there); CSV when the name says so."""
    if path.exists():
        return path
    fmt = fmt or ("csv" if ".csv" in path.suffixes else "ndjson")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    lines = csv_lines(n, seed) if fmt == "csv" else users(n, seed)
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as out:
        for line in lines:
            out.write(line + "\n")
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("users", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("ndjson", "csv"), default=None)
    args = parser.parse_args()
    print(write(args.users, args.path, args.seed, args.format))  # noqa: T201


if __name__ == "__main__":
    main()
