"""``auction demo``: a few minutes of one market, told as it happens.

A stand-in for ``auction serve --demo`` until the service exists: three recyclers bid in
长兴县's e-bike battery market, stores sell with one click, one lot rests at its floor
until a recycler raises its bid, and a bid expires.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from auction.catalogue import default_catalogue
from auction.engine import Engine
from auction.messages import (
    AmendBid,
    AnyCommand,
    AnyEvent,
    BidAmended,
    BidCancelled,
    BidExpired,
    BidPlaced,
    BuyingPowerChanged,
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
from auction.money import yuan_per_t
from auction.types import MarketId, OrderId, OrgId, PrincipalId, market_id

MARKET: MarketId = market_id("ebike", "330522")


def describe(event: AnyEvent) -> str:
    """One line a person can read."""
    match event:
        case BidPlaced():
            return (
                f"bid {event.bid_id} by {event.owner}: {event.qty_kg} kg at "
                f"¥{yuan_per_t(event.price_fen_per_t)}/t (min lot {event.min_lot_kg} kg)"
            )
        case BidAmended():
            keep = "keeps" if event.kept_priority else "loses"
            return (
                f"bid {event.bid_id} amended to {event.qty_kg} kg at "
                f"¥{yuan_per_t(event.price_fen_per_t)}/t ({keep} its place in the queue)"
            )
        case Traded():
            return (
                f"TRADE {event.trade_id}: lot {event.lot_id} ({event.seller}) -> "
                f"bid {event.bid_id} ({event.buyer}): {event.weight_kg} kg "
                f"at ¥{yuan_per_t(event.price_fen_per_t)}/t "
                f"= ¥{yuan_per_t(event.amount_fen)}; bid has {event.bid_remaining_kg} kg left"
            )
        case LotPosted():
            floor = event.floor_price_fen_per_t
            at = "best bid" if floor is None else f"floor ¥{yuan_per_t(floor)}/t"
            return f"lot {event.lot_id} by {event.owner}: {event.weight_kg} kg, one-click at {at}"
        case BidCancelled() | LotCancelled():
            return f"{type(event).__name__}: {event.remaining_kg} kg ({event.reason})"
        case BidExpired():
            return f"bid {event.bid_id} expired with {event.remaining_kg} kg open"
        case LotExpired():
            return f"lot {event.lot_id} expired with {event.remaining_kg} kg unsold"
        case Rejected():
            return f"refused ({event.code}): {event.detail}"
        case LotStateChanged():
            return f"lot {event.lot_id}: {event.from_state} -> {event.to_state}"
        case BuyingPowerChanged():
            return (
                f"{event.bidder}: ¥{yuan_per_t(event.available_fen)} of "
                f"¥{yuan_per_t(event.limit_fen)} buying power free"
            )
    return repr(event)


def run_demo(start: datetime, step: timedelta) -> Engine:
    cat = default_catalogue()
    engine = Engine(cat)
    twelve_sets = cat.estimate_weight_kg("6-DZM-12", sets=12)  # 48V12Ah, 4 blocks a set
    now = start

    def bid(i: int, who: str, yuan: int, kg: int, min_lot: int = 0, ttl: int = 0) -> PlaceBid:
        return PlaceBid(
            bid_id=OrderId(i),
            market=MARKET,
            owner=PrincipalId(who),
            org=OrgId(who.split("-", maxsplit=1)[0]),
            price_fen_per_t=yuan * 100,
            qty_kg=kg,
            min_lot_kg=min_lot,
            expires_at=start + ttl * step if ttl else None,
        )

    def lot(
        i: int, who: str, kg: int, floor_yuan: int | None = None, rest: bool = False
    ) -> SellLot:
        return SellLot(
            lot_id=OrderId(i),
            market=MARKET,
            owner=PrincipalId(who),
            org=OrgId(who),
            weight_kg=kg,
            floor_price_fen_per_t=None if floor_yuan is None else floor_yuan * 100,
            if_unsold="rest" if rest else "refuse",
        )

    for who in ("huanbao-a", "tianneng-b", "chaowei-c"):  # ¥50,000 of buying power each
        engine.apply(SetBuyingPower(bidder=PrincipalId(who), limit_fen=5_000_000), now)
    script: list[tuple[str, AnyCommand]] = [
        (
            "三家回收企业挂单 / three recyclers post standing bids",
            bid(1, "huanbao-a", 10_050, 2_000, 100),
        ),
        ("", bid(2, "tianneng-b", 10_125, 300)),
        ("", bid(3, "chaowei-c", 10_000, 5_000, 1_000, ttl=7)),
        (f"门店一键投售 12 组 48V12Ah (≈{twelve_sets} kg)", lot(4, "store-001", twelve_sets)),
        (
            "a 1.2 t lot with a ¥10,100/t floor: nobody pays that for 1.2 t",
            lot(5, "store-002", 1_200, 10_100),
        ),
        (
            "the same store lets it rest at its floor instead",
            lot(6, "store-002", 1_200, 10_100, rest=True),
        ),
        (
            "a recycler raises its bid and takes the resting lot",
            AmendBid(bid_id=OrderId(1), owner=PrincipalId("huanbao-a"), price_fen_per_t=1_010_000),
        ),
        ("time passes: a bid expires", ExpireDue()),
    ]
    for title, command in script:
        if title:
            print(f"\n# {title}")
        for event in engine.apply(command, now):
            print("  " + describe(event))
        now += step
    print(f"\nstate_hash {engine.state_hash()}")
    return engine
