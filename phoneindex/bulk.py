"""Pre-compiled statements run with the driver's executemany: the store's hot write path.

SQLAlchemy's per-row parameter processing costs more than SQLite's own work on a
million-row import, so the two upserts that carry bulk data are compiled once and fed
plain tuples whose timestamps are already in the column's storage form.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import Insert

Row = tuple[Any, ...]


def sqlite_timestamp(value: datetime | None) -> str | None:
    """The fixed-width text form UTCDateTime stores on SQLite (sortable as text)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given where aware UTC is required")
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _same(value: datetime | None) -> datetime | None:
    return value


def timestamp_converter(dialect: Dialect) -> Callable[[datetime | None], Any]:
    """How a timestamp is passed to this dialect's driver."""
    return sqlite_timestamp if dialect.name == "sqlite" else _same


class BulkStatement:
    """An INSERT ... ON CONFLICT compiled once for a fixed column order."""

    def __init__(self, stmt: Insert, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
        self.columns = tuple(columns)
        self.sql = str(compiled)
        self.positional = bool(dialect.positional)
        if self.positional and tuple(compiled.positiontup or ()) != self.columns:
            raise ValueError(f"statement parameters {compiled.positiontup} != {self.columns}")

    def run(self, conn: Connection, rows: Sequence[Row]) -> None:
        """executemany `rows` (tuples in `columns` order) in `conn`'s transaction."""
        if not rows:
            return
        if self.positional:
            conn.exec_driver_sql(self.sql, list(rows))
        else:
            conn.exec_driver_sql(self.sql, [dict(zip(self.columns, r, strict=True)) for r in rows])
