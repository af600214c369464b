"""The feed's snapshots against the engine itself: on random flows of bids, amendments,
cancels, one-click and resting lots over two markets (batched as the runner batches),
the ``book`` channel folded from its published deltas always equals the engine's depth,
and every lossless channel's seqs are consecutive."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from auction.book import BUY, SELL
from auction.engine import Engine
from auction.messages import (
    AmendBid,
    AnyCommand,
    AnyEvent,
    BidPlaced,
    CancelBid,
    PlaceBid,
    Rejected,
    SellLot,
    SetBuyingPower,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId
from feeds.bus import LocalBus
from feeds.hub import Hub, Item
from feeds.sequencer import DEPTH, Sequencer
from feeds.state import Folds

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
MARKETS = [MarketId("ebike:330522"), MarketId("auto_black:330500")]
BIDDERS = ["ra", "rb", "rc"]


class Recording(LocalBus):
    def __init__(self, hub: Hub) -> None:
        super().__init__(hub)
        self.items: list[Item] = []

    def send(self, items: list[Item]) -> None:
        self.items.extend(items)
        super().send(items)


def command(rng: random.Random, next_id: int, live: list[int]) -> AnyCommand:
    market = rng.choice(MARKETS)
    roll = rng.random()
    if roll < 0.45 or not live:
        who = rng.choice(BIDDERS)
        return PlaceBid(
            bid_id=OrderId(next_id), market=market, owner=PrincipalId(who), org=OrgId(who.upper()),
            price_fen_per_t=1_000_000 + 1_000 * rng.randint(0, 30),
            qty_kg=rng.choice([200, 500, 1000]),
        )  # fmt: skip
    if roll < 0.6:
        bid_id = rng.choice(live)
        return AmendBid(bid_id=OrderId(bid_id), owner=PrincipalId(rng.choice(BIDDERS)),
                        price_fen_per_t=1_000_000 + 1_000 * rng.randint(0, 30))  # fmt: skip
    if roll < 0.7:
        return CancelBid(bid_id=OrderId(rng.choice(live)), owner=PrincipalId(rng.choice(BIDDERS)))
    return SellLot(
        lot_id=OrderId(next_id), market=market, owner=PrincipalId("s1"), org=OrgId("S1"),
        weight_kg=rng.choice([100, 300, 800, 2500]), allow_partial=rng.random() < 0.5,
        floor_price_fen_per_t=1_000_000 + 1_000 * rng.randint(0, 40),
        if_unsold=rng.choice(["rest", "refuse"]),
    )  # fmt: skip


def depth(engine: Engine, market: MarketId) -> dict[str, list[list[int]]]:
    book = engine.book(market)
    if book is None:
        return {"bids": [], "asks": []}
    return {
        "bids": [list(level) for level in book.depth(BUY, DEPTH)],
        "asks": [list(level) for level in book.depth(SELL, DEPTH)],
    }


@pytest.mark.parametrize("seed", range(12))
def test_the_book_channel_folds_to_the_engines_depth(seed: int) -> None:
    rng = random.Random(seed)
    engine = Engine()
    for who in BIDDERS:
        engine.apply(SetBuyingPower(bidder=PrincipalId(who), limit_fen=10**13), T0)
    hub = Hub()
    bus = Recording(hub)
    sequencer = Sequencer(engine, bus)
    sequencer.start()
    live: list[int] = []
    now = T0
    next_id = 1
    seq = 0
    for _ in range(60):  # batches
        published: list[tuple[int, list[AnyEvent]]] = []
        for _ in range(rng.randint(1, 8)):
            now += timedelta(milliseconds=rng.randint(1, 50))
            events = engine.apply(command(rng, next_id, live), now)
            next_id += 1
            if events and not (len(events) == 1 and isinstance(events[0], Rejected)):
                seq += 1
                published.append((seq, events))
            live = [b for b in live if engine.entry(OrderId(b)) is not None]
            live += [e.bid_id for e in events if isinstance(e, BidPlaced)]
        if published:
            sequencer.committed(published, sequencer.capture(published))
        for market in MARKETS:
            snap = hub.folds.snapshot(f"book:{market}")
            got = snap[1] if snap else {"bids": [], "asks": []}
            assert got == depth(engine, market), (seed, market)
    last: dict[str, int] = {}
    for channel, item_seq, kind, _, _ in bus.items:
        if kind == "update":
            assert item_seq == last.get(channel, 0) + 1, channel
        last[channel] = item_seq


def test_the_oldest_auction_rooms_go_first_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("feeds.state.ROOMS_KEPT", 3)
    folds = Folds()
    folds.apply("private:ra", 1, "update", {"event": "bid_placed"})
    for lot in range(1, 6):
        folds.apply(f"auction:{lot}", 1, "snapshot", {"lot_id": lot})
        folds.apply(f"book:{MARKETS[0]}", lot, "update", {"bids": [[lot, 1, 1]], "asks": []})
    assert sorted(folds.states) == [
        "auction:3", "auction:4", "auction:5", f"book:{MARKETS[0]}", "private:ra",
    ]  # fmt: skip


def test_the_tape_gathers_a_windows_trades_into_one_message_and_loses_none() -> None:
    """With ``tape_s``, a market's trades from many commit batches go out as one message
    per window: fewer frames for every screen, every print still there, in order."""
    from auction.messages import Traded
    from tests.unit.test_engine import bid, lot

    async def run() -> tuple[list[int], list[Item]]:
        engine = Engine()
        engine.apply(SetBuyingPower(bidder=PrincipalId("ra"), limit_fen=10**13), T0)
        engine.apply(bid(1, "ra", 1_000_000, 100_000), T0)
        hub = Hub()
        bus = Recording(hub)
        sequencer = Sequencer(engine, bus, tape_s=0.05)
        sequencer.start()
        traded: list[int] = []
        for i in range(30):  # 30 batches, one sale each, within one window
            events = engine.apply(lot(100 + i, "s1", 200), T0 + timedelta(milliseconds=i))
            traded += [e.trade_id for e in events if isinstance(e, Traded)]
            sequencer.committed([(i + 1, events)], sequencer.capture([(i + 1, events)]))
        assert not [i for i in bus.items if i[0].startswith("trades:")]  # not yet
        await asyncio.sleep(0.15)
        return traded, [i for i in bus.items if i[0].startswith("trades:")]

    traded, tape = asyncio.run(run())
    assert len(traded) == 30
    assert len(tape) == 1, [len(i[3]["trades"]) for i in tape]
    assert [t["trade_id"] for item in tape for t in item[3]["trades"]] == traded
    assert [item[1] for item in tape] == list(range(1, len(tape) + 1))
