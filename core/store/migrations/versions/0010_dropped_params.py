"""Request fields dropped for a model that does not take them (``drop_params``)

Revision ID: 0010
Revises: 0009

Added in place to a table that may hold rows: requests before this revision read NULL,
as does every request that dropped nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dropped_params", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("dropped_params")
