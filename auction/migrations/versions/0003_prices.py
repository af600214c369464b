"""Published prices and each market's daily statistics.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("publisher", sa.String(200), nullable=False),
        sa.Column("price_fen_per_t", sa.BigInteger(), nullable=False),
        sa.Column("vat_included", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_prices_kind_key_day", "prices", ["kind", "key", "day"])
    op.create_table(
        "daily_stats",
        sa.Column("market", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("open_fen_per_t", sa.BigInteger()),
        sa.Column("high_fen_per_t", sa.BigInteger()),
        sa.Column("low_fen_per_t", sa.BigInteger()),
        sa.Column("last_fen_per_t", sa.BigInteger()),
        sa.Column("volume_kg", sa.BigInteger(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.Column("buyers", sa.BigInteger(), nullable=False),
        sa.Column("vwap_fen_per_t", sa.BigInteger()),
        sa.Column("settlement_fen_per_t", sa.BigInteger()),
        sa.Column("carried", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("daily_stats")
    op.drop_table("prices")
