"""Profiles, user preferences and settings (issue 4)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preference_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", core.models.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preference_refusals")),
    )
    with op.batch_alter_table("preference_refusals", schema=None) as batch_op:
        batch_op.create_index("ix_preference_refusals_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("preference_refusals", schema=None) as batch_op:
        batch_op.drop_index("ix_preference_refusals_at")
    op.drop_table("preference_refusals")
