"""Synthetic Auth0 bulk exports for benchmarks: N users, about a third with phone numbers.

    python benchmarks/synth.py 1000000 benchmarks/data/users-1000000.ndjson.gz

Shared numbers (families, front desks), passwordless and profile numbers, MFA flags and several
countries, in the shape Auth0 writes (NDJSON, gzip). Deterministic for a given N and seed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path

# (country calling code + prefix, digits to add): patterns libphonenumber accepts as valid.
PATTERNS = [
    ("+1212", 7), ("+1312", 7), ("+1415", 7), ("+1646", 7), ("+1718", 7), ("+1202", 7),
    ("+1305", 7), ("+1617", 7), ("+1206", 7), ("+1702", 7), ("+447700", 6), ("+447911", 6),
    ("+4915112", 7), ("+4917612", 7), ("+33612", 6), ("+33712", 6), ("+39347", 7),
    ("+5511987", 6), ("+9198", 8), ("+61412", 6), ("+8190", 8), ("+52155", 7),
]  # fmt: skip


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


def users(n: int, seed: int = 1) -> Iterator[str]:
    """N export lines, one at a time."""
    rnd = random.Random(seed)
    with_phone = n // 3
    pool = number_pool(max(1, int(with_phone * 0.8)), rnd)  # 20% of phone users share
    for i in range(n):
        created = f"202{rnd.randint(0, 5)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        sms = i % 3 == 0 and rnd.random() < 0.5
        uid = f"{'sms' if sms else 'auth0'}|{i:024x}"
        conn = "sms" if sms else "Username-Password-Authentication"
        user: dict[str, object] = {
            "user_id": uid,
            "email": None if sms else f"user{i}@example.com",
            "name": f"User {i}",
            "identities": [
                {"provider": "sms" if sms else "auth0", "connection": conn,
                 "user_id": uid.split("|")[1], "isSocial": False}
            ],
            "created_at": f"{created}T10:00:00.000Z",
            "last_login": f"2026-11-{rnd.randint(1, 27):02d}T08:{rnd.randint(0, 59):02d}:00.000Z",
            "logins_count": rnd.randint(1, 500),
            "blocked": rnd.random() < 0.01,
        }  # fmt: skip
        if i % 3 == 0:
            user["phone_number"] = rnd.choice(pool)
            user["phone_verified"] = rnd.random() < 0.9
        if rnd.random() < 0.2:
            user["multifactor"] = ["guardian"]
            user["multifactor_last_modified"] = f"{created}T11:00:00.000Z"
        yield json.dumps({k: v for k, v in user.items() if v is not None})


def write(n: int, path: Path, seed: int = 1) -> Path:
    """Write the gzipped NDJSON export (kept if already there)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as out:
        for line in users(n, seed):
            out.write(line + "\n")
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("users", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(write(args.users, args.path, args.seed))


if __name__ == "__main__":
    main()
