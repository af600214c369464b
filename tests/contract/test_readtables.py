"""Pages of the read tables against a reference model, on SQLite (the reader thread) and on
a real PostgreSQL: the same rows, in the same order, with the same "more follow"."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert

from auction.db import make_engine
from auction.journal import LOTS, TRADES, Journal
from auction.migrate import upgrade
from auction.readtables import Where

MARKETS = ["ebike:330522", "ebike:330502", "ebike:320582", "auto_black:330523", "auto_white:440106"]
OWNERS = ["store-1", "store-2", 'store "3" 门店', "recycler-1"]
STATES = ["open", "in_auction", "taking_offers", "awarded", "cancelled"]
Row = dict[str, Any]
Check = Callable[[Row], bool]


def lot_rows(rng: random.Random, n: int) -> list[Row]:
    return [
        {
            "lot_id": i,
            "market": rng.choice(MARKETS),
            "owner": rng.choice(OWNERS),
            "org": "ORG",
            "weight_kg": rng.randint(1, 10**6),
            "kind": rng.choice(["one_click", "auction", "offers"]),
            "state": rng.choice(STATES),
            "updated_seq": rng.randint(1, 10**9),
        }
        for i in rng.sample(range(1, 10 * n), n)
    ]


def trade_rows(rng: random.Random, n: int) -> list[Row]:
    return [
        {
            "trade_id": i,
            "seq": i,
            "at_us": 1_795_000_000_000_000 + i,
            "market": rng.choice(MARKETS),
            "bid_id": i,
            "lot_id": i,
            "buyer": rng.choice(OWNERS),
            "seller": rng.choice(OWNERS),
            "price_fen_per_t": rng.randint(1, 2**40),
            "weight_kg": rng.randint(1, 10**6),
            "amount_fen": rng.randint(1, 2**52),
        }
        for i in rng.sample(range(1, 10 * n), n)
    ]


def equal_to(column: str, value: Any) -> Check:
    return lambda r: bool(r[column] == value)


def lot_query(rng: random.Random, where: Where) -> Check:
    """A random list_lots condition, built on ``where`` and as a Python check."""
    checks: list[Check] = []
    who = rng.choice(["regulator", "recycler", "store", "admin"])
    if who == "regulator":
        regions = rng.sample(["3305", "330522", "3205", "44", "99"], rng.randint(0, 2))
        where.any_of([f"market LIKE {where.param(f'%:{r}%')}" for r in regions])
        checks.append(lambda r: any(f":{p}" in r["market"] for p in regions))
    elif who == "recycler":
        on_sale = ("open", "in_auction", "taking_offers")
        marks = ", ".join(where.param(s) for s in on_sale)
        where.any_of([f"owner = {where.param('recycler-1')}", f"state IN ({marks})"])
        checks.append(lambda r: r["owner"] == "recycler-1" or r["state"] in on_sale)
    elif who == "store":
        owner = rng.choice(OWNERS)
        where.equals("owner", owner)
        checks.append(lambda r: r["owner"] == owner)
    for column, values in (("market", MARKETS), ("state", STATES)):
        if rng.random() < 0.3:
            value = rng.choice(values)
            where.equals(column, value)
            checks.append(equal_to(column, value))
    return lambda r: all(check(r) for check in checks)


def trade_query(rng: random.Random, where: Where) -> Check:
    me = rng.choice(OWNERS)
    where.any_of([f"{side} = {where.param(me)}" for side in ("buyer", "seller")])
    return lambda r: me in (r["buyer"], r["seller"])


def test_pages_match_the_reference_model(database_url: str) -> None:
    async def body() -> None:
        rng = random.Random(20261127)
        db = make_engine(database_url)
        await upgrade(db)
        journal = Journal(db)
        tables = {"lots": lot_rows(rng, 300), "trades": trade_rows(rng, 300)}
        async with db.begin() as conn:
            await conn.execute(insert(LOTS), tables["lots"])
            await conn.execute(insert(TRADES), tables["trades"])
        cases = [("lots", "lot_id", lot_query), ("trades", "trade_id", trade_query)]
        try:
            for _ in range(60):
                table, key, make = rng.choice(cases)
                where = journal.reads.where()
                check = make(rng, where)
                limit, offset = rng.randint(1, 60), rng.choice([0, 0, rng.randint(0, 200)])
                got, more = await journal.reads.page(table, key, where, limit, offset)
                expected = sorted(
                    (r for r in tables[table] if check(r)), key=lambda r: r[key], reverse=True
                )
                assert got == expected[offset : offset + limit]
                assert more == (len(expected) > offset + limit)
            # many at once, as the web process asks: each answer is its own
            pages = await asyncio.gather(
                *(
                    journal.reads.page("lots", "lot_id", journal.reads.where(), n, 0)
                    for n in range(1, 30)
                )
            )
            newest = sorted(tables["lots"], key=lambda r: r["lot_id"], reverse=True)
            assert [rows for rows, _ in pages] == [newest[:n] for n in range(1, 30)]
        finally:
            journal.close()
            await db.dispose()

    asyncio.run(body())


def test_a_page_with_no_rows(database_url: str) -> None:
    async def body() -> None:
        db = make_engine(database_url)
        await upgrade(db)
        journal = Journal(db)
        where = journal.reads.where()
        where.any_of([])  # a regulator with no regions sees nothing
        try:
            assert await journal.reads.page("awards", "lot_id", where, 50, 0) == ([], False)
            assert await journal.reads.page("bids", "bid_id", journal.reads.where(), 50, 0) == (
                [],
                False,
            )
        finally:
            journal.close()
            await db.dispose()

    asyncio.run(body())
