"""Comparison sessions, rounds, answers and votes (issue 6)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compare_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("fallbacks", sa.Boolean(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_compare_sessions_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compare_sessions")),
    )
    with op.batch_alter_table("compare_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_compare_sessions_owner_created", ["owner_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_compare_sessions_team_id"), ["team_id"], unique=False)

    op.create_table(
        "compare_model_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_compare_model_sets_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compare_model_sets")),
        sa.UniqueConstraint("owner_id", "name", name="owner_name"),
    )

    op.create_table(
        "compare_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("label_seed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('turn', 'batch')", name=op.f("ck_compare_rounds_kind")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["compare_sessions.id"],
            name=op.f("fk_compare_rounds_session_id_compare_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compare_rounds")),
        sa.UniqueConstraint("session_id", "seq", name="session_seq"),
    )
    with op.batch_alter_table("compare_rounds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_compare_rounds_session_id"), ["session_id"], unique=False
        )

    op.create_table(
        "compare_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=1), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("served_model", sa.String(length=200), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("priced", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("ttft_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["compare_rounds.id"],
            name=op.f("fk_compare_answers_round_id_compare_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compare_answers")),
        sa.UniqueConstraint("round_id", "model", name="round_model"),
    )
    with op.batch_alter_table("compare_answers", schema=None) as batch_op:
        batch_op.create_index("ix_compare_answers_model_at", ["model", "created_at"], unique=False)

    op.create_table(
        "compare_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.Column("winner", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", core.store.tables.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "choice IN ('best', 'tie', 'all_bad')", name=op.f("ck_compare_votes_choice")
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["compare_rounds.id"],
            name=op.f("fk_compare_votes_round_id_compare_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_compare_votes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compare_votes")),
        sa.UniqueConstraint("round_id", "user_id", name="round_user"),
    )
    with op.batch_alter_table("compare_votes", schema=None) as batch_op:
        batch_op.create_index("ix_compare_votes_team_at", ["team_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("compare_votes", schema=None) as batch_op:
        batch_op.drop_index("ix_compare_votes_team_at")
    op.drop_table("compare_votes")
    with op.batch_alter_table("compare_answers", schema=None) as batch_op:
        batch_op.drop_index("ix_compare_answers_model_at")
    op.drop_table("compare_answers")
    with op.batch_alter_table("compare_rounds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compare_rounds_session_id"))
    op.drop_table("compare_rounds")
    op.drop_table("compare_model_sets")
    with op.batch_alter_table("compare_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compare_sessions_team_id"))
        batch_op.drop_index("ix_compare_sessions_owner_created")
    op.drop_table("compare_sessions")
