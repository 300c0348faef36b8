"""Per-attempt cached/reasoning tokens and price version; request metadata

Revision ID: 0007
Revises: 0006

Both tables may already hold rows, so the new columns are added in place (no table
copy on SQLite): attempts recorded before this revision read 0 cached and reasoning
tokens and no price version, and requests before it carry no metadata (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cached_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("reasoning_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("price_version", sa.String(length=64), nullable=True))
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("request_metadata", sa.JSON(none_as_null=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("request_metadata")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("price_version")
        batch_op.drop_column("reasoning_tokens")
        batch_op.drop_column("cached_tokens")
