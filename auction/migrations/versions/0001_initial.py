"""The journal, audit chain, idempotency keys and read tables.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG = sa.BigInteger()


def _s(n: int) -> sa.String:
    return sa.String(n)


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("seq", BIG, primary_key=True, autoincrement=False),
        sa.Column("at_us", BIG, nullable=False),
        sa.Column("principal", _s(200)),
        sa.Column("idem_key", _s(255)),
        sa.Column("command", sa.Text(), nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("seq", BIG, primary_key=True, autoincrement=False),
        sa.Column("at_us", BIG, nullable=False),
        sa.Column("principal", _s(200)),
        sa.Column("action", _s(64), nullable=False),
        sa.Column("digest", _s(64), nullable=False),
        sa.Column("prev_hash", _s(64), nullable=False),
        sa.Column("hash", _s(64), nullable=False),
    )
    op.create_table(
        "idempotency",
        sa.Column("principal", _s(200), primary_key=True),
        sa.Column("key", _s(255), primary_key=True),
        sa.Column("fingerprint", _s(64), nullable=False),
        sa.Column("seq", BIG),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_us", BIG, nullable=False),
    )
    op.create_index("ix_idempotency_created_us", "idempotency", ["created_us"])
    op.create_table(
        "bids",
        sa.Column("bid_id", BIG, primary_key=True, autoincrement=False),
        sa.Column("market", _s(64), nullable=False),
        sa.Column("owner", _s(200), nullable=False),
        sa.Column("org", _s(200), nullable=False),
        sa.Column("price_fen_per_t", BIG, nullable=False),
        sa.Column("open_kg", BIG, nullable=False),
        sa.Column("min_lot_kg", BIG, nullable=False),
        sa.Column("state", _s(32), nullable=False),
        sa.Column("updated_seq", BIG, nullable=False),
    )
    op.create_index("ix_bids_market", "bids", ["market"])
    op.create_index("ix_bids_owner", "bids", ["owner"])
    op.create_table(
        "lots",
        sa.Column("lot_id", BIG, primary_key=True, autoincrement=False),
        sa.Column("market", _s(64), nullable=False),
        sa.Column("owner", _s(200), nullable=False),
        sa.Column("org", _s(200), nullable=False),
        sa.Column("weight_kg", BIG, nullable=False),
        sa.Column("kind", _s(16), nullable=False),
        sa.Column("state", _s(32), nullable=False),
        sa.Column("updated_seq", BIG, nullable=False),
    )
    op.create_index("ix_lots_market", "lots", ["market"])
    op.create_index("ix_lots_owner", "lots", ["owner"])
    op.create_index("ix_lots_state", "lots", ["state"])
    op.create_table(
        "trades",
        sa.Column("trade_id", BIG, primary_key=True, autoincrement=False),
        sa.Column("seq", BIG, nullable=False),
        sa.Column("at_us", BIG, nullable=False),
        sa.Column("market", _s(64), nullable=False),
        sa.Column("bid_id", BIG, nullable=False),
        sa.Column("lot_id", BIG, nullable=False),
        sa.Column("buyer", _s(200), nullable=False),
        sa.Column("seller", _s(200), nullable=False),
        sa.Column("price_fen_per_t", BIG, nullable=False),
        sa.Column("weight_kg", BIG, nullable=False),
        sa.Column("amount_fen", BIG, nullable=False),
    )
    op.create_index("ix_trades_market", "trades", ["market"])
    op.create_index("ix_trades_lot_id", "trades", ["lot_id"])
    op.create_index("ix_trades_buyer", "trades", ["buyer"])
    op.create_index("ix_trades_seller", "trades", ["seller"])
    op.create_index("ix_trades_market_at", "trades", ["market", "at_us"])
    op.create_table(
        "awards",
        sa.Column("lot_id", BIG, primary_key=True, autoincrement=False),
        sa.Column("seq", BIG, nullable=False),
        sa.Column("at_us", BIG, nullable=False),
        sa.Column("market", _s(64), nullable=False),
        sa.Column("buyer", _s(200), nullable=False),
        sa.Column("seller", _s(200), nullable=False),
        sa.Column("price_fen_per_t", BIG, nullable=False),
        sa.Column("weight_kg", BIG, nullable=False),
        sa.Column("amount_fen", BIG, nullable=False),
        sa.Column("deposit_fen", BIG, nullable=False),
        sa.Column("via", _s(32), nullable=False),
    )
    op.create_index("ix_awards_market", "awards", ["market"])
    op.create_index("ix_awards_buyer", "awards", ["buyer"])
    op.create_index("ix_awards_seller", "awards", ["seller"])
    op.create_table(
        "buying_power",
        sa.Column("bidder", _s(200), primary_key=True),
        sa.Column("limit_fen", BIG, nullable=False),
        sa.Column("reserved_fen", BIG, nullable=False),
        sa.Column("available_fen", BIG, nullable=False),
        sa.Column("updated_seq", BIG, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "buying_power",
        "awards",
        "trades",
        "lots",
        "bids",
        "idempotency",
        "audit",
        "journal",
    ):
        op.drop_table(table)
