"""One contract for both price-state backends: in-process, and Redis (the real server,
the tests' own database number).  Each scenario is checked against a plain reference
computed here from the same prints, in random orders, with repeats."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from auction.catalogue import SettlementRule
from auction.prices import (
    POS_SHIFT,
    Aggregate,
    MemoryPrices,
    PriceStore,
    Print,
    Quote,
    Settlement,
    board,
    settle,
    vwap,
)
from auction.prices_redis import RedisPrices
from tests.conftest import redis_url

D1, D2 = "2026-11-27", "2026-11-28"


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], PriceStore]]:
    if request.param == "memory":
        yield MemoryPrices
    else:
        url = redis_url()
        yield lambda: RedisPrices(url, prefix="t:px")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _opened(make: Callable[[], PriceStore]) -> AsyncIterator[PriceStore]:
    store = make()
    try:
        yield store
    finally:
        if isinstance(store, RedisPrices):
            await store.close()


def prints(n: int, seed: int, day: str = D1) -> list[Print]:
    rng = random.Random(seed)
    out = []
    for seq in range(1, n + 1):
        for idx in range(rng.choice([1, 1, 1, 2, 3])):
            out.append(
                Print(
                    pos=seq * POS_SHIFT + idx,
                    day=day,
                    market=rng.choice(["ebike:330522", "ebike:330500", "auto_white:330522"]),
                    price_fen_per_t=rng.randrange(900_000, 1_100_000, 500),
                    weight_kg=rng.randrange(50, 5_000),
                    buyer=rng.choice(["r1", "r2", "r3"]),
                )
            )
    return out


def reference(ps: list[Print]) -> dict[str, Aggregate]:
    out: dict[str, Aggregate] = {}
    buyers: dict[str, set[str]] = {}
    for p in sorted({p.pos: p for p in ps}.values(), key=lambda p: p.pos):
        a = out.get(p.market)
        if a is None:
            out[p.market] = Aggregate(p.price_fen_per_t, p.price_fen_per_t, p.price_fen_per_t,
                                      p.price_fen_per_t, 0, 0, 0, 0, 0)  # fmt: skip
            a = out[p.market]
        a.high, a.low = max(a.high, p.price_fen_per_t), min(a.low, p.price_fen_per_t)
        a.last, a.pos = p.price_fen_per_t, p.pos
        a.volume_kg += p.weight_kg
        a.trades += 1
        a.notional += p.price_fen_per_t * p.weight_kg
        buyers.setdefault(p.market, set()).add(p.buyer)
        a.buyers = len(buyers[p.market])
    return out


@pytest.mark.parametrize("seed", range(5))
def test_statistics_equal_the_reference_whatever_the_batches_and_repeats(
    make_store: Callable[[], PriceStore], seed: int
) -> None:
    ps = prints(200, seed)
    rng = random.Random(seed)

    async def go() -> dict[str, Aggregate]:
        async for store in _opened(make_store):
            await store.clear()
            assert await store.day() is None
            assert await store.add_prints(ps[:3]) is False  # empty: nothing applied
            assert await store.start_day(D1) is False  # a day moves on, never from nothing
            assert await store.start_day(D1, create=True)
            i = 0
            while i < len(ps):  # journal order, in batches, some sent again (a replay)
                n = rng.randint(1, 20)
                assert await store.add_prints(ps[i : i + n])
                if rng.random() < 0.3:
                    assert await store.add_prints(ps[max(0, i - 10) : i + n])
                i += n
            day, aggs, _, _ = await store.read()
            assert day == D1
            return aggs
        raise AssertionError

    assert run(go()) == reference(ps)


def test_quotes_keep_the_newest_per_slot(make_store: Callable[[], PriceStore]) -> None:
    def q(pos: int, kind: str, key: str, price: int, publisher: str = "p") -> Quote:
        return Quote(pos, kind, key, publisher, price, kind == "end_of_chain", "t")

    async def go() -> list[Quote]:
        async for store in _opened(make_store):
            await store.clear()
            await store.start_day(D1, create=True)
            await store.add_quotes(
                [q(5, "daily", "ebike:330522", 100), q(3, "daily", "ebike:330522", 90)]
            )
            await store.add_quotes([q(4, "upstream", "ebike:330522", 80, "r1")])
            await store.add_quotes([q(6, "upstream", "ebike:330522", 85, "r2")])
            await store.add_quotes([q(2, "upstream", "ebike:330522", 70, "r1")])  # older: dropped
            await store.add_quotes([q(7, "end_of_chain", "lead", 1_650_000)])
            return (await store.read())[2]
        raise AssertionError

    held = {x.slot: x.price_fen_per_t for x in run(go())}
    assert held == {
        "daily|ebike:330522": 100,
        "upstream|ebike:330522|r1": 80,
        "upstream|ebike:330522|r2": 85,
        "end_of_chain|lead": 1_650_000,
    }


def test_a_new_day_starts_fresh_and_keeps_settlements(make_store: Callable[[], PriceStore]) -> None:
    day1, day2 = prints(50, 1, D1), prints(20, 2, D2)
    rule = SettlementRule(min_trades=3, min_buyers=2)

    async def go() -> tuple[Any, Any]:
        async for store in _opened(make_store):
            await store.clear()
            await store.start_day(D1, create=True)
            await store.add_prints(day1)
            await store.add_prints(day2)  # another day's prints are not today's
            snap1 = await store.read()
            closing = {m: settle(a, None, D1, rule) for m, a in snap1[1].items()}
            await store.set_settlements(closing)
            await store.start_day(D2)
            await store.add_prints(day2)
            return snap1, await store.read()
        raise AssertionError

    snap1, snap2 = run(go())
    assert snap1[1] == reference(day1)
    assert snap2[0] == D2 and snap2[1] == reference(day2)
    assert {m: s.price_fen_per_t for m, s in snap2[3].items()} == {
        m: vwap(a.notional, a.volume_kg) for m, a in reference(day1).items()
    }
    view = board(snap2, stale=False)
    for row in view.markets:
        prev = snap2[3][row.market].price_fen_per_t
        assert row.change_fen_per_t == row.last_fen_per_t - prev


def test_settlement_needs_enough_trades_and_buyers() -> None:
    rule = SettlementRule(min_trades=3, min_buyers=2)
    prev = Settlement(D1, 1_000_000, False)
    busy = Aggregate(1, 1, 1, 1, volume_kg=3000, trades=3, notional=3_000_000_000, buyers=2, pos=9)
    assert settle(busy, prev, D2, rule) == Settlement(D2, 1_000_000, False)
    one_buyer = Aggregate(1, 1, 1, 1, 3000, 5, 3_300_000_000, buyers=1, pos=9)
    assert settle(one_buyer, prev, D2, rule) == Settlement(D2, 1_000_000, True)
    assert settle(None, prev, D2, rule) == Settlement(D2, 1_000_000, True)
    assert settle(None, None, D2, rule) == Settlement(D2, None, True)
    assert vwap(2_500, 2) == 1_250 and vwap(5, 2) == 3  # half up


def test_the_index_weights_regions_by_volume_and_compares_with_lead() -> None:
    aggs = {
        "ebike:330522": Aggregate(1, 1, 1, 1_000_000, 1000, 1, 1_000_000 * 1000, 1, 1),
        "ebike:330500": Aggregate(1, 1, 1, 1_100_000, 3000, 1, 1_100_000 * 3000, 1, 2),
    }
    lead = Quote(3, "end_of_chain", "lead", "smm", 1_650_000, True, "t")
    view = board((D1, aggs, [lead], {}), stale=False)
    (index,) = view.indices
    assert index.index_fen_per_t == 1_075_000 and index.volume_kg == 4000
    assert index.lead_ratio == round(1_075_000 / 1_650_000, 4)
