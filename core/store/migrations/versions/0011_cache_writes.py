"""Prompt-cache writes on ledger rows, and estimated attempts

Revision ID: 0011
Revises: 0010

Anthropic bills prompt-cache writes above the input price (1.25x for 5 minutes, 2x for
an hour), so the ledger keeps how many prompt tokens were written and how many of those
for an hour, on requests and attempts. Usage Switchboard counted itself because the
provider reported none (or not the split of its writes) makes the cost an estimate: a
request says so in 0009's ``requests.estimated`` (one column, one meaning: the cost is
not the provider's figures, shown as estimated in analytics), and attempts gain the same
``estimated`` column here. Both tables may already hold rows: the columns are added in
place, old rows read 0 and false.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLES = ("requests", "attempts")


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: batch would copy ``requests`` on SQLite for the
    # Boolean, and dropping the old table cascades to every attempt row.
    for table in _TABLES:
        for column in ("cache_write_tokens", "cache_write_1h_tokens"):
            op.add_column(
                table, sa.Column(column, sa.Integer(), server_default=sa.text("0"), nullable=False)
            )
    op.add_column(
        "attempts",
        sa.Column("estimated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("attempts", "estimated")  # SQLite >= 3.35 drops in place
    for table in reversed(_TABLES):
        for column in ("cache_write_1h_tokens", "cache_write_tokens"):
            op.drop_column(table, column)
