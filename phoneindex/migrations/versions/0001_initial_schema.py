"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import phoneindex.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("connection", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("created_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("logins_count", sa.Integer(), nullable=True),
        sa.Column("multifactor", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column(
            "multifactor_last_modified", phoneindex.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("observed_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("mfa_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("mfa_fetched_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("mfa_fetched_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("mfa_masked", sa.Integer(), nullable=False),
        sa.Column(
            "refetch_requested_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("updated_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_account_refetch_requested_at"), ["refetch_requested_at"], unique=False
        )

    op.create_table(
        "app_secret",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("phone_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)

    op.create_table(
        "checkpoint",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("updated_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "lease",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("acquired_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "phone_link",
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=True),
        sa.Column("confirmed_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("observed_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", phoneindex.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone", "user_id", "kind"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("phone_link", schema=None) as batch_op:
        batch_op.create_index("ix_phone_link_user_id", ["user_id"], unique=False)

    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("started_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", phoneindex.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index("ix_sync_run_kind_status", ["kind", "status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_run_kind_status")

    op.drop_table("sync_run")
    with op.batch_alter_table("phone_link", schema=None) as batch_op:
        batch_op.drop_index("ix_phone_link_user_id")

    op.drop_table("phone_link")
    op.drop_table("lease")
    op.drop_table("checkpoint")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_index("ix_audit_event_actor_at")

    op.drop_table("audit_event")
    op.drop_table("app_secret")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_refetch_requested_at"))

    op.drop_table("account")
