"""Model-based test of auctions, offers and buying power against ``tests.sales_reference``.

Seeded random streams with bids right at the boundaries (the minimum next bid -3..+3
fen; at the close -1 ms, at it, +1 ms), crash-and-replay steps (a fresh engine rebuilt
from the command log must have the same ``state_hash()`` and carries on), and after
every step:

* each command is refused or taken exactly as the reference says, with the same code;
* every lot's state, leader, visible price, close and acceptance deadline agree;
* at most one award per lot, to the reference's winner (the highest valid maximum at the
  close, the earlier of equal ones) at the reference's price (the proxy rule);
* no bid is accepted at or after its lot's close;
* buying power is never negative and equals the sum of what is held, for every bidder,
  and equals the reference's sum over every lot and offer.

``run_stream`` is also what ``test_mutants.py`` runs against planted mistakes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from auction.engine import Engine
from auction.messages import (
    AcceptCounter,
    AcceptOffer,
    AcceptResult,
    AnyCommand,
    AnyEvent,
    AuctionBid,
    AuctionBidAccepted,
    Awarded,
    BuyNow,
    CancelLot,
    CounterOffer,
    DeclineResult,
    ExpireDue,
    InviteOffers,
    MakeOffer,
    Rejected,
    RejectOffer,
    SetBuyingPower,
    StartAuction,
    WithdrawOffer,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId
from tests.property.seeds import seeds
from tests.sales_reference import UNITS_PER_FEN, ReferenceSales

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
M = MarketId("ebike:330522")
BIDDERS = [("ra", "RA"), ("rb", "RB"), ("rc", "RC"), ("sx", "S1")]  # sx: the store's own org
STORES = [("s1", "S1"), ("s2", "S2")]
MS = timedelta(milliseconds=1)


class SalesStream:
    def __init__(self, seed: int, ref: ReferenceSales) -> None:
        self.rng = random.Random(seed)
        self.ref = ref
        self.now = T0
        self.next_id = 0
        self.funded = 0

    def _id(self) -> OrderId:
        if self.rng.random() < 0.02 and self.next_id:
            return OrderId(self.next_id)  # reused
        self.next_id += 1
        return OrderId(self.next_id)

    def _lots(self, kind: str, states: tuple[str, ...]) -> list[int]:
        return [i for i, lot in self.ref.lots.items() if lot.kind == kind and lot.state in states]

    def _time(self) -> None:
        rng = self.rng
        r = rng.random()
        live = self._lots("auction", ("in_auction",))
        if r < 0.3 and live:
            close = self.ref.lots[rng.choice(live)].closes_at
            assert close is not None
            target = close + rng.choice((-MS, timedelta(0), MS))
            if target >= self.now:
                self.now = target
                return
        if r < 0.33:
            self.now += timedelta(days=1, seconds=rng.randint(0, 100))
            return
        self.now += timedelta(seconds=rng.choice((0, 0, 1, 7, 30, 120, 280, 600)))

    def next(self) -> tuple[AnyCommand, datetime]:
        rng = self.rng
        self._time()
        if self.funded < 3 or rng.random() < 0.02:
            who = BIDDERS[self.funded % len(BIDDERS)][0]
            self.funded += 1
            limit = rng.choice((300_000, 1_000_000, 5_000_000, 50_000, 0, -5))
            return SetBuyingPower(bidder=PrincipalId(who), limit_fen=limit), self.now
        r = rng.random()
        store, store_org = rng.choice(STORES)
        bidder, org = rng.choice(BIDDERS)
        cmd: AnyCommand
        auctions = self._lots("auction", ("in_auction",))
        if r < 0.10 or (r < 0.55 and not auctions):
            start = 990_000 + 1_000 * rng.randint(-5, 15)
            reserve = start + 1_000 * rng.randint(0, 40) if rng.random() < 0.4 else None
            buy_now = (max(start, reserve or 0) + 50_000) if rng.random() < 0.3 else None
            cmd = StartAuction(
                lot_id=self._id(), market=M, owner=PrincipalId(store), org=OrgId(store_org),
                weight_kg=rng.choice((300, 800, 1500)), start_price_fen_per_t=start,
                duration_s=rng.choice((60, 600, 1800, 30)), reserve_fen_per_t=reserve,
                buy_now_fen_per_t=buy_now,
            )  # fmt: skip
        elif r < 0.55:
            lot_id = rng.choice(auctions)
            lot = self.ref.lots[lot_id]
            top = lot.leader()
            if top is not None and rng.random() < 0.15:
                bidder, org = top[2], top[3]  # the leader raising (or not) its maximum
                price = top[0] + rng.randint(-3, 3)
            elif top is not None and top[0] >= lot.min_next() and rng.random() < 0.3:
                price = top[0] + rng.randint(-1, 1)  # the same round maximum as the leader
            elif rng.random() < 0.8:
                price = lot.min_next() + rng.randint(-3, 3)
            else:
                price = lot.min_next() + 1_000 * rng.randint(1, 60)
            cmd = AuctionBid(
                lot_id=OrderId(lot_id), bidder=PrincipalId(bidder), org=OrgId(org),
                max_price_fen_per_t=price,
            )  # fmt: skip
        elif r < 0.58 and auctions:
            cmd = BuyNow(
                lot_id=OrderId(rng.choice(auctions)), bidder=PrincipalId(bidder), org=OrgId(org)
            )
        elif r < 0.64:
            waiting = self._lots("auction", ("awaiting_acceptance", "awarded", "in_auction"))
            lot_id = OrderId(rng.choice(waiting) if waiting else 999)
            owner = PrincipalId(self.ref.lots[lot_id].owner if lot_id in self.ref.lots else store)
            if rng.random() < 0.5:
                cmd = AcceptResult(lot_id=lot_id, owner=owner)
            else:
                cmd = DeclineResult(lot_id=lot_id, owner=owner)
        elif r < 0.67:
            any_lot = list(self.ref.lots) or [1]
            lot_id = OrderId(rng.choice(any_lot))
            who = self.ref.lots[lot_id].owner if lot_id in self.ref.lots else store
            cmd = CancelLot(lot_id=lot_id, owner=PrincipalId(who if rng.random() < 0.9 else "s9"))
        elif r < 0.72:
            expires = (
                self.now + timedelta(seconds=rng.choice((600, 3600, 7200)))
                if rng.random() < 0.7
                else None
            )
            cmd = InviteOffers(
                lot_id=self._id(), market=M, owner=PrincipalId(store), org=OrgId(store_org),
                weight_kg=rng.choice((300, 800)), expires_at=expires,
            )  # fmt: skip
        elif r < 0.82:
            open_lots = self._lots("offers", ("taking_offers",)) or [1]
            cmd = MakeOffer(
                offer_id=self._id(), lot_id=OrderId(rng.choice(open_lots)),
                bidder=PrincipalId(bidder), org=OrgId(org),
                price_fen_per_t=990_000 + 1_000 * rng.randint(-10, 30),
                expires_at=self.now + timedelta(seconds=rng.choice((60, 600, 3600))),
            )  # fmt: skip
        elif r < 0.95 and self.ref.offers:
            countered = [i for i, o in self.ref.offers.items() if o.status == "countered"]
            if countered and rng.random() < 0.4:
                offer_id = OrderId(rng.choice(countered))
                return AcceptCounter(
                    offer_id=offer_id, bidder=PrincipalId(self.ref.offers[offer_id].bidder)
                ), self.now
            live = [i for i, o in self.ref.offers.items() if o.status in ("made", "countered")]
            pool = live if live and rng.random() < 0.8 else list(self.ref.offers)
            offer_id = OrderId(rng.choice(pool))
            offer = self.ref.offers[offer_id]
            owner = PrincipalId(self.ref.lots[offer.lot].owner)
            mine = PrincipalId(offer.bidder if rng.random() < 0.9 else bidder)
            k = rng.randrange(5)
            if k == 0:
                cmd = CounterOffer(
                    offer_id=offer_id, owner=owner, price_fen_per_t=offer.price + 5_000
                )
            elif k == 1:
                cmd = AcceptOffer(offer_id=offer_id, owner=owner)
            elif k == 2:
                cmd = AcceptCounter(offer_id=offer_id, bidder=mine)
            elif k == 3:
                cmd = RejectOffer(offer_id=offer_id, owner=owner)
            else:
                cmd = WithdrawOffer(offer_id=offer_id, bidder=mine)
        else:
            cmd = ExpireDue()
        return cmd, self.now


def engine_view(engine: Engine) -> dict[int, object]:
    out: dict[int, object] = {}
    for lot_id, lot in engine._lots.items():
        auction = engine._auctions.get(lot_id)
        leader = auction.leader.bidder if auction and auction.leader else None
        visible = auction.visible_price() if auction and lot.state == "in_auction" else None
        closes = auction.closes_at if auction else None
        accept_by = auction.accept_by if auction else None
        out[lot_id] = (lot.state, leader, visible, closes, accept_by)
    return out


def refusal(events: list[AnyEvent]) -> str | None:
    rejected = [e for e in events if isinstance(e, Rejected)]
    return rejected[-1].code if rejected else None


def run_stream(seed: int, steps: int = 300) -> None:
    """Drive the engine and the reference side by side; AssertionError names the seed."""
    ref = ReferenceSales()
    stream = SalesStream(seed, ref)
    engine = Engine()
    log: list[tuple[AnyCommand, datetime]] = []
    awarded: set[int] = set()
    awards: list[tuple[int, str, int, str]] = []
    for step in range(steps):
        where = f"seed={seed} step={step}"
        cmd, now = stream.next()
        closes_before = {i: lot.closes_at for i, lot in ref.lots.items()}
        events = engine.apply(cmd, now)
        log.append((cmd, now))
        want = ref.apply(cmd, now)
        assert refusal(events) == want, f"{where}: {cmd} -> {refusal(events)}, want {want}"
        for ev in events:
            if isinstance(ev, AuctionBidAccepted):
                close = closes_before.get(ev.lot_id)
                assert close is not None and ev.at < close, f"{where}: bid at/after close"
            if isinstance(ev, Awarded):
                assert ev.lot_id not in awarded, f"{where}: lot {ev.lot_id} awarded twice"
                awarded.add(ev.lot_id)
                awards.append((ev.lot_id, ev.buyer, ev.price_fen_per_t, ev.via))
        assert engine_view(engine) == ref.view(), where
        assert sorted(awards) == sorted(ref.awards), f"{where}: awards differ"
        holds = engine._bp.holds()
        for bidder, _ in BIDDERS:
            b = PrincipalId(bidder)
            held = sum(u for who, u in holds.values() if who == b)
            assert engine._bp.reserved_units(b) == held, f"{where}: {bidder} reserved != holds"
            assert engine._bp.reserved_units(b) == ref.reserved(bidder), f"{where}: {bidder}"
            limit = engine._bp.limit_fen(b)
            if limit is not None:
                assert limit * UNITS_PER_FEN - held >= 0, f"{where}: {bidder} over its limit"
        if step % 40 == 39:
            # crash: rebuild from the command log alone, carry on with the new engine
            rebuilt = Engine()
            for c, t in log:
                rebuilt.apply(c, t)
            assert rebuilt.state_hash() == engine.state_hash(), f"{where}: replay differs"
            engine = rebuilt


@pytest.mark.parametrize("seed", seeds())
def test_sales_match_the_reference(seed: int) -> None:
    run_stream(seed)


def test_streams_reach_every_outcome() -> None:
    """The stream is only useful if it reaches the interesting cases."""
    codes: set[str] = set()
    results: set[str] = set()
    for seed in seeds(20):
        ref = ReferenceSales()
        stream = SalesStream(seed, ref)
        engine = Engine()
        for _ in range(300):
            cmd, now = stream.next()
            for ev in engine.apply(cmd, now):
                if isinstance(ev, Rejected):
                    codes.add(ev.code)
                if isinstance(ev, Awarded):
                    results.add(ev.via)
                tag = type(ev).__struct_config__.tag
                if tag in ("auction_extended", "outbid", "result_decided"):
                    results.add(str(tag))
            ref.apply(cmd, now)
    assert {
        "below_increment", "lot_not_open", "insufficient_buying_power", "self_dealing_forbidden",
        "lot_has_bids", "offer_open", "offer_not_found", "duplicate_id",
    } <= codes, codes  # fmt: skip
    assert {
        "auction", "buy_now", "accepted_below_reserve", "offer", "counter",
        "auction_extended", "outbid", "result_decided",
    } <= results, results  # fmt: skip
