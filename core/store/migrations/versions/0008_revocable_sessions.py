"""Revocable sign-in sessions, per-address sign-in and gateway-token throttling

Revision ID: 0008
Revises: 0007

users.sessions_valid_after is NULL for every existing user: their sessions stay valid
until the next sign-out, password change or reset, deactivation or role change sets it.
login_failures.address is NULL for older rows, which count as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sessions_valid_after", sa.DateTime(), nullable=True))
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_login_failures_address_at", ["address", "at"], unique=False)
    op.create_table(
        "token_failure_windows",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("address", "window", name=op.f("pk_token_failure_windows")),
    )


def downgrade() -> None:
    op.drop_table("token_failure_windows")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_address_at")
        batch_op.drop_column("address")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("sessions_valid_after")
