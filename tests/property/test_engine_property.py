"""Random command streams through the engine against the naive reference engine.

Every event is compared (rejections by command, code and field), the resting state
after every step, and these invariants hold after every step:

* no two resting orders in a market could trade with each other (the book is never
  crossed for anything that is allowed to trade);
* quantity is conserved per side: posted (with amendments) = traded + resting +
  cancelled + expired, tracked from the events alone;
* no trade between two orders of one organisation;
* a refused command changes nothing (beyond the expiries that time itself caused).
"""

import copy
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from auction.engine import Engine
from auction.messages import (
    AmendBid,
    AnyCommand,
    AnyEvent,
    BidAmended,
    BidCancelled,
    BidExpired,
    BidPlaced,
    CancelBid,
    CancelLot,
    ExpireDue,
    LotCancelled,
    LotExpired,
    LotPosted,
    PlaceBid,
    Rejected,
    SellLot,
    SetBuyingPower,
    Traded,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId
from tests.property.seeds import seeds
from tests.reference import ReferenceEngine

START = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
MARKETS = [MarketId("ebike:330522"), MarketId("auto_black:330500")]
RECYCLERS = [("r1a", "R1"), ("r1b", "R1"), ("r2a", "R2"), ("r3a", "R3")]
STORES = [("s1", "S1"), ("s2", "S2"), ("r1shop", "R1")]  # R1 also runs a shop: self-dealing


class Stream:
    """A seeded generator of plausible and implausible commands."""

    LIMITS = (200_000, 600_000, 1_500_000, 3_000_000, 0, -1)

    def __init__(self, seed: int, limits: tuple[int, ...] = LIMITS) -> None:
        self.rng = random.Random(seed)
        self.limits = limits
        self.next_id = 1
        self.issued: list[tuple[int, str, str]] = []  # (id, owner, kind)
        self.now = START
        self.funded = 0

    def _id(self) -> OrderId:
        if self.rng.random() < 0.03 and self.next_id > 1:
            return OrderId(self.rng.randint(1, self.next_id - 1))  # reused id
        self.next_id += self.rng.choice((1, 1, 1, 2))
        return OrderId(self.next_id)

    def _market(self) -> MarketId:
        if self.rng.random() < 0.02:
            return MarketId(self.rng.choice(["lithium:330522", "ebike:999999", "ebike", "x:y:z"]))
        return self.rng.choice(MARKETS)

    def _price(self) -> int:
        if self.rng.random() < 0.02:
            return self.rng.choice([0, -5, 10**11])
        return 1_000_000 + 5_000 * self.rng.randint(-4, 4)

    def _kg(self, lo: int, hi: int) -> int:
        if self.rng.random() < 0.02:
            return self.rng.choice([0, -1, 10**8])
        return self.rng.randint(lo, hi)

    def _expiry(self) -> datetime | None:
        r = self.rng.random()
        if r < 0.6:
            return None
        if r < 0.62:
            return self.now - timedelta(seconds=1)
        return self.now + timedelta(seconds=self.rng.randint(1, 120))

    def _known(self, kind: str) -> tuple[OrderId, PrincipalId]:
        mine = [x for x in self.issued if x[2] == kind]
        if not mine or self.rng.random() < 0.1:
            return OrderId(self.rng.randint(1, self.next_id + 2)), PrincipalId("nobody")
        oid, owner, _ = self.rng.choice(mine)
        if self.rng.random() < 0.08:
            owner = self.rng.choice(RECYCLERS + STORES)[0]  # maybe someone else's
        return OrderId(oid), PrincipalId(owner)

    def next(self) -> tuple[AnyCommand, datetime]:
        rng = self.rng
        self.now += timedelta(seconds=rng.choice((0, 0, 1, 3, 10, 30)))
        r = rng.random()
        cmd: AnyCommand
        if self.funded < len(RECYCLERS) or r < 0.03:
            # buying power: mostly enough for a few bids, sometimes tight or wrong
            who = RECYCLERS[self.funded % len(RECYCLERS)][0]
            self.funded += 1
            limit = rng.choice(self.limits)
            return SetBuyingPower(bidder=PrincipalId(who), limit_fen=limit), self.now
        if r < 0.35:
            owner, org = rng.choice(RECYCLERS)
            qty = self._kg(50, 3000)
            cmd = PlaceBid(
                bid_id=self._id(),
                market=self._market(),
                owner=PrincipalId(owner),
                org=OrgId(org),
                price_fen_per_t=self._price(),
                qty_kg=qty,
                min_lot_kg=rng.choice((0, 0, 0, 100, 300, 800)) if qty > 0 else 0,
                expires_at=self._expiry(),
            )
            self.issued.append((cmd.bid_id, owner, "bid"))
        elif r < 0.70:
            owner, org = rng.choice(STORES)
            floor = None if rng.random() < 0.25 else self._price()
            cmd = SellLot(
                lot_id=self._id(),
                market=self._market(),
                owner=PrincipalId(owner),
                org=OrgId(org),
                weight_kg=self._kg(50, 2000),
                floor_price_fen_per_t=floor,
                allow_partial=rng.random() < 0.35,
                if_unsold="rest" if rng.random() < 0.6 else "refuse",
                expires_at=self._expiry(),
            )
            self.issued.append((cmd.lot_id, owner, "lot"))
        elif r < 0.82:
            oid, owner = self._known("bid")
            new_price = self._price() if rng.random() < 0.6 else None
            new_qty = self._kg(50, 3000) if rng.random() < 0.6 else None
            cmd = AmendBid(bid_id=oid, owner=owner, price_fen_per_t=new_price, qty_kg=new_qty)
        elif r < 0.90:
            oid, owner = self._known("bid")
            cmd = CancelBid(bid_id=oid, owner=owner)
        elif r < 0.96:
            oid, owner = self._known("lot")
            cmd = CancelLot(lot_id=oid, owner=owner)
        else:
            cmd = ExpireDue()
        return cmd, self.now


def normalise(event: AnyEvent) -> dict[str, Any]:
    d = msgspec.structs.asdict(event)
    d["type"] = type(event).__struct_config__.tag
    del d["at"]
    if isinstance(event, Rejected):  # the reference names the code, not the wording
        del d["detail"], d["limits"]
    return d


class Ledger:
    """Quantities per side, from the events alone."""

    def __init__(self) -> None:
        self.open: dict[int, int] = {}
        self.totals: dict[str, int] = defaultdict(int)

    def apply(self, ev: AnyEvent) -> None:
        match ev:
            case BidPlaced():
                self.open[ev.bid_id] = ev.qty_kg
                self.totals["bid_posted"] += ev.qty_kg
            case LotPosted():
                self.open[ev.lot_id] = ev.weight_kg
                self.totals["lot_posted"] += ev.weight_kg
            case BidAmended():
                self.totals["bid_posted"] += ev.qty_kg - self.open[ev.bid_id]
                self.open[ev.bid_id] = ev.qty_kg
            case Traded():
                self.open[ev.bid_id] -= ev.weight_kg
                self.open[ev.lot_id] -= ev.weight_kg
                assert self.open[ev.bid_id] == ev.bid_remaining_kg
                assert self.open[ev.lot_id] == ev.lot_remaining_kg
                self.totals["traded"] += ev.weight_kg
            case BidCancelled() | BidExpired():
                assert self.open.pop(ev.bid_id) == ev.remaining_kg
                key = "bid_cancelled" if isinstance(ev, BidCancelled) else "bid_expired"
                self.totals[key] += ev.remaining_kg
            case LotCancelled() | LotExpired():
                assert self.open.pop(ev.lot_id) == ev.remaining_kg
                key = "lot_cancelled" if isinstance(ev, LotCancelled) else "lot_expired"
                self.totals[key] += ev.remaining_kg
            case _:
                return
        for oid in [k for k, v in self.open.items() if v == 0]:
            del self.open[oid]


def resting_by_side(engine: Engine) -> tuple[int, int]:
    snap = engine.snapshot()
    markets: list[Any] = snap["markets"]
    bids = sum(row[2] for _, b, _ in markets for row in b)
    lots = sum(row[2] for _, _, s in markets for row in s)
    return bids, lots


def could_trade(bid: list[Any], lot: list[Any]) -> bool:
    """Snapshot rows: [id, price, qty, min_qty, aon, owner, org, expires]."""
    if bid[1] < lot[1] or bid[6] == lot[6]:
        return False
    fill = min(bid[2], lot[2])
    if lot[4] and fill < lot[2]:
        return False
    return bool(fill >= bid[3])


def check_step(seed: int, step: int, engine: Engine, ref: ReferenceEngine, ledger: Ledger) -> None:
    where = f"seed={seed} step={step}"
    snap = engine.snapshot()
    markets: list[Any] = snap["markets"]
    got = {m: ([tuple(r) for r in b], [tuple(r) for r in s]) for m, b, s in markets}
    assert got == ref.resting(), where
    for market, bids, lots in markets:
        for bid in bids:
            for lot in lots:
                assert not could_trade(bid, lot), f"{where}: {market} crossed: {bid} x {lot}"
    for bidder in sorted({r[0] for r in RECYCLERS}):
        _, reserved, available = engine.buying_power(PrincipalId(bidder))
        assert available >= 0, f"{where}: {bidder} has negative buying power"
        assert reserved * 10_000_000 >= ref.reserved_units(bidder) > (reserved - 1) * 10_000_000, (
            where
        )
    t = ledger.totals
    bids_resting, lots_resting = resting_by_side(engine)
    assert t["bid_posted"] == t["traded"] + bids_resting + t["bid_cancelled"] + t["bid_expired"], (
        where
    )
    assert t["lot_posted"] == t["traded"] + lots_resting + t["lot_cancelled"] + t["lot_expired"], (
        where
    )
    assert sum(ledger.open.values()) == bids_resting + lots_resting, where


@pytest.mark.parametrize("seed", seeds())
def test_engine_matches_reference(seed: int) -> None:
    stream = Stream(seed)
    engine, ref, ledger = Engine(), ReferenceEngine(), Ledger()
    rejected_seen = 0
    for step in range(300):
        cmd, now = stream.next()
        before = copy.deepcopy(engine)
        events = engine.apply(cmd, now)
        want = ref.apply(cmd, now)
        assert [normalise(e) for e in events] == want, f"seed={seed} step={step} cmd={cmd}"
        assert all(e.at == now for e in events)
        for ev in events:
            ledger.apply(ev)
            if isinstance(ev, Traded):
                assert ev.buyer_org != ev.seller_org, f"seed={seed}: self-trade"
        if events and isinstance(events[-1], Rejected):
            rejected_seen += 1
            before.apply(ExpireDue(), now)
            assert before.state_hash() == engine.state_hash(), f"seed={seed} step={step}"
        check_step(seed, step, engine, ref, ledger)
    assert rejected_seen > 0, f"seed={seed}: the stream never tried anything wrong"


def test_streams_exercise_every_rule() -> None:
    """The generator is only useful if it reaches the interesting cases."""
    seen: set[str] = set()
    for seed in seeds(20):
        stream = Stream(seed)
        engine = Engine()
        for _ in range(300):
            cmd, now = stream.next()
            for ev in engine.apply(cmd, now):
                tag = str(type(ev).__struct_config__.tag)
                if isinstance(ev, BidCancelled | LotCancelled):
                    tag += ":" + ev.reason
                if isinstance(ev, BidAmended):
                    tag += ":kept" if ev.kept_priority else ":lost"
                if isinstance(ev, Rejected):
                    tag += ":" + ev.code
                seen.add(tag)
    wanted = {
        "bid_placed", "lot_posted", "traded", "bid_expired", "lot_expired",
        "bid_amended:kept", "bid_amended:lost", "bid_cancelled:owner",
        "bid_cancelled:below_min_lot", "lot_cancelled:owner", "lot_cancelled:unsold_remainder",
        "rejected:no_buyer", "rejected:duplicate_id", "rejected:bid_not_found",
        "rejected:lot_not_found", "rejected:invalid_value", "rejected:unknown_market",
        "rejected:insufficient_buying_power", "rejected:illegal_transition",
        "buying_power_changed", "lot_state_changed",
    }  # fmt: skip
    assert wanted <= seen, sorted(wanted - seen)
