"""The journal repository: group commits, replay, idempotency keys and the audit chain.

One ``Batch`` is what the runner applied since its last commit: journal rows (one per
command that changed the engine), their audit rows, idempotency answers and the read
table changes derived from the events.  ``commit`` writes all of it in one transaction:
either everything in the batch is durable, or nothing is.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from auction.db import (
    SQLITE_PRAGMAS,
    AuditRow,
    AwardRow,
    BidRow,
    BuyingPowerRow,
    DailyStatsRow,
    IdempotencyRow,
    JournalRow,
    LotRow,
    PriceRow,
    TradeRow,
    sqlite_path,
    table_of,
)
from auction.readtables import ReadTables

if TYPE_CHECKING:
    import asyncpg

GENESIS = "0" * 64

JOURNAL = table_of(JournalRow)
AUDIT = table_of(AuditRow)
IDEMPOTENCY = table_of(IdempotencyRow)
BIDS = table_of(BidRow)
LOTS = table_of(LotRow)
TRADES = table_of(TradeRow)
AWARDS = table_of(AwardRow)
BUYING_POWER = table_of(BuyingPowerRow)
PRICES = table_of(PriceRow)
DAILY_STATS = table_of(DailyStatsRow)


def to_us(when: datetime) -> int:
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def audit_hash(
    prev_hash: str, seq: int, at_us: int, principal: str | None, action: str, digest: str
) -> str:
    line = f"{prev_hash}|{seq}|{at_us}|{principal or ''}|{action}|{digest}"
    return hashlib.sha256(line.encode()).hexdigest()


_TABLES = {
    "journal": JOURNAL,
    "audit": AUDIT,
    "idempotency": IDEMPOTENCY,
    "bids": BIDS,
    "lots": LOTS,
    "trades": TRADES,
    "awards": AWARDS,
    "buying_power": BUYING_POWER,
    "prices": PRICES,
}
_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns) for name, table in _TABLES.items()
}
# the read tables a batch upserts: the key, and the columns a later batch changes
_UPSERTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lots": ("lot_id", ("state", "updated_seq")),
    "buying_power": ("bidder", ("limit_fen", "reserved_fen", "available_fen", "updated_seq")),
}
# a bid placed by an earlier batch: its new state (a null price keeps the old one)
_BID_UPDATE = ("price_fen_per_t", "open_kg", "state", "updated_seq", "bid_id")


def _tuples(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in rows]


def _on_conflict(key: str, updated: Sequence[str]) -> str:
    sets = ", ".join(f"{c} = excluded.{c}" for c in updated)
    return f" ON CONFLICT ({key}) DO UPDATE SET {sets}"


_WRITE_ORDER = ("journal", "audit", "idempotency", "bids", "bid_update", "lots", "trades",
                "awards", "prices", "buying_power")  # fmt: skip


def _columns(write: str) -> tuple[str, ...]:
    return _BID_UPDATE if write == "bid_update" else _COLUMNS[write]


def _writes(batch: Batch) -> dict[str, list[dict[str, Any]]]:
    """A batch's rows by what writes them, in ``_WRITE_ORDER``."""
    return {
        "journal": batch.journal,
        "audit": batch.audit,
        "idempotency": batch.idempotency,
        "bids": list(batch.new_bids.values()),
        "bid_update": [{**change, "bid_id": bid} for bid, change in batch.bid_updates.items()],
        "lots": list(batch.lots.values()),
        "trades": batch.trades,
        "awards": batch.awards,
        "prices": batch.prices,
        "buying_power": list(batch.buying_power.values()),
    }


def _pg_arrays(batch: Batch) -> list[list[Any]]:
    """``Journal._pg_statement``'s parameters: every table's rows, a list per column."""
    arrays: list[list[Any]] = []
    for write, rows in _writes(batch).items():
        arrays += [[row[c] for row in rows] for c in _columns(write)]
    return arrays


@dataclass
class Batch:
    journal: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    idempotency: list[dict[str, Any]] = field(default_factory=list)
    new_bids: dict[int, dict[str, Any]] = field(default_factory=dict)
    bid_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    lots: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    awards: list[dict[str, Any]] = field(default_factory=list)
    buying_power: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.journal or self.idempotency)


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    reason: str


class Journal:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite_path = sqlite_path(engine)
        self._writer: sqlite3.Connection | None = None
        self._sql = self._statements()
        # PostgreSQL: a batch is one statement, which is its own transaction, on the
        # writer's own connection (asyncpg's, opened at the first commit)
        self._pg_sql = self._pg_statement() if engine.dialect.name == "postgresql" else ""
        self._pg: asyncpg.Connection | None = None
        self.reads = ReadTables(engine, self._sqlite_path)

    # -- writing -----------------------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        """Everything in ``batch``, in one transaction.

        Plain driver-level SQL, prepared once: at thousands of rows a second,
        SQLAlchemy's per-row compilation and parameter processing cost more than the
        database's own work.

        SQLite: the whole batch runs on the event loop, on the writer's own ``sqlite3``
        connection, blocking it for the commit (~1-2 ms for a batch of 50 bids here, the
        fsync included).  Measured against a worker thread (one hop per batch) and
        aiosqlite (one hop per statement): a thread that releases the GIL at every
        SQLite call waits for the busy event loop to hand it back, so the commit stretched
        to 3-10 ms, and bids fell from 6.7 k/s to 4.3-5.3 k/s with p99 from 27 ms to
        100 ms (``loadtests/bench_http``).  PostgreSQL: asyncpg on the loop, the whole
        batch one statement (``_pg_statement``).
        """
        if not batch:
            return
        if self.engine.dialect.name == "postgresql":
            await self._commit_pg(batch)
        elif self._sqlite_path is not None:
            self._commit_sqlite(self._batch_statements(batch))
        else:  # an in-memory SQLite database: only on the engine's own connection
            async with self.engine.begin() as conn:
                for sql, rows in self._batch_statements(batch):
                    await conn.exec_driver_sql(sql, rows)

    def _batch_statements(self, batch: Batch) -> list[tuple[str, list[tuple[Any, ...]]]]:
        return [
            (self._sql[write], _tuples(rows, _columns(write)))
            for write, rows in _writes(batch).items()
            if rows
        ]

    def _commit_sqlite(self, statements: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
        if self._writer is None:
            assert self._sqlite_path is not None
            conn = sqlite3.connect(self._sqlite_path, isolation_level=None, check_same_thread=False)
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            self._writer = conn
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, rows in statements:
                conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # a connection that failed mid-commit is not trusted again
            conn.close()
            self._writer = None
            raise

    async def _commit_pg(self, batch: Batch) -> None:
        """No pool and no ping before each commit: under load every round trip waited
        ~4 ms for the busy event loop, and the pool's ping was one of two.  A connection
        that PostgreSQL closed (a restart) is seen closed here without asking, and
        replaced; one that breaks during the commit fails the batch (the runner refuses
        it and rebuilds), and is not used again."""
        conn = self._pg
        if conn is None or conn.is_closed():
            # connected by the dialect, as the engine's pool connects (``?ssl=...`` and
            # the adapter's own options included); asyncpg's connection is kept, not the
            # adapter around it
            dialect = self.engine.dialect
            args, options = dialect.create_connect_args(self.engine.url)
            adapted = await greenlet_spawn(dialect.connect, *args, **options)
            conn = self._pg = adapted.driver_connection
        try:
            await conn.execute(self._pg_sql, *_pg_arrays(batch))
        except BaseException:
            self._pg = None
            conn.terminate()
            raise

    def close(self) -> None:
        """Close the writer's own connection and the readers' (the engine is disposed by
        its owner)."""
        self.reads.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._pg is not None:
            self._pg.terminate()
            self._pg = None

    def _statements(self) -> dict[str, str]:
        """SQLite's statements, one per table, each run with ``executemany``."""

        def insert_sql(table: str) -> str:
            cols = _COLUMNS[table]
            return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

        out = {table: insert_sql(table) for table in _TABLES}
        for table, (key, updated) in _UPSERTS.items():
            out[table] += _on_conflict(key, updated)
        out["bid_update"] = (  # the parameters in _BID_UPDATE's order
            "UPDATE bids SET price_fen_per_t = COALESCE(?, price_fen_per_t), "
            "open_kg = ?, state = ?, updated_seq = ? WHERE bid_id = ?"
        )
        return out

    def _pg_statement(self) -> str:
        """PostgreSQL's: the whole batch in one statement of data-modifying CTEs, each
        table's rows passed as one array per column (``_pg_arrays``).  One round trip
        instead of BEGIN, a statement per table and COMMIT: each of those waited for the
        busy event loop to come round: a commit took 8-11 ms at pace 4 of the load run.  The
        CTEs see one snapshot, so no two of them may touch one row: the runner folds a
        bid placed and changed in one batch into its insert, and keys lots and buying
        power by id."""
        dialect = self.engine.dialect
        n = 0

        def unnest(table: str, cols: tuple[str, ...]) -> str:
            nonlocal n
            typed = []
            for c in cols:
                n += 1
                typed.append(f"${n}::{_TABLES[table].c[c].type.compile(dialect=dialect)}[]")
            return f"unnest({', '.join(typed)}) AS new({', '.join(cols)})"

        ctes = []
        for table in _WRITE_ORDER:
            if table == "bid_update":
                ctes.append(
                    "UPDATE bids SET price_fen_per_t = "
                    "COALESCE(new.price_fen_per_t, bids.price_fen_per_t), open_kg = new.open_kg, "
                    "state = new.state, updated_seq = new.updated_seq "
                    f"FROM {unnest('bids', _BID_UPDATE)} WHERE bids.bid_id = new.bid_id"
                )
                continue
            cols = ", ".join(_COLUMNS[table])
            sql = (
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {unnest(table, _COLUMNS[table])}"
            )
            if table in _UPSERTS:
                sql += _on_conflict(*_UPSERTS[table])
            ctes.append(sql)
        return "WITH " + ", ".join(f"w{i} AS ({c})" for i, c in enumerate(ctes)) + " SELECT 1"

    async def prune_idempotency(self, before_us: int) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(IDEMPOTENCY).where(IdempotencyRow.created_us < before_us)
            )
            return int(result.rowcount or 0)

    # -- reading -----------------------------------------------------------------------

    async def last_seq(self) -> int:
        async with self.engine.connect() as conn:
            value = (await conn.execute(select(func.max(JournalRow.seq)))).scalar()
            return int(value or 0)

    async def last_audit_hash(self) -> str:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1))
            ).first()
            return str(row[0]) if row else GENESIS

    async def rows(self, after: int = 0, chunk: int = 20_000) -> AsyncIterator[list[Any]]:
        """Journal rows ``(seq, at_us, command)`` after ``after``, in order, in chunks."""
        table = JOURNAL
        async with self.engine.connect() as conn:
            while True:
                result = await conn.execute(
                    select(table.c.seq, table.c.at_us, table.c.command)
                    .where(table.c.seq > after)
                    .order_by(table.c.seq)
                    .limit(chunk)
                )
                got = list(result.all())
                if not got:
                    return
                yield got
                after = got[-1][0]

    async def idempotency_keys(self, since_us: int) -> list[tuple[str, str, int]]:
        """``(principal, key, created_us)`` of keys created since ``since_us`` (the runner
        asks for a key's fingerprint and answer only when a request reuses it)."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(
                    IdempotencyRow.principal, IdempotencyRow.key, IdempotencyRow.created_us
                ).where(IdempotencyRow.created_us >= since_us)
            )
            return [(str(a), str(b), int(c)) for a, b, c in result.all()]

    async def idempotent_answer(self, principal: str, key: str) -> tuple[str, str] | None:
        """``(fingerprint, answer)`` stored for a key, if any."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(IdempotencyRow.fingerprint, IdempotencyRow.answer).where(
                        IdempotencyRow.principal == principal, IdempotencyRow.key == key
                    )
                )
            ).first()
            return (str(row[0]), str(row[1])) if row else None

    async def verify_audit(self) -> AuditProblem | None:
        """The first row where the chain breaks (or the journal disagrees), or None."""
        journal, audit = JOURNAL, AUDIT
        prev = GENESIS
        expected = 1
        async with self.engine.connect() as conn:
            # both ends in one statement first, then the chain up to them: a live service
            # commits meanwhile (each batch's journal and audit rows together), and rows
            # past these ends are for the next verification
            ends = select(
                select(func.max(journal.c.seq)).scalar_subquery(),
                select(func.max(audit.c.seq)).scalar_subquery(),
            )
            row = (await conn.execute(ends)).one()
            last, last_audit = row[0] or 0, row[1] or 0
            if last > last_audit:
                return AuditProblem(
                    last_audit + 1, f"journal row {last_audit + 1} has no audit row"
                )
            if last_audit > last:
                return AuditProblem(last + 1, "has no journal row")
            if not last:
                return None
            result = await conn.stream(
                select(
                    audit.c.seq, audit.c.at_us, audit.c.principal, audit.c.action,
                    audit.c.digest, audit.c.prev_hash, audit.c.hash, journal.c.command,
                )
                .select_from(audit.outerjoin(journal, journal.c.seq == audit.c.seq))
                .where(audit.c.seq <= last)
                .order_by(audit.c.seq)
            )  # fmt: skip
            async for seq, at_us, principal, action, digest, prev_hash, hash_, command in result:
                if seq != expected:
                    return AuditProblem(expected, f"row {expected} is missing (found {seq})")
                if prev_hash != prev:
                    return AuditProblem(seq, "does not follow the previous row's hash")
                if audit_hash(prev_hash, seq, at_us, principal, action, digest) != hash_:
                    return AuditProblem(seq, "its hash does not match its content")
                if command is None:
                    return AuditProblem(seq, "has no journal row")
                if hashlib.sha256(command.encode()).hexdigest() != digest:
                    return AuditProblem(seq, "its journal row was changed")
                prev = hash_
                expected += 1
            if last >= expected:
                return AuditProblem(expected, f"journal row {expected} has no audit row")
        return None
