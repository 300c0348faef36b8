"""Daily usage rollups and analytics settings (issue 7)

Revision ID: 0006
Revises: 0005

``usage_daily`` is filled from the existing ledger here, so a database upgraded with
requests already recorded starts with rollups that agree with its raw rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables
from core.store.histogram import LATENCY_COLUMNS, TTFT_COLUMNS

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_MEASURES = (
    "requests",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
    "cost_micros",
    "priced_requests",
    "priced_tokens",
    "unpriced_requests",
    "latency_sum_ms",
    "latency_n",
    "ttft_sum_ms",
    "ttft_n",
)


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _MEASURES),
        sa.Column("max_prompt_tokens", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in LATENCY_COLUMNS + TTFT_COLUMNS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_daily")),
        sa.UniqueConstraint(
            "day",
            "user_id",
            "team_id",
            "provider",
            "model",
            "task",
            "source",
            "status",
            name="usage_daily_key",
        ),
    )
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.create_index("ix_usage_daily_team_day", ["team_id", "day"], unique=False)
        batch_op.create_index("ix_usage_daily_user_day", ["user_id", "day"], unique=False)

    op.create_table(
        "analytics_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_analytics_settings")),
    )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_alert_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
        sa.UniqueConstraint("alert_id", name=op.f("uq_alert_deliveries_alert_id")),
    )

    # Requests recorded before this revision: roll them up once, in SQL.
    from core.store import rollups

    rollups.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("analytics_settings")
    with op.batch_alter_table("usage_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_daily_user_day")
        batch_op.drop_index("ix_usage_daily_team_day")
    op.drop_table("usage_daily")
