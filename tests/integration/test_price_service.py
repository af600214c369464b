"""The price service over a real journal (SQLite), on both backends: the day rolls over at
Asia/Shanghai midnight; Redis flushed, killed or paused during trading never stops
trading, and the prices converge on what the journal says within 2 s of Redis being back.

The outage tests run their own ``redis-server`` on a free port (killing or pausing the
shared one would disturb everything else on the machine)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.util import await_only

from auction.catalogue import default_catalogue
from auction.clock import Clock, LiveClock, ManualClock
from auction.db import is_sqlite, make_engine
from auction.journal import DAILY_STATS
from auction.messages import (
    AnyCommand,
    AuctionStarted,
    BuyNow,
    PlaceBid,
    PublishPrice,
    SellLot,
    SetBuyingPower,
    StartAuction,
)
from auction.migrate import upgrade
from auction.prices import Board, MemoryPrices, PriceStore
from auction.prices_redis import RedisPrices
from auction.pricing import PriceService
from auction.runner import Runner
from auction.service import close_runner, open_runner
from auction.settings import Settings
from auction.types import MarketId, OrderId, OrgId, PrincipalId
from tests.conftest import redis_url, services_required
from tests.integration.crash import free_port

M1, M2 = MarketId("ebike:330522"), MarketId("auto_white:330500")
# 23:50 in Shanghai on 27 November
LATE = datetime(2026, 11, 27, 15, 50, tzinfo=UTC)


class Market:
    """A runner on its own SQLite journal with a price service next to it."""

    def __init__(self, runner: Runner, prices: PriceService) -> None:
        self.runner = runner
        self.prices = prices
        self.ids = 10_000
        self.stores = 0

    async def do(self, command: AnyCommand) -> None:
        await self.runner.submit(command)

    async def trade(self, market: MarketId, buyer: str, price: int, kg: int) -> None:
        self.ids += 2
        who = PrincipalId(buyer)
        bid = PlaceBid(bid_id=OrderId(0), market=market, owner=who, org=OrgId(buyer.upper()),
                       price_fen_per_t=price, qty_kg=kg)  # fmt: skip
        await self.do(bid)
        lot = SellLot(lot_id=OrderId(0), market=market, owner=PrincipalId("s1"), org=OrgId("S1"),
                      weight_kg=kg)  # fmt: skip
        await self.do(lot)

    async def converged(self, within_s: float) -> Board:
        """The service's board equals a board rebuilt from the journal alone."""
        truth = PriceService(MemoryPrices(), self.prices.db, self.prices.clock, self.prices.rule)
        await truth.rebuild()
        want = await truth.board()
        deadline = time.monotonic() + within_s
        while True:
            got = await self.prices.board()
            same = (got.markets, got.quotes, got.settlements) == (
                want.markets, want.quotes, want.settlements)  # fmt: skip
            if same and not got.stale:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"not converged in {within_s} s:\n{got}\n!=\n{want}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def market(
    tmp: Path, store: PriceStore, clock: Clock, database_url: str | None = None
) -> AsyncIterator[Market]:
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'j.db'}"
    if not is_sqlite(url):  # as `auction db upgrade` does before a PostgreSQL start
        db = make_engine(url)
        await upgrade(db)
        await db.dispose()
    settings = Settings(database_url=url, snapshot_path=None)
    runner, db = await open_runner(settings, clock)
    prices = PriceService(store, db, clock, default_catalogue().settlement, retry_s=0.05)
    runner.subscribe(prices.on_commit)
    writer = asyncio.create_task(runner.run())
    pricer = asyncio.create_task(prices.run())
    m = Market(runner, prices)
    try:
        for who in ("r1", "r2", "r3"):
            await m.do(SetBuyingPower(bidder=PrincipalId(who), limit_fen=10**13))
        yield m
    finally:
        pricer.cancel()
        await asyncio.gather(pricer, return_exceptions=True)
        if isinstance(store, RedisPrices):
            await store.close()
        await close_runner(runner, writer, db)


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], PriceStore]]:
    if request.param == "memory":
        yield MemoryPrices
    else:
        url = redis_url()
        yield lambda: RedisPrices(url, prefix="t:svc")


def test_the_day_rolls_over_at_shanghai_midnight(
    tmp_path: Path, make_store: Callable[[], PriceStore]
) -> None:
    async def go() -> None:
        clock = ManualClock(LATE)
        async with market(tmp_path, make_store(), clock) as m:
            await m.do(PublishPrice(kind="daily", key=M1, publisher=PrincipalId("p"),
                                    price_fen_per_t=1_000_000))  # fmt: skip
            for buyer, price, kg in (("r1", 1_000_000, 100), ("r2", 1_010_000, 300),
                                     ("r1", 990_000, 100)):  # fmt: skip
                await m.trade(M1, buyer, price, kg)
            await m.trade(M2, "r3", 1_020_000, 500)  # one buyer, one trade: carried (none)
            day1 = await m.converged(2)
            assert day1.day == "2026-11-27"
            (s1,) = [x for x in day1.markets if x.market == M1]
            assert (s1.open_fen_per_t, s1.high_fen_per_t, s1.low_fen_per_t, s1.last_fen_per_t) == (
                1_000_000, 1_010_000, 990_000, 990_000)  # fmt: skip
            assert s1.vwap_fen_per_t == 1_004_000 and s1.trades == 3 and s1.buyers == 2
            clock.advance(timedelta(minutes=10))  # 00:00 in Shanghai
            for _ in range(200):
                if (await m.prices.board()).day == "2026-11-28":
                    break
                await asyncio.sleep(0.01)
            day2 = await m.converged(2)
            assert day2.day == "2026-11-28" and day2.markets == []  # fresh
            assert day2.settlements[M1].price_fen_per_t == 1_004_000
            assert not day2.settlements[M1].carried
            assert day2.settlements[M2].carried and day2.settlements[M2].price_fen_per_t is None
            async with m.prices.db.connect() as conn:
                rows = (await conn.execute(select(DAILY_STATS))).mappings().all()
            by_market = {r["market"]: r for r in rows}
            assert by_market[M1]["day"] == "2026-11-27"
            assert by_market[M1]["settlement_fen_per_t"] == 1_004_000
            assert by_market[M1]["volume_kg"] == 500 and by_market[M1]["buyers"] == 2
            await m.trade(M1, "r2", 1_030_000, 100)  # the new day's first trade
            after = await m.converged(2)
            (s1,) = after.markets
            assert s1.open_fen_per_t == 1_030_000 and s1.change_fen_per_t == 26_000
            # a day with trades and no settling (nobody was running at its midnight) is
            # settled when the store is rebuilt
            clock.advance(timedelta(days=2))
            await m.prices.store.clear()
            later = await m.converged(2)
            assert later.settlements[M1].day == "2026-11-29"  # carried through the 29th
            assert later.settlements[M1].carried

    asyncio.run(go())


def test_flushed_store_is_rebuilt_while_trading_goes_on(
    tmp_path: Path, make_store: Callable[[], PriceStore]
) -> None:
    async def go() -> None:
        async with market(tmp_path, make_store(), LiveClock()) as m:
            rebuilt = 0
            for i in range(30):
                await m.trade(M1, f"r{1 + i % 3}", 1_000_000 + 1000 * i, 100)
                if i == 10:
                    await m.converged(2)
                    rebuilt = m.prices.rebuilds
                    await m.prices.store.clear()  # Redis FLUSHDB, or a restart without data
            board = await m.converged(2)
            assert board.markets[0].trades == 30
            assert m.prices.rebuilds > rebuilt

    asyncio.run(go())


def test_a_rebuild_reads_trades_and_awards_at_one_moment(tmp_path: Path, database_url: str) -> None:
    """A trade and then an award in one market, both committed while a rebuild is between
    its read of the trades and its read of the awards.  The store keeps one position per
    market and skips what is older: had the rebuild seen the award but not the trade, the
    queued trade would have been skipped for good and the day's figures stayed short."""

    async def go() -> None:
        async with market(tmp_path, MemoryPrices(), LiveClock(), database_url) as m:
            started = await m.runner.submit(
                StartAuction(lot_id=OrderId(0), market=M1, owner=PrincipalId("s1"),
                             org=OrgId("S1"), weight_kg=500, start_price_fen_per_t=900_000,
                             duration_s=600, buy_now_fen_per_t=1_200_000)
            )  # fmt: skip
            lot = next(e.lot_id for e in started.events if isinstance(e, AuctionStarted))
            await m.trade(M1, "r1", 1_000_000, 100)
            await m.converged(2)

            done = asyncio.Event()

            async def trade_then_award() -> None:
                await m.trade(M1, "r2", 1_010_000, 100)
                await m.do(BuyNow(lot_id=lot, bidder=PrincipalId("r3"), org=OrgId("R3")))
                done.set()

            armed = [True]

            def between_the_reads(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                if armed[0] and "ORDER BY awards.seq" in statement:
                    armed[0] = False
                    await_only(trade_then_award())

            sync_engine = m.prices.db.sync_engine
            event.listen(sync_engine, "before_cursor_execute", between_the_reads)
            try:
                await m.prices.store.clear()  # the next print finds it empty: a rebuild
                await m.trade(M1, "r1", 1_020_000, 100)
                await asyncio.wait_for(done.wait(), 5)
            finally:
                event.remove(sync_engine, "before_cursor_execute", between_the_reads)
            board = await m.converged(2)
            assert board.markets[0].trades == 4  # three trades and the award

    asyncio.run(go())


# -- a Redis of our own, to kill and to pause ----------------------------------------------


class OwnRedis:
    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if services_required():
                pytest.fail("redis-server is required (AUCTION_REQUIRE_SERVICES=1)")
            pytest.skip("no redis-server binary")
        self.binary = binary
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        for _ in range(200):
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.signal(signal.SIGCONT)
            server.kill()


async def timed_trades(m: Market, n: int, base: int) -> list[float]:
    took = []
    for i in range(n):
        t0 = time.perf_counter()
        await m.trade(M1, f"r{1 + i % 3}", base + 500 * (i % 20), 50)
        took.append(time.perf_counter() - t0)
        await asyncio.sleep(0.005)
    return took


def test_redis_killed_then_back(tmp_path: Path, own_redis: OwnRedis) -> None:
    async def go() -> None:
        async with market(tmp_path, RedisPrices(own_redis.url, prefix="k:px"), LiveClock()) as m:
            await timed_trades(m, 20, 1_000_000)
            await m.converged(2)
            own_redis.kill()
            await timed_trades(m, 30, 1_000_000)  # trading goes on without Redis
            assert (await m.prices.board()).stale
            own_redis.start()  # back, empty
            back = time.monotonic()
            board = await m.converged(2)
            assert time.monotonic() - back < 2
            assert board.markets[0].trades == 2 * 50 // 2

    asyncio.run(go())


def test_redis_paused_does_not_slow_bids(tmp_path: Path, own_redis: OwnRedis) -> None:
    async def go() -> dict[str, Any]:
        async with market(tmp_path, RedisPrices(own_redis.url, prefix="p:px"), LiveClock()) as m:
            before = await timed_trades(m, 60, 1_000_000)
            await m.converged(2)
            own_redis.signal(signal.SIGSTOP)
            paused_at = time.monotonic()
            during = []
            while time.monotonic() - paused_at < 5:
                during += await timed_trades(m, 10, 1_000_000)
            own_redis.signal(signal.SIGCONT)
            resumed = time.monotonic()
            await m.converged(2)
            return {"before": before, "during": during, "converged_s": time.monotonic() - resumed}

    out = asyncio.run(go())

    def p99(xs: list[float]) -> float:
        return sorted(xs)[int(len(xs) * 0.99)]

    # a trade is two durable commands; a paused Redis must not add to that
    assert p99(out["during"]) < max(0.05, 3 * p99(out["before"])), out
    assert out["converged_s"] < 2
