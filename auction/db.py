"""The SQL schema and the database connection.  The journal is the system of record.

Tables:

* ``journal``: one row per command that changed the engine, with the writer's gapless
  sequence number, the instant it was applied and the command as JSON.  Append-only.
* ``audit``: one row per journal row, hash-chained (each row's hash covers the previous
  row's hash), written in the same transaction.
* ``idempotency``: (principal, key) -> fingerprint of the decoded command and the first
  answer; kept at least 24 h.
* read tables written from the events in the same transaction: ``bids``, ``lots``,
  ``trades``, ``awards``, ``buying_power``.

Times are stored as integer microseconds since the epoch (UTC), so that SQLite and
PostgreSQL compare and sort them the same way.

Durability: SQLite runs in WAL mode with ``synchronous=FULL`` (every commit is on disk
before it returns); PostgreSQL must have ``fsync`` and ``synchronous_commit`` on.  Start-up
refuses settings that lose committed data unless ``allow_unsafe`` says so (development).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import BigInteger, Boolean, Index, String, Table, Text, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from auction.errors import AuctionError


class UnsafeDatabase(AuctionError):
    """The database is configured to lose committed data."""


class Base(DeclarativeBase):
    pass


class JournalRow(Base):
    __tablename__ = "journal"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger)
    principal: Mapped[str | None] = mapped_column(String(200))
    idem_key: Mapped[str | None] = mapped_column(String(255))
    command: Mapped[str] = mapped_column(Text)


class AuditRow(Base):
    __tablename__ = "audit"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger)
    principal: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the journal row's command
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyRow(Base):
    __tablename__ = "idempotency"
    principal: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    answer: Mapped[str] = mapped_column(Text)
    created_us: Mapped[int] = mapped_column(BigInteger, index=True)


class BidRow(Base):
    __tablename__ = "bids"
    bid_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    market: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(200))
    org: Mapped[str] = mapped_column(String(200))
    price_fen_per_t: Mapped[int] = mapped_column(BigInteger)
    open_kg: Mapped[int] = mapped_column(BigInteger)
    min_lot_kg: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(32))
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class LotRow(Base):
    __tablename__ = "lots"
    lot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    market: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(200))
    org: Mapped[str] = mapped_column(String(200))
    weight_kg: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32))
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class TradeRow(Base):
    __tablename__ = "trades"
    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    at_us: Mapped[int] = mapped_column(BigInteger)
    market: Mapped[str] = mapped_column(String(64))
    bid_id: Mapped[int] = mapped_column(BigInteger)
    lot_id: Mapped[int] = mapped_column(BigInteger, index=True)
    buyer: Mapped[str] = mapped_column(String(200))
    seller: Mapped[str] = mapped_column(String(200))
    price_fen_per_t: Mapped[int] = mapped_column(BigInteger)
    weight_kg: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class AwardRow(Base):
    __tablename__ = "awards"
    lot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    at_us: Mapped[int] = mapped_column(BigInteger)
    market: Mapped[str] = mapped_column(String(64), index=True)
    buyer: Mapped[str] = mapped_column(String(200))
    seller: Mapped[str] = mapped_column(String(200))
    price_fen_per_t: Mapped[int] = mapped_column(BigInteger)
    weight_kg: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    deposit_fen: Mapped[int] = mapped_column(BigInteger)
    via: Mapped[str] = mapped_column(String(32))


class BuyingPowerRow(Base):
    __tablename__ = "buying_power"
    bidder: Mapped[str] = mapped_column(String(200), primary_key=True)
    limit_fen: Mapped[int] = mapped_column(BigInteger)
    reserved_fen: Mapped[int] = mapped_column(BigInteger)
    available_fen: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class PriceRow(Base):
    """Every published price (每日报价 / 上游报价 / 回收行情), in journal order."""

    __tablename__ = "prices"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[str] = mapped_column(String(10))  # Asia/Shanghai calendar day, YYYY-MM-DD
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    publisher: Mapped[str] = mapped_column(String(200))
    price_fen_per_t: Mapped[int] = mapped_column(BigInteger)
    vat_included: Mapped[bool] = mapped_column(Boolean)


class DailyStatsRow(Base):
    """A market's day, written when the day is over (Asia/Shanghai midnight)."""

    __tablename__ = "daily_stats"
    market: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    open_fen_per_t: Mapped[int | None] = mapped_column(BigInteger)
    high_fen_per_t: Mapped[int | None] = mapped_column(BigInteger)
    low_fen_per_t: Mapped[int | None] = mapped_column(BigInteger)
    last_fen_per_t: Mapped[int | None] = mapped_column(BigInteger)
    volume_kg: Mapped[int] = mapped_column(BigInteger)
    trades: Mapped[int] = mapped_column(BigInteger)
    buyers: Mapped[int] = mapped_column(BigInteger)
    vwap_fen_per_t: Mapped[int | None] = mapped_column(BigInteger)
    settlement_fen_per_t: Mapped[int | None] = mapped_column(BigInteger)
    carried: Mapped[bool] = mapped_column(Boolean)


class OrgRow(Base):
    __tablename__ = "orgs"
    org_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class PrincipalRow(Base):
    __tablename__ = "principals"
    principal_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    regions: Mapped[str] = mapped_column(String(1000))  # comma-separated region prefixes
    created_us: Mapped[int] = mapped_column(BigInteger)


class TokenRow(Base):
    __tablename__ = "tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(200), index=True)
    created_us: Mapped[int] = mapped_column(BigInteger)
    expires_us: Mapped[int | None] = mapped_column(BigInteger)
    revoked_us: Mapped[int | None] = mapped_column(BigInteger)


Index("ix_trades_market_at", TradeRow.market, TradeRow.at_us)
# list pages walk these newest first (migration 0004)
Index("ix_bids_owner_bid_id", BidRow.owner, BidRow.bid_id)
Index("ix_lots_owner_lot_id", LotRow.owner, LotRow.lot_id)
Index("ix_lots_state_lot_id", LotRow.state, LotRow.lot_id)
Index("ix_lots_market_lot_id", LotRow.market, LotRow.lot_id)
Index("ix_trades_buyer_trade_id", TradeRow.buyer, TradeRow.trade_id)
Index("ix_trades_seller_trade_id", TradeRow.seller, TradeRow.trade_id)
Index("ix_awards_buyer_lot_id", AwardRow.buyer, AwardRow.lot_id)
Index("ix_awards_seller_lot_id", AwardRow.seller, AwardRow.lot_id)
Index("ix_prices_kind_key_day", PriceRow.kind, PriceRow.key, PriceRow.day)


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=5000",
    # the writer's cache holds the index pages its inserts touch; the OS caches the rest
    # of the file.  32 MiB commits as fast as 128 MiB did (bench_journal, 100 k commands:
    # 7,505 and 8,820/s against 7,426 and 8,096/s) and, unlike it, is full long before a
    # day's tables outgrow it, so the process' memory stops growing early.
    "PRAGMA cache_size=-32768",  # 32 MiB, for the one writer connection (journal.py)
    "PRAGMA wal_autocheckpoint=8192",  # pages: fewer, larger checkpoints
)
# each pooled reader gets SQLite's default 2 MiB cache.  In WAL mode a connection drops
# its whole cache whenever another connection has written since its last read, which
# under load is every read: a reader's cache only ever holds one query's pages, and the
# OS caches the file for all of them.  Larger reader caches only grew RSS through a soak.
READER_CACHE = "PRAGMA cache_size=-2048"  # 2 MiB


def sqlite_path(engine: AsyncEngine) -> str | None:
    """The file of a SQLite engine (None for other databases or in-memory SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return database


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` with our durability settings applied on connect."""
    if is_sqlite(url):
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            for pragma in SQLITE_PRAGMAS:
                cur.execute(pragma)
            cur.execute(READER_CACHE)
            cur.close()

        return engine
    # PostgreSQL forks a server process per connection: under load the default pool (5,
    # overflow 10) opened and closed overflow connections all the time (py-spy: asyncpg's
    # connect in the engine process's profile, besides PostgreSQL's own forks)
    pool = {"pool_size": 20, "max_overflow": 10}
    return create_async_engine(url, pool_pre_ping=True, **(pool | kwargs))


async def begin_snapshot(conn: AsyncConnection) -> None:
    """Every read on ``conn`` until its rollback sees one moment of the database.

    PostgreSQL: a REPEATABLE READ transaction.  SQLite: an explicit ``BEGIN``, since the
    sqlite3 driver starts no transaction for reads, so each SELECT would see its own
    moment."""
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="REPEATABLE READ")
        await conn.begin()
    else:
        await conn.exec_driver_sql("BEGIN")


async def check_durability(engine: AsyncEngine, *, allow_unsafe: bool = False) -> list[str]:
    """Problems that could lose committed data; raises ``UnsafeDatabase`` unless allowed."""
    problems: list[str] = []
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            level = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
            if int(level) < 2:  # 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
                problems.append(f"SQLite synchronous={level} (need FULL)")
        elif engine.dialect.name == "postgresql":
            for setting in ("fsync", "synchronous_commit"):
                value = (await conn.execute(text(f"SHOW {setting}"))).scalar_one()
                if value == "off":
                    problems.append(f"PostgreSQL {setting}=off")
    if problems and not allow_unsafe:
        raise UnsafeDatabase(
            "refusing to run on settings that lose committed data: "
            + "; ".join(problems)
            + " (set AUCTION_ALLOW_UNSAFE_DURABILITY=1 for development only)"
        )
    return problems
