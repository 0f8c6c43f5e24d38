"""phone links: the linked identity that carries a number, and the MFA authenticator id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("phone_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("authenticator_id", sa.String(), nullable=True))
        batch_op.create_index("ix_phone_link_authenticator_id", ["authenticator_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("phone_link", schema=None) as batch_op:
        batch_op.drop_index("ix_phone_link_authenticator_id")
        batch_op.drop_column("authenticator_id")
        batch_op.drop_column("identity")
