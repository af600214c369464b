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
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

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


_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(c.name for c in table.columns)
    for name, table in (
        ("journal", JOURNAL),
        ("audit", AUDIT),
        ("idempotency", IDEMPOTENCY),
        ("bids", BIDS),
        ("lots", LOTS),
        ("trades", TRADES),
        ("awards", AWARDS),
        ("buying_power", BUYING_POWER),
        ("prices", PRICES),
    )
}


def _tuples(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in rows]


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
        self._sql = self._statements()
        self._sqlite_path = sqlite_path(engine)
        self._writer: sqlite3.Connection | None = None
        self.reads = ReadTables(engine, self._sqlite_path)

    # -- writing -----------------------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        """Everything in ``batch``, in one transaction.

        Plain driver-level ``executemany`` with prepared SQL: at thousands of rows a
        second, SQLAlchemy's per-row compilation and parameter processing cost more than
        the database's own work.  The SQL is the same on both databases but for the
        placeholders (``ON CONFLICT ... DO UPDATE`` is in SQLite and PostgreSQL alike).

        SQLite: the whole batch runs on the event loop, on the writer's own ``sqlite3``
        connection, blocking it for the commit (~1-2 ms for a batch of 50 bids here, the
        fsync included).  Measured against a worker thread (one hop per batch) and
        aiosqlite (one hop per statement): a thread that releases the GIL at every
        SQLite call waits for the busy event loop to hand it back, so the commit stretched
        to 3-10 ms, and bids fell from 6.7 k/s to 4.3-5.3 k/s with p99 from 27 ms to
        100 ms (``loadtests/bench_http``).  PostgreSQL: asyncpg on the loop, one
        transaction.
        """
        statements = self._batch_statements(batch)
        if not statements:
            return
        if self._sqlite_path is not None:
            self._commit_sqlite(statements)
            return
        async with self.engine.begin() as conn:
            for sql, rows in statements:
                await conn.exec_driver_sql(sql, rows)

    def _batch_statements(self, batch: Batch) -> list[tuple[str, list[tuple[Any, ...]]]]:
        sql = self._sql
        out: list[tuple[str, list[tuple[Any, ...]]]] = []
        if batch.journal:
            out.append((sql["journal"], _tuples(batch.journal, _COLUMNS["journal"])))
            out.append((sql["audit"], _tuples(batch.audit, _COLUMNS["audit"])))
        if batch.idempotency:
            out.append((sql["idempotency"], _tuples(batch.idempotency, _COLUMNS["idempotency"])))
        if batch.new_bids:
            out.append((sql["bids"], _tuples(batch.new_bids.values(), _COLUMNS["bids"])))
        if batch.bid_updates:
            rows = [
                (v["price_fen_per_t"], v["open_kg"], v["state"], v["updated_seq"], k)
                for k, v in batch.bid_updates.items()
            ]
            out.append((sql["bid_update"], rows))
        if batch.lots:
            out.append((sql["lots"], _tuples(batch.lots.values(), _COLUMNS["lots"])))
        if batch.trades:
            out.append((sql["trades"], _tuples(batch.trades, _COLUMNS["trades"])))
        if batch.awards:
            out.append((sql["awards"], _tuples(batch.awards, _COLUMNS["awards"])))
        if batch.prices:
            out.append((sql["prices"], _tuples(batch.prices, _COLUMNS["prices"])))
        if batch.buying_power:
            rows = _tuples(batch.buying_power.values(), _COLUMNS["buying_power"])
            out.append((sql["buying_power"], rows))
        return out

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

    def close(self) -> None:
        """Close the writer's own SQLite connection and the readers' (the engine is disposed
        by its owner)."""
        self.reads.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _statements(self) -> dict[str, str]:
        numbered = self.engine.dialect.paramstyle == "numeric_dollar"

        def marks(n: int, start: int = 1) -> str:
            if numbered:
                return ", ".join(f"${i}" for i in range(start, start + n))
            return ", ".join("?" * n)

        def insert_sql(table: str) -> str:
            cols = _COLUMNS[table]
            return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks(len(cols))})"

        def upsert_sql(table: str, key: str, updated: Sequence[str]) -> str:
            sets = ", ".join(f"{c} = excluded.{c}" for c in updated)
            return f"{insert_sql(table)} ON CONFLICT ({key}) DO UPDATE SET {sets}"

        p = marks(5).split(", ")
        return {
            "journal": insert_sql("journal"),
            "audit": insert_sql("audit"),
            "idempotency": insert_sql("idempotency"),
            "bids": insert_sql("bids"),
            "bid_update": (
                f"UPDATE bids SET price_fen_per_t = COALESCE({p[0]}, price_fen_per_t), "
                f"open_kg = {p[1]}, state = {p[2]}, updated_seq = {p[3]} WHERE bid_id = {p[4]}"
            ),
            "lots": upsert_sql("lots", "lot_id", ("state", "updated_seq")),
            "trades": insert_sql("trades"),
            "awards": insert_sql("awards"),
            "prices": insert_sql("prices"),
            "buying_power": upsert_sql(
                "buying_power",
                "bidder",
                ("limit_fen", "reserved_fen", "available_fen", "updated_seq"),
            ),
        }

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
