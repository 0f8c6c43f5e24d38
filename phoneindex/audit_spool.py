"""Audit rows waiting to be written, and their spool on disk (keyed hashes, never a number).

A spool directory holds JSON-lines files read first in, first out. A process appends to its own
files; at shutdown what it could not write goes to one `left-*.jsonl` file, which the next
process on that database adopts (renaming it, so only one process takes it) and writes first.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from phoneindex.store import iso

LEFT_PREFIX = "left-"  # files a process left at shutdown, for the next one to adopt
OWN_PREFIX = "spool-"


@dataclass(frozen=True, slots=True)
class Row:
    """One audit row waiting to be written; `seq` -1 for rows adopted from another process."""

    seq: int
    at: datetime
    actor: str
    via: str
    phone_hash: str
    accounts: int

    def values(self) -> dict[str, Any]:
        """The row as audit_event values."""
        return {
            "at": self.at,
            "actor": self.actor,
            "via": self.via,
            "phone_hash": self.phone_hash,
            "accounts": self.accounts,
        }

    def dump(self) -> str:
        """One spool line."""
        return json.dumps(self.values() | {"at": iso(self.at), "seq": self.seq}) + "\n"

    @classmethod
    def load(cls, line: str, *, own: bool) -> Row:
        """A row from a spool line."""
        data = json.loads(line)
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
        seq = int(data["seq"]) if own else -1
        return cls(seq, at, data["actor"], data["via"], data["phone_hash"], int(data["accounts"]))


def default_spool_dir(engine: Engine) -> Path:
    """Next to a SQLite file; else a temp directory named after the database (no password)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(str(url.database))
        return db.with_name(db.name + ".audit-spool")
    name = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mfa-whois-audit-{name}"


class Spool:
    """Rows on disk, first in, first out: files left by earlier processes, then our own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rows = 0  # unwritten rows in the files
        self._files: deque[Path] = deque()
        self._adopted: set[Path] = set()
        self._offset = 0  # bytes of the first file already written to the database

    def adopt(self) -> int:
        """Take over the files earlier processes left (each only once); how many rows they hold."""
        if not self.directory.is_dir():
            return 0
        found = 0
        for path in sorted(self.directory.glob(f"{LEFT_PREFIX}*.jsonl")):
            mine = self.directory / f"{OWN_PREFIX}{uuid.uuid4().hex}.jsonl"
            try:
                path.rename(mine)  # atomic: if another process took it first, this fails
            except FileNotFoundError:
                continue
            with mine.open(encoding="utf-8") as lines:
                count = sum(1 for _ in lines)
            self._files.append(mine)
            self._adopted.add(mine)
            found += count
        self.rows += found
        return found

    def append(self, rows: list[Row]) -> None:
        """Add rows after every row already spooled."""
        if not self._files:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._files.append(self.directory / f"{OWN_PREFIX}{uuid.uuid4().hex}.jsonl")
        with self._files[-1].open("a", encoding="utf-8") as out:
            out.writelines(row.dump() for row in rows)
        self.rows += len(rows)

    def peek(self, limit: int) -> tuple[list[Row], int]:
        """The oldest spooled rows (at most `limit`) and where they end in the first file."""
        if not self._files:
            return [], 0
        path = self._files[0]
        own = path not in self._adopted
        rows: list[Row] = []
        with path.open(encoding="utf-8") as lines:
            lines.seek(self._offset)
            while len(rows) < limit and (line := lines.readline()):
                rows.append(Row.load(line, own=own))
            return rows, lines.tell()

    def advance(self, count: int, offset: int) -> None:
        """The rows `peek` gave are written: drop them (and the file once it is used up)."""
        self.rows -= count
        self._offset = offset
        path = self._files[0]
        if offset >= path.stat().st_size:
            self._files.popleft()
            self._adopted.discard(path)
            path.unlink(missing_ok=True)
            self._offset = 0

    def leave(self, older: list[Row]) -> Path | None:
        """At shutdown: `older` rows, then every unwritten spooled row, into one left-over file."""
        if not older and not self.rows:
            return None
        stem = f"{LEFT_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl"
        final = self.directory / stem
        partial = final.with_suffix(".partial")  # never adopted half-written
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as out:
            out.writelines(row.dump() for row in older)
            for index, path in enumerate(self._files):
                with path.open(encoding="utf-8") as lines:
                    lines.seek(self._offset if index == 0 else 0)
                    out.writelines(lines)
        partial.rename(final)
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()
        self._adopted.clear()
        self.rows, self._offset = 0, 0
        return final
