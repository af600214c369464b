"""Indexes that walk a list page in order: (who or what, newest first).

A page is ``WHERE owner = ? ORDER BY lot_id DESC LIMIT n``.  On an index of the owner
alone the database fetched every row of that owner and sorted them (SQLite: "USE TEMP
B-TREE FOR ORDER BY"), work that grows with a party's history.  On (owner, lot_id) it reads
the page's rows and stops.  The single-column indexes they replace were used only by these
pages; trades' (market) index went too, as (market, at_us) serves everything it did.  Each
insert touches one index fewer than before.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# table, column, newest-first key: (old index, new index)
PAGES = [
    ("bids", "owner", "bid_id"),
    ("lots", "owner", "lot_id"),
    ("lots", "state", "lot_id"),
    ("lots", "market", "lot_id"),
    ("trades", "buyer", "trade_id"),
    ("trades", "seller", "trade_id"),
    ("awards", "buyer", "lot_id"),
    ("awards", "seller", "lot_id"),
]


def upgrade() -> None:
    for table, column, key in PAGES:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
        op.create_index(f"ix_{table}_{column}_{key}", table, [column, key])
    op.drop_index("ix_trades_market", table_name="trades")


def downgrade() -> None:
    op.create_index("ix_trades_market", "trades", ["market"])
    for table, column, key in PAGES:
        op.drop_index(f"ix_{table}_{column}_{key}", table_name=table)
        op.create_index(f"ix_{table}_{column}", table, [column])
