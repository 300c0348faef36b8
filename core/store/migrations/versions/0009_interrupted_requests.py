"""Interrupted requests: estimated ledger rows, and holds charged while the outcome is unknown

Revision ID: 0009
Revises: 0008

``requests.estimated`` marks a row whose cost is the held worst case of a request whose
outcome is unknown (status ``interrupted``). ``reservations.charged_micros`` is what an
orphaned hold was charged as spend, so a late settle can refund it for the real cost;
``reservations.trace`` names who and what the hold was for. Added in place: existing
rows read not estimated, nothing charged, no trace.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("estimated", sa.Boolean(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("charged_micros", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("trace", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_column("trace")
        batch_op.drop_column("charged_micros")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("estimated")
