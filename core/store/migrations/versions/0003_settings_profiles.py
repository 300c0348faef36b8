"""Profiles, user preferences and settings (issue 4)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preference_refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preference_refusals")),
    )
    with op.batch_alter_table("preference_refusals", schema=None) as batch_op:
        batch_op.create_index("ix_preference_refusals_at", ["at"], unique=False)

    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("keys_choice", sa.String(length=16), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "keys_choice IN ('auto', 'own', 'shared')", name=op.f("ck_profiles_keys_choice")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_profiles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
        sa.UniqueConstraint("user_id", "name", name="profile_user_name"),
    )
    op.create_table(
        "profile_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_profile_routes_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_routes")),
        sa.UniqueConstraint("profile_id", "task", name="profile_task"),
    )


def downgrade() -> None:
    op.drop_table("profile_routes")
    op.drop_table("profiles")
    with op.batch_alter_table("preference_refusals", schema=None) as batch_op:
        batch_op.drop_index("ix_preference_refusals_at")
    op.drop_table("preference_refusals")
