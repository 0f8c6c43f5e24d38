"""SQLModel tables of the phone index and its bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Field, SQLModel

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC timestamps: `timestamptz` on PostgreSQL, fixed-width sortable text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where aware UTC is required")
        if dialect.name == "sqlite":
            # Fixed width, so text comparison in SQL orders like time does.
            return value.astimezone(UTC).isoformat(timespec="microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Account(SQLModel, table=True):
    """An Auth0 user as last seen by any source."""

    __tablename__ = "account"
    # SQLite: one b-tree keyed by user_id instead of a rowid table plus a key index.
    __table_args__ = {"sqlite_with_rowid": False}

    user_id: str = Field(sa_column=Column(Text, primary_key=True))
    email: str | None = None
    name: str | None = None
    connection: str | None = None
    blocked: bool = False
    created_at: datetime | None = _ts()
    last_login: datetime | None = _ts()
    logins_count: int | None = None
    multifactor: str | None = None  # comma-joined provider names, e.g. "guardian"
    multifactor_last_modified: datetime | None = _ts()
    # When the profile fields above were observed at the source (last writer wins).
    observed_at: datetime = _ts(nullable=False)
    # The latest time any source mentioned this account (an export sweep keeps newer ones).
    seen_at: datetime = _ts(nullable=False)
    deleted_at: datetime | None = _ts()
    # Enrichment bookkeeping: a fingerprint of `multifactor` now ("" without MFA) and when the
    # MFA numbers were last read; they differ when the numbers must be read again.
    mfa_key: str = ""
    mfa_fetched_key: str | None = None
    mfa_fetched_at: datetime | None = _ts()
    mfa_masked: int = 0
    refetch_requested_at: datetime | None = _ts(index=True)
    updated_at: datetime = _ts(nullable=False)
    # The re-read queue: `refetch_requested_at` is the earliest request still unanswered (the
    # account's place in the queue), `refetch_latest_at` the latest; only a read stamped at or
    # after the latest answers them. (Added in 0003, hence after `updated_at`.)
    refetch_latest_at: datetime | None = _ts()
    # Reads of this account that failed in a row, and when the next may be tried (backoff).
    read_failures: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    read_retry_at: datetime | None = _ts()


class PhoneLink(SQLModel, table=True):
    """One E.164 number linked to one account, with how and when; inactive rows are tombstones."""

    __tablename__ = "phone_link"
    # Keyed by phone first: a lookup is one range scan of the primary key (no rowid on SQLite).
    __table_args__ = (
        Index("ix_phone_link_user_id", "user_id"),
        Index("ix_phone_link_authenticator_id", "authenticator_id"),
        {"sqlite_with_rowid": False},
    )

    phone: str = Field(primary_key=True)
    user_id: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)  # mfa | passwordless | profile
    method: str | None = None  # sms | voice for mfa
    confirmed: bool | None = None
    # When the source that last said confirmed/unconfirmed observed it: a later event that does
    # not know (an SMS sent) keeps what an earlier one knew, whatever order they arrive in.
    confirmed_at: datetime | None = _ts()
    source: str  # export | authenticators | logs | action | live
    active: bool = True
    observed_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    # A linked identity's "{provider}|{user_id}" when the number is its (account linking), not
    # the account's own; None for the account's own number and for MFA numbers.
    identity: str | None = None
    # The MFA authenticator's id (`phone|dev_...`), so an enrollment delete finds its owner.
    authenticator_id: str | None = None


class SyncRun(SQLModel, table=True):
    """One full, enrich or incremental sync run."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_kind_status", "kind", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # full | enrich | incremental
    status: str  # queued | running | succeeded | failed
    requested_by: str
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()
    counts: str | None = Field(default=None, sa_column=Column(Text))  # JSON object
    error: str | None = Field(default=None, sa_column=Column(Text))


class Checkpoint(SQLModel, table=True):
    """Small named values: the log checkpoint, index freshness, alert state."""

    __tablename__ = "checkpoint"

    name: str = Field(primary_key=True)
    value: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime = _ts(nullable=False)


class Lease(SQLModel, table=True):
    """The single-writer lease: who holds it and until when."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True)
    holder: str
    run_id: int | None = None
    acquired_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)


class AuditEvent(SQLModel, table=True):
    """One lookup: who asked, through what, a keyed hash of the number, how many accounts."""

    __tablename__ = "audit_event"
    # The per-actor hourly limit counts one actor's recent rows.
    __table_args__ = (Index("ix_audit_event_actor_at", "actor", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts(nullable=False, index=True)
    actor: str
    via: str
    phone_hash: str
    accounts: int


class AppSecret(SQLModel, table=True):
    """Secrets generated once and kept in the database (the audit hashing key)."""

    __tablename__ = "app_secret"

    name: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts(nullable=False)


class ActionEvent(SQLModel, table=True):
    """An Auth0 Action event applied recently, by a hash of its id: a replay is not applied."""

    __tablename__ = "action_event"

    key: str = Field(primary_key=True)  # the first 32 hex digits of SHA-256 of the event id
    type: str  # user.registered | user.login | phone.message
    received_at: datetime = _ts(nullable=False, index=True)


class RequestBudget(SQLModel, table=True):
    """A request budget shared by every process (PostgreSQL; see phoneindex/budget.py).

    Times are seconds on the database's clock (epoch): the next free slot and the holds.
    """

    __tablename__ = "request_budget"

    name: str = Field(primary_key=True)
    next_at: float = 0.0
    hold_all: float = 0.0
    hold_bulk: float = 0.0


account_table = Account.__table__  # type: ignore[attr-defined]
link_table = PhoneLink.__table__  # type: ignore[attr-defined]
run_table = SyncRun.__table__  # type: ignore[attr-defined]
checkpoint_table = Checkpoint.__table__  # type: ignore[attr-defined]
lease_table = Lease.__table__  # type: ignore[attr-defined]
audit_table = AuditEvent.__table__  # type: ignore[attr-defined]
secret_table = AppSecret.__table__  # type: ignore[attr-defined]
action_event_table = ActionEvent.__table__  # type: ignore[attr-defined]
