"""The runner fires deadlines through the injected clock, on time and in order."""

import asyncio
from datetime import UTC, datetime, timedelta

from auction.clock import ManualClock
from auction.engine import Engine
from auction.messages import (
    AnyEvent,
    AuctionBid,
    AuctionClosed,
    AuctionExtended,
    Awarded,
    SetBuyingPower,
    StartAuction,
)
from auction.runner import Runner
from auction.types import MarketId, OrderId, OrgId, PrincipalId

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def scenario() -> list[AnyEvent]:
    clock = ManualClock(T0)
    published: list[AnyEvent] = []
    runner = Runner(
        Engine(), clock, publish=lambda done: published.extend(e for _, evs in done for e in evs)
    )
    task = asyncio.create_task(runner.run())
    try:
        for who in ("ra", "rb"):
            await runner.submit(SetBuyingPower(bidder=PrincipalId(who), limit_fen=10**9))
        await runner.submit(
            StartAuction(lot_id=OrderId(1), market=MarketId("ebike:330522"),
                         owner=PrincipalId("s1"), org=OrgId("S1"), weight_kg=1000,
                         start_price_fen_per_t=990_000, duration_s=600)
        )  # fmt: skip
        await runner.submit(
            AuctionBid(lot_id=OrderId(1), bidder=PrincipalId("ra"), org=OrgId("RA"),
                       max_price_fen_per_t=1_000_000)
        )  # fmt: skip
        clock.advance(timedelta(seconds=590))
        await settle()
        # a new leader 10 s before the close moves it to T0 + 900 s
        await runner.submit(
            AuctionBid(lot_id=OrderId(1), bidder=PrincipalId("rb"), org=OrgId("RB"),
                       max_price_fen_per_t=1_100_000)
        )  # fmt: skip
        clock.advance(timedelta(seconds=10))  # the original close: nothing happens
        await settle()
        assert not [e for e in published if isinstance(e, AuctionClosed)]
        clock.advance(timedelta(seconds=299, microseconds=999_999))
        await settle()
        assert not [e for e in published if isinstance(e, AuctionClosed)]
        clock.advance(timedelta(microseconds=1))  # exactly the extended close
        await settle()
        return published
    finally:
        task.cancel()


def test_runner_fires_the_extended_close_on_time_without_any_command() -> None:
    published = asyncio.run(scenario())
    ext = [e for e in published if isinstance(e, AuctionExtended)]
    assert [e.closes_at for e in ext] == [T0 + timedelta(seconds=900)]
    closed = [e for e in published if isinstance(e, AuctionClosed)]
    assert len(closed) == 1 and closed[0].at == T0 + timedelta(seconds=900)
    award = [e for e in published if isinstance(e, Awarded)]
    assert [(a.buyer, a.price_fen_per_t) for a in award] == [("rb", 1_005_000)]
