"""The journal repository: group commits, replay, idempotency keys and the audit chain.

One ``Batch`` is what the runner applied since its last commit: journal rows (one per
command that changed the engine), their audit rows, idempotency answers and the read
table changes derived from the events.  ``commit`` writes all of it in one transaction:
either everything in the batch is durable, or nothing is.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from auction.db import (
    AuditRow,
    AwardRow,
    BidRow,
    BuyingPowerRow,
    IdempotencyRow,
    JournalRow,
    LotRow,
    TradeRow,
    table_of,
)

GENESIS = "0" * 64

JOURNAL = table_of(JournalRow)
AUDIT = table_of(AuditRow)
IDEMPOTENCY = table_of(IdempotencyRow)
BIDS = table_of(BidRow)
LOTS = table_of(LotRow)
TRADES = table_of(TradeRow)
AWARDS = table_of(AwardRow)
BUYING_POWER = table_of(BuyingPowerRow)


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

    def __bool__(self) -> bool:
        return bool(self.journal or self.idempotency)


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    reason: str


class Journal:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- writing -----------------------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        async with self.engine.begin() as conn:
            if batch.journal:
                await conn.execute(insert(JOURNAL), batch.journal)
                await conn.execute(insert(AUDIT), batch.audit)
            if batch.idempotency:
                await conn.execute(insert(IDEMPOTENCY), batch.idempotency)
            if batch.new_bids:
                await conn.execute(insert(BIDS), list(batch.new_bids.values()))
            if batch.bid_updates:
                table = BIDS
                stmt = (
                    update(table)
                    .where(table.c.bid_id == bindparam("b_id"))
                    .values(
                        price_fen_per_t=func.coalesce(
                            bindparam("price_fen_per_t"), table.c.price_fen_per_t
                        ),
                        open_kg=bindparam("open_kg"),
                        state=bindparam("state"),
                        updated_seq=bindparam("updated_seq"),
                    )
                )
                rows = [{"b_id": k, **v} for k, v in batch.bid_updates.items()]
                await conn.execute(stmt, rows)
            if batch.lots:
                await conn.execute(
                    self._upsert(LOTS, "lot_id", ("state", "updated_seq")),
                    list(batch.lots.values()),
                )
            if batch.trades:
                await conn.execute(insert(TRADES), batch.trades)
            if batch.awards:
                await conn.execute(insert(AWARDS), batch.awards)
            if batch.buying_power:
                await conn.execute(
                    self._upsert(
                        BUYING_POWER,
                        "bidder",
                        ("limit_fen", "reserved_fen", "available_fen", "updated_seq"),
                    ),
                    list(batch.buying_power.values()),
                )

    def _upsert(self, table: Any, key: str, columns: Sequence[str]) -> Any:
        stmt = self._insert(table)
        return stmt.on_conflict_do_update(
            index_elements=[key], set_={c: getattr(stmt.excluded, c) for c in columns}
        )

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

    async def idempotency_keys(self, since_us: int) -> list[tuple[str, str, str, int]]:
        """``(principal, key, fingerprint, created_us)`` of keys created since ``since_us``."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(
                    IdempotencyRow.principal,
                    IdempotencyRow.key,
                    IdempotencyRow.fingerprint,
                    IdempotencyRow.created_us,
                ).where(IdempotencyRow.created_us >= since_us)
            )
            return [(str(a), str(b), str(c), int(d)) for a, b, c, d in result.all()]

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
            result = await conn.stream(
                select(
                    audit.c.seq, audit.c.at_us, audit.c.principal, audit.c.action,
                    audit.c.digest, audit.c.prev_hash, audit.c.hash, journal.c.command,
                )
                .select_from(audit.outerjoin(journal, journal.c.seq == audit.c.seq))
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
            last = (await conn.execute(select(func.max(journal.c.seq)))).scalar()
            if last is not None and last >= expected:
                return AuditProblem(expected, f"journal row {expected} has no audit row")
        return None
