"""The engine's rules on small, hand-checked scenarios."""

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from auction.engine import Engine
from auction.errors import InvariantBroken
from auction.messages import (
    AmendBid,
    AnyEvent,
    BidAmended,
    BidExpired,
    BidPlaced,
    BuyingPowerChanged,
    CancelBid,
    CancelLot,
    ExpireDue,
    LotCancelled,
    LotExpired,
    LotPosted,
    LotStateChanged,
    PlaceBid,
    Rejected,
    SellLot,
    SetBuyingPower,
    Traded,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
M = MarketId("ebike:330522")


def bid(
    i: int, owner: str, price: int, kg: int, min_lot: int = 0, org: str | None = None,
    expires_at: datetime | None = None,
) -> PlaceBid:  # fmt: skip
    return PlaceBid(
        bid_id=OrderId(i), market=M, owner=PrincipalId(owner), org=OrgId(org or owner.upper()),
        price_fen_per_t=price, qty_kg=kg, min_lot_kg=min_lot, expires_at=expires_at,
    )  # fmt: skip


def lot(
    i: int, owner: str, kg: int, floor: int | None = None, *, rest: bool = False,
    partial: bool = False, org: str | None = None,
) -> SellLot:  # fmt: skip
    return SellLot(
        lot_id=OrderId(i), market=M, owner=PrincipalId(owner), org=OrgId(org or owner.upper()),
        weight_kg=kg, floor_price_fen_per_t=floor, allow_partial=partial,
        if_unsold="rest" if rest else "refuse",
    )  # fmt: skip


def trades(events: list[AnyEvent]) -> list[tuple[int, int, int, int]]:
    return [
        (e.bid_id, e.lot_id, e.price_fen_per_t, e.weight_kg)
        for e in events
        if isinstance(e, Traded)
    ]


def rejected(events: list[AnyEvent]) -> str | None:
    last = events[-1] if events else None
    return last.code if isinstance(last, Rejected) else None


def funded(e: Engine, *bidders: str, limit_fen: int = 10**12) -> Engine:
    for b in bidders:
        e.apply(SetBuyingPower(bidder=PrincipalId(b), limit_fen=limit_fen), T0)
    return e


@pytest.fixture
def engine() -> Engine:
    e = funded(Engine(), "ra", "rb", "rc", "rd")
    e.apply(bid(1, "ra", 1_000_000, 2000), T0)
    e.apply(bid(2, "rb", 1_010_000, 500), T0)
    e.apply(bid(3, "rc", 1_010_000, 1500, min_lot=600), T0)
    return e


def test_one_click_takes_the_best_bid_that_can_take_the_lot_whole(engine: Engine) -> None:
    events = engine.apply(lot(10, "s1", 800), T0)
    # bid 2 is best and oldest at 10,100 but holds only 500 kg; bid 3 takes it whole
    assert trades(events) == [(3, 10, 1_010_000, 800)]
    t = next(e for e in events if isinstance(e, Traded))
    assert (t.buyer, t.seller, t.aggressor) == ("rc", "s1", "sell")
    assert (t.bid_remaining_kg, t.lot_remaining_kg) == (700, 0)
    assert t.amount_fen == 808_000  # ¥10,100/t x 0.8 t = ¥8,080


def test_one_click_respects_the_min_lot(engine: Engine) -> None:
    events = engine.apply(lot(10, "s1", 400), T0)
    assert trades(events) == [(2, 10, 1_010_000, 400)]
    events = engine.apply(lot(11, "s1", 300), T0)  # bid 2 has 100 kg left; bid 3 wants 600+
    assert trades(events) == [(1, 11, 1_000_000, 300)]


def test_no_buyer_is_refused_cleanly_or_rests_at_the_floor(engine: Engine) -> None:
    before = engine.state_hash()
    events = engine.apply(lot(10, "s1", 5000, floor=990_000), T0)
    assert rejected(events) == "no_buyer"
    assert isinstance(events[-1], Rejected)
    assert "no buyer" in events[-1].detail
    assert engine.state_hash() == before
    events = engine.apply(lot(11, "s1", 5000, floor=990_000, rest=True), T0)
    assert [type(e) for e in events] == [LotPosted, LotStateChanged]
    book = engine.book(M)
    assert book is not None and book.best_price(1) == 990_000
    # a bid big enough arrives and trades at the lot's (resting) price
    events = engine.apply(bid(12, "rd", 995_000, 6000), T0)
    assert trades(events) == [(12, 11, 990_000, 5000)]


def test_partial_lot_sweeps_and_releases_the_rest(engine: Engine) -> None:
    events = engine.apply(lot(10, "s1", 5000, floor=1_000_000, partial=True), T0)
    assert trades(events) == [
        (2, 10, 1_010_000, 500),
        (3, 10, 1_010_000, 1500),
        (1, 10, 1_000_000, 2000),
    ]
    cancelled = [e for e in events if isinstance(e, LotCancelled)]
    assert [(c.remaining_kg, c.reason) for c in cancelled] == [(1000, "unsold_remainder")]


def test_no_trade_within_one_organisation(engine: Engine) -> None:
    # the best bid (2) is the store's own organisation's, bid 3 wants 600 kg or more
    events = engine.apply(lot(10, "shop", 300, org="RB"), T0)
    assert trades(events) == [(1, 10, 1_000_000, 300)]


def test_amend_priority_rules(engine: Engine) -> None:
    # decrease keeps priority: bid 2 stays ahead of bid 3 at 10,100
    events = engine.apply(AmendBid(bid_id=OrderId(2), owner=PrincipalId("rb"), qty_kg=400), T0)
    assert isinstance(events[0], BidAmended) and events[0].kept_priority
    assert trades(engine.apply(lot(10, "s1", 100), T0)) == [(2, 10, 1_010_000, 100)]
    # an increase loses it: bid 3 is now first
    events = engine.apply(AmendBid(bid_id=OrderId(2), owner=PrincipalId("rb"), qty_kg=900), T0)
    assert isinstance(events[0], BidAmended) and not events[0].kept_priority
    assert trades(engine.apply(lot(11, "s1", 700), T0)) == [(3, 11, 1_010_000, 700)]


def test_amend_price_up_trades_against_a_resting_lot(engine: Engine) -> None:
    engine.apply(lot(10, "s1", 1800, floor=1_005_000, rest=True), T0)
    events = engine.apply(
        AmendBid(bid_id=OrderId(1), owner=PrincipalId("ra"), price_fen_per_t=1_006_000), T0
    )
    assert trades(events) == [(1, 10, 1_005_000, 1800)]


def test_other_principals_objects_are_not_found(engine: Engine) -> None:
    before = engine.state_hash()
    cases: list[tuple[CancelBid | AmendBid | CancelLot, str]] = [
        (CancelBid(bid_id=OrderId(1), owner=PrincipalId("rb")), "bid_not_found"),
        (CancelBid(bid_id=OrderId(99), owner=PrincipalId("ra")), "bid_not_found"),
        (AmendBid(bid_id=OrderId(1), owner=PrincipalId("rb"), qty_kg=10), "bid_not_found"),
        (CancelLot(lot_id=OrderId(1), owner=PrincipalId("ra")), "lot_not_found"),
    ]
    for cmd, code in cases:
        assert rejected(engine.apply(cmd, T0)) == code
    assert engine.state_hash() == before


@pytest.mark.parametrize(
    ("cmd", "code", "field"),
    [
        (bid(3, "ra", 1_000_000, 10), "duplicate_id", "bid_id"),
        (bid(9, "ra", 0, 10), "invalid_value", "price_fen_per_t"),
        (bid(9, "ra", 1_000_000, 0), "invalid_value", "qty_kg"),
        (bid(9, "ra", 1_000_000, 10, min_lot=11), "invalid_value", "min_lot_kg"),
        (bid(9, "ra", 1_000_000, 10, expires_at=T0), "invalid_value", "expires_at"),
        (lot(9, "s1", 10, rest=True), "invalid_value", "floor_price_fen_per_t"),
        (lot(9, "s1", 10**9), "invalid_value", "weight_kg"),
        (
            SellLot(lot_id=OrderId(9), market=MarketId("lithium:330522"), owner=PrincipalId("s"),
                    org=OrgId("S"), weight_kg=10),
            "unknown_market", "market",
        ),
    ],
)  # fmt: skip
def test_bad_commands_are_refused_and_change_nothing(
    engine: Engine, cmd: PlaceBid | SellLot, code: str, field: str
) -> None:
    before = engine.state_hash()
    events = engine.apply(cmd, T0)
    assert len(events) == 1 and isinstance(events[0], Rejected)
    assert (events[0].code, events[0].field) == (code, field)
    assert engine.state_hash() == before


def test_expiry_happens_at_the_injected_time_first() -> None:
    e = funded(Engine(), "ra")
    e.apply(bid(1, "ra", 1_000_000, 500, expires_at=T0 + timedelta(minutes=5)), T0)
    e.apply(lot(2, "s1", 100, floor=990_000, rest=True), T0 + timedelta(minutes=1))
    assert e.next_deadline() == T0 + timedelta(minutes=5)
    assert e.apply(ExpireDue(), T0 + timedelta(minutes=4, seconds=59)) == []
    # the lot arrives exactly at the bid's expiry: the bid is gone first, no trade
    events = e.apply(lot(3, "s2", 100), T0 + timedelta(minutes=5))
    assert isinstance(events[0], BidExpired) and events[0].remaining_kg == 400
    assert rejected(events) == "no_buyer"


def test_lots_expire_too() -> None:
    e = Engine()
    e.apply(
        SellLot(lot_id=OrderId(1), market=M, owner=PrincipalId("s"), org=OrgId("S"),
                weight_kg=100, floor_price_fen_per_t=1, if_unsold="rest",
                expires_at=T0 + timedelta(hours=1)),
        T0,
    )  # fmt: skip
    events = e.apply(ExpireDue(), T0 + timedelta(hours=2))
    at = T0 + timedelta(hours=2)
    assert events == [
        LotExpired(at=at, lot_id=OrderId(1), market=M, remaining_kg=100),
        LotStateChanged(
            at=at, lot_id=OrderId(1), market=M, owner=PrincipalId("s"),
            from_state="open", to_state="expired", move="expire",
        ),
    ]  # fmt: skip


def test_standing_bids_need_buying_power() -> None:
    e = Engine()
    assert rejected(e.apply(bid(1, "ra", 1_000_000, 1000), T0)) == "insufficient_buying_power"
    # 10% of ¥10,000/t x 1 t = ¥1,000 = 100,000 fen
    funded(e, "ra", limit_fen=99_999)
    assert rejected(e.apply(bid(2, "ra", 1_000_000, 1000), T0)) == "insufficient_buying_power"
    funded(e, "ra", limit_fen=100_000)
    events = e.apply(bid(3, "ra", 1_000_000, 1000), T0)
    assert isinstance(events[-1], BuyingPowerChanged)
    assert (events[-1].reserved_fen, events[-1].available_fen) == (100_000, 0)
    # a trade at the bid's price moves the deposit from the bid to the trade
    e.apply(lot(4, "s1", 400), T0)
    assert e.buying_power(PrincipalId("ra")) == (100_000, 100_000, 0)
    e.apply(CancelBid(bid_id=OrderId(3), owner=PrincipalId("ra")), T0)
    assert e.buying_power(PrincipalId("ra")) == (100_000, 40_000, 60_000)


def test_time_never_goes_backwards() -> None:
    e = Engine()
    e.apply(ExpireDue(), T0)
    with pytest.raises(InvariantBroken):
        e.apply(ExpireDue(), T0 - timedelta(seconds=1))
    with pytest.raises(InvariantBroken):
        e.apply(ExpireDue(), datetime(2027, 1, 1))  # naive


SCRIPT = """
import hashlib, sys
import msgspec
from auction.engine import Engine
from tests.property.test_engine_property import Stream
from tests.property.test_sales_model import SalesStream
from tests.sales_reference import ReferenceSales
for seed in range(1, 6):
    for kind in ("market", "sales"):
        engine, h = Engine(), hashlib.sha256()
        if kind == "market":
            stream = Stream(seed)
        else:
            ref = ReferenceSales()
            stream = SalesStream(seed, ref)
        for _ in range(300):
            cmd, now = stream.next()
            for ev in engine.apply(cmd, now):
                h.update(msgspec.json.encode(ev))
            if kind == "sales":
                ref.apply(cmd, now)
        print(kind, seed, h.hexdigest(), engine.state_hash())
"""


def test_same_commands_same_events_whatever_the_hash_seed() -> None:
    outs = set()
    for hash_seed in ("0", "1", "4242", "random"):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outs.add(done.stdout)
    assert len(outs) == 1, outs
    assert len(next(iter(outs)).splitlines()) == 10


def test_demo_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "auction", "demo"], capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    assert "TRADE 1" in done.stdout
    assert "refused (no_buyer)" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1])["events"] == 5000


def test_events_encode_to_json() -> None:
    e = funded(Engine(), "ra")
    events = e.apply(bid(1, "ra", 1_000_000, 10), T0)
    assert isinstance(events[0], BidPlaced)
    wire = msgspec.json.decode(msgspec.json.encode(events[0]))
    assert wire["type"] == "bid_placed" and wire["at"] == "2026-11-27T08:00:00Z"
