"""gateway tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:53:31.150597
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("kind", "subject", "period", name="once"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_at", ["at"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_kind", sa.String(length=8), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("masked", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", core.store.tables.UTCDateTime(), nullable=True),
        sa.Column("last_auth_failure_at", core.store.tables.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "owner_kind IN ('user', 'team', 'org')", name=op.f("ck_api_keys_owner_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("owner_kind", "owner_id", "provider", name="owner_provider"),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("limit_micros", sa.BigInteger(), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("spent_micros", sa.BigInteger(), nullable=False),
        sa.Column("reserved_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.CheckConstraint("scope IN ('user', 'team', 'provider')", name=op.f("ck_budgets_scope")),
        sa.CheckConstraint("limit_micros >= 0", name=op.f("ck_budgets_limit_nonnegative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint("scope", "scope_key", name="scope_key"),
    )
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("api_base", sa.String(length=512), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("supports_prefill", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('openai-compatible', 'override')", name=op.f("ck_endpoints_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_endpoints_name")),
    )
    op.create_table(
        "price_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("effective_from", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("input_micros_per_mtok", sa.BigInteger(), nullable=False),
        sa.Column("output_micros_per_mtok", sa.BigInteger(), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_overrides")),
        sa.UniqueConstraint("model_id", "effective_from", name="model_from"),
    )
    op.create_table(
        "rate_windows",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "window", name=op.f("pk_rate_windows")),
    )
    op.create_table(
        "requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("token_name", sa.String(length=64), nullable=True),
        sa.Column("requested_model", sa.String(length=200), nullable=False),
        sa.Column("served_model", sa.String(length=200), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("route_source", sa.String(length=32), nullable=False),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("order_reason", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        sa.Column("reasoning_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("priced", sa.Boolean(), nullable=False),
        sa.Column("price_version", sa.String(length=64), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("ttft_ms", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("fallback_used", sa.Boolean(), nullable=False),
        sa.Column("finish_reason", sa.String(length=32), nullable=True),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index("ix_requests_at", ["at"], unique=False)
        batch_op.create_index("ix_requests_served_model_at", ["served_model", "at"], unique=False)
        batch_op.create_index("ix_requests_status_at", ["status", "at"], unique=False)
        batch_op.create_index("ix_requests_team_at", ["team_id", "at"], unique=False)
        batch_op.create_index("ix_requests_user_at", ["user_id", "at"], unique=False)

    op.create_table(
        "routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("updated_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint("scope IN ('user', 'team', 'org')", name=op.f("ck_routes_scope")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routes")),
        sa.UniqueConstraint("scope", "scope_id", "task", name="scope_task"),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("key_source", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_class", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("ttft_ms", sa.Integer(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=True),
        sa.Column("priced", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_attempts_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
    )
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index("ix_attempts_model_at", ["model", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_attempts_request_id"), ["request_id"], unique=False)

    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("expires_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_reservations_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index("ix_reservations_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reservations_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "gateway_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", core.store.tables.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", core.store.tables.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", core.store.tables.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_gateway_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gateway_tokens_token_hash")),
        sa.UniqueConstraint("user_id", "name", name="user_name"),
    )
    op.create_table(
        "rate_limits",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("tokens_per_minute", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_rate_limits_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_rate_limits")),
    )


def downgrade() -> None:

    op.drop_table("rate_limits")
    op.drop_table("gateway_tokens")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservations_request_id"))
        batch_op.drop_index("ix_reservations_expires_at")

    op.drop_table("reservations")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempts_request_id"))
        batch_op.drop_index("ix_attempts_model_at")

    op.drop_table("attempts")
    op.drop_table("routes")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_user_at")
        batch_op.drop_index("ix_requests_team_at")
        batch_op.drop_index("ix_requests_status_at")
        batch_op.drop_index("ix_requests_served_model_at")
        batch_op.drop_index("ix_requests_at")

    op.drop_table("requests")
    op.drop_table("rate_windows")
    op.drop_table("price_overrides")
    op.drop_table("endpoints")
    op.drop_table("budgets")
    op.drop_table("api_keys")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_at")

    op.drop_table("alerts")
