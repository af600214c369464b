"""Pages of the read tables against a reference model, on SQLite (the reader thread) and on
a real PostgreSQL: the same rows, in the same order, with the same "more follow"."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from auction.accounts import Principal, Role
from auction.db import make_engine
from auction.journal import BIDS, LOTS, TRADES, Journal
from auction.migrate import upgrade
from auction.readtables import ReadTables, Where, bids_for, deals_for, lots_for

MARKETS = ["ebike:330522", "ebike:330502", "ebike:320582", "auto_black:330523", "auto_white:440106"]
OWNERS = ["store-1", "store-2", 'store "3" 门店', "recycler-1"]
STATES = ["open", "in_auction", "taking_offers", "awarded", "cancelled"]
KINDS = ["one_click", "auction", "offers"]
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
            "kind": rng.choice(KINDS),
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


ON_SALE = ("open", "in_auction", "taking_offers")


def someone(rng: random.Random) -> Principal:
    role: Role = rng.choice(["regulator", "recycler", "store", "admin"])
    regions = tuple(rng.sample(["3305", "330522", "3205", "44", "99"], rng.randint(0, 2)))
    name = rng.choice(OWNERS)
    return Principal(name, "ORG", role, regions=regions if role == "regulator" else ())


def sees(who: Principal, row: Row) -> bool:
    """The reference: whose rows one may read (DOMAIN.md's roles)."""
    if who.role == "admin":
        return True
    if who.role == "regulator":
        return any(f":{p}" in row["market"] for p in who.regions)
    if "owner" in row:
        return row["owner"] == who.id or (who.role == "recycler" and row["state"] in ON_SALE)
    return who.id in (row["buyer"], row["seller"])


def lot_query(rng: random.Random, where: Where) -> Check:
    """A random ``GET /v1/lots``: built by ``lots_for`` and as a Python check."""
    who = someone(rng)
    filters = {
        column: rng.choice(values)
        for column, values in (("market", MARKETS), ("state", STATES), ("kind", KINDS))
        if rng.random() < 0.3
    }
    lots_for(where, who, filters)
    return lambda r: sees(who, r) and all(r[c] == v for c, v in filters.items())


def trade_query(rng: random.Random, where: Where) -> Check:
    who = someone(rng)
    deals_for(where, who)
    return lambda r: sees(who, r)


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


Pages = dict[str, tuple[str, str, Where]]


def lots(who: Principal, **filters: str) -> tuple[str, str, Where]:
    return "lots", "lot_id", lots_for(Where(dollar=False), who, filters)


async def fill(path: Path, tables: dict[Any, list[Row]]) -> ReadTables:
    db = make_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(db)
    async with db.begin() as conn:
        for table, rows in tables.items():
            await conn.execute(insert(table), rows)
    reads = Journal(db).reads
    await db.dispose()
    return reads


def steps(path: Path, reads: ReadTables, pages: Pages) -> dict[str, int]:
    """SQLite's virtual machine steps (in hundreds) for a first page of 50 of each."""
    conn = sqlite3.connect(path)
    out = {}
    for name, (table, key, where) in pages.items():
        count = [0]

        def tick(count: list[int] = count) -> int:
            count[0] += 1
            return 0

        conn.set_progress_handler(tick, 100)
        rows = conn.execute(reads.sql(table, key, where, 51, 0), where.params).fetchone()
        assert len(json.loads(rows[0])) == 51, name
        out[name] = count[0]
    conn.close()
    return out


def assert_flat(small: dict[str, int], large: dict[str, int]) -> None:
    for name, before in small.items():
        assert large[name] < 1.5 * before + 50, (name, before, large[name])


def test_a_page_costs_the_same_with_ten_times_the_history(tmp_path: Path) -> None:
    """Each page the API asks for reads about its own rows, however long the parties'
    history: SQLite's work (virtual machine steps) for a first page of 50 stays flat from
    2,000 to 20,000 rows per table.  A regulator's page is left out: its regions are
    matched with LIKE, which walks the lots newest first until the page is full."""
    store = Principal("store-1", "S", "store")
    recycler = Principal("recycler-1", "R", "recycler")
    pages = {
        "a store's lots": lots(store),
        "a recycler's lots": lots(recycler),
        "lots in auction": lots(recycler, state="in_auction"),
        "my awarded lots": lots(recycler, state="awarded"),
        "a market's lots": lots(Principal("adm", "P", "admin"), market=MARKETS[0]),
        "my bids": ("bids", "bid_id", bids_for(Where(dollar=False), recycler, {})),
        "my trades": ("trades", "trade_id", deals_for(Where(dollar=False), recycler)),
    }

    def tables(n: int) -> dict[Any, list[Row]]:
        rng = random.Random(3)
        bids = [
            {"bid_id": i, "market": MARKETS[0], "owner": rng.choice(OWNERS), "org": "R",
             "price_fen_per_t": 1, "open_kg": 0, "min_lot_kg": 0, "state": "filled",
             "updated_seq": i}
            for i in range(1, n + 1)
        ]  # fmt: skip
        return {LOTS: lot_rows(rng, n), TRADES: trade_rows(rng, n), BIDS: bids}

    small = steps(tmp_path / "s.db", asyncio.run(fill(tmp_path / "s.db", tables(2_000))), pages)
    large = steps(tmp_path / "l.db", asyncio.run(fill(tmp_path / "l.db", tables(20_000))), pages)
    assert_flat(small, large)


def test_a_party_s_lots_by_state_or_market_read_its_own_lots(tmp_path: Path) -> None:
    """A store's awarded lots, or its lots in one market, are read along its own lots, not
    along every store's lots in that state or market: SQLite, without statistics, walked
    the state's index (6 ms for a store with no awarded lots in a load run's 16,000 lots,
    growing with the whole trade's history).  The same for a recycler's own lots in a
    state not on sale, and for lots on sale in one market: the lots on sale, not the
    market's history.  The party's own lots stay 60, the others' grow tenfold."""
    store = Principal("store-1", "S", "store")
    recycler = Principal("recycler-1", "R", "recycler")
    pages = {
        "a store's awarded lots": lots(store, state="awarded"),
        "a store's lots in a market": lots(store, market=MARKETS[0]),
        "a store's one-click lots": lots(store, kind="one_click"),
        "a recycler's own awarded lots": lots(recycler, state="awarded"),
        "lots in auction in a market": lots(recycler, state="in_auction", market=MARKETS[0]),
    }

    def tables(others: int) -> dict[Any, list[Row]]:
        ids = iter(range(1, 10**6))

        def lot(owner: str, state: str) -> Row:
            return {
                "lot_id": next(ids), "market": MARKETS[0], "owner": owner, "org": "O",
                "weight_kg": 100, "kind": "one_click", "state": state, "updated_seq": 1,
            }  # fmt: skip

        rows = [lot(owner, "awarded") for owner in ("store-1", "recycler-1") for _ in range(60)]
        rows += [lot("recycler-2", "in_auction") for _ in range(60)]
        # the whole trade's history, newer than the parties' own lots
        rows += [lot(f"store-{i % 50 + 2}", "awarded") for i in range(others)]
        return {LOTS: rows}

    small = steps(tmp_path / "s.db", asyncio.run(fill(tmp_path / "s.db", tables(2_000))), pages)
    large = steps(tmp_path / "l.db", asyncio.run(fill(tmp_path / "l.db", tables(20_000))), pages)
    assert_flat(small, large)
