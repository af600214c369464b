"""Auctions, offers, the lifecycle and buying power on hand-checked scenarios.

Prices: the e-bike ladder is ¥10/t (1,000 fen) below ¥10,000/t and ¥50/t (5,000 fen)
from ¥10,000/t up; soft close 300 s, capped at 1,800 s; acceptance window 86,400 s;
deposits 10%.
"""

from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from auction.engine import Engine
from auction.errors import ClientError
from auction.lifecycle import TRANSITIONS, can, next_state
from auction.messages import (
    AcceptCounter,
    AcceptOffer,
    AcceptResult,
    AnyCommand,
    AnyEvent,
    AuctionBid,
    AuctionBidAccepted,
    AuctionClosed,
    AuctionExtended,
    Awarded,
    BuyNow,
    CancelLot,
    CounterOffer,
    DeclineResult,
    ExpireDue,
    InviteOffers,
    LeaderChanged,
    LotStateChanged,
    MakeOffer,
    OfferChanged,
    Outbid,
    PlaceBid,
    Rejected,
    RejectOffer,
    SellLot,
    SetBuyingPower,
    StartAuction,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
M = MarketId("ebike:330522")
HOUR = 3600


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Market:
    """An engine with funded recyclers ra, rb, rc (orgs RA, RB, RC) and a store s1 (S1)."""

    def __init__(self, limit_fen: int = 10**10) -> None:
        self.e = Engine()
        self.next_id = 100
        self.now = T0
        for r in ("ra", "rb", "rc"):
            self.e.apply(SetBuyingPower(bidder=PrincipalId(r), limit_fen=limit_fen), T0)

    def id(self) -> OrderId:
        self.next_id += 1
        return OrderId(self.next_id)

    def do(self, cmd: AnyCommand, when: datetime | None = None) -> list[AnyEvent]:
        """Apply at ``when``, or at the last time used."""
        self.now = when or self.now
        return self.e.apply(cmd, self.now)

    def auction(
        self,
        weight: int = 1000,
        start: int = 990_000,
        reserve: int | None = None,
        buy_now: int | None = None,
        duration: int = HOUR,
    ) -> OrderId:
        lot = self.id()
        events = self.do(
            StartAuction(
                lot_id=lot, market=M, owner=PrincipalId("s1"), org=OrgId("S1"), weight_kg=weight,
                start_price_fen_per_t=start, duration_s=duration, reserve_fen_per_t=reserve,
                buy_now_fen_per_t=buy_now,
            )
        )  # fmt: skip
        assert not any(isinstance(e, Rejected) for e in events), events
        return lot

    def bid(
        self, lot: OrderId, who: str, max_price: int, when: datetime | None = None
    ) -> list[AnyEvent]:
        return self.do(
            AuctionBid(
                lot_id=lot,
                bidder=PrincipalId(who),
                org=OrgId(who.upper()),
                max_price_fen_per_t=max_price,
            ),
            when,
        )


def accepted(events: list[AnyEvent]) -> AuctionBidAccepted:
    found = [e for e in events if isinstance(e, AuctionBidAccepted)]
    assert found, events
    return found[-1]


def refused(events: list[AnyEvent]) -> str | None:
    last = [e for e in events if isinstance(e, Rejected)]
    return last[-1].code if last else None


E = TypeVar("E")


def of(kind: type[E], events: list[AnyEvent]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


# -- the lifecycle table --------------------------------------------------------------


def test_lifecycle_table_refuses_moves_it_does_not_have() -> None:
    assert next_state("in_auction", "award") == "awarded"
    assert can("expired", "relist") and not can("awarded", "relist")
    with pytest.raises(ClientError) as err:
        next_state("awarded", "cancel")
    assert err.value.code == "illegal_transition"
    # every state but the two terminal ones can be left, and every target is a state
    sources = {s for s, _ in TRANSITIONS}
    targets = set(TRANSITIONS.values())
    assert targets - sources == {"relisted", "settled"}


# -- proxy bidding ----------------------------------------------------------------------


def test_proxy_bidding_visible_price_follows_the_runner_up() -> None:
    m = Market()
    lot = m.auction(start=990_000)
    a = accepted(m.bid(lot, "ra", 1_050_000))
    assert (a.leading, a.visible_price_fen_per_t, a.min_next_bid_fen_per_t) == (
        True,
        990_000,
        991_000,
    )
    events = m.bid(lot, "rb", 995_000)
    a = accepted(events)
    # rb is outbid at once by ra's proxy: one ¥10 increment above rb's maximum
    assert (a.leading, a.leader, a.visible_price_fen_per_t) == (False, "ra", 996_000)
    assert [(o.bidder, o.by) for o in of(Outbid, events)] == [("rb", "ra")]
    events = m.bid(lot, "rb", 1_100_000)
    a = accepted(events)
    # above ¥10,000/t the increment is ¥50: 1,050,000 + 5,000, within rb's maximum
    assert (a.leading, a.visible_price_fen_per_t) == (True, 1_055_000)
    assert [(c.leader, c.previous) for c in of(LeaderChanged, events)] == [("rb", "ra")]
    assert [(o.bidder, o.by) for o in of(Outbid, events)] == [("ra", "rb")]


def test_equal_maximums_go_to_the_earlier_bid_and_price_stops_at_the_maximum() -> None:
    m = Market()
    lot = m.auction(start=990_000)
    m.bid(lot, "ra", 1_000_000)
    a = accepted(m.bid(lot, "rb", 1_000_000))
    assert (a.leading, a.leader, a.visible_price_fen_per_t) == (False, "ra", 1_000_000)
    # the next bid must beat 1,000,000 by an increment
    assert refused(m.bid(lot, "rc", 1_004_999)) == "below_increment"
    a = accepted(m.bid(lot, "rc", 1_005_000))
    assert (a.leading, a.visible_price_fen_per_t) == (True, 1_005_000)


def test_leader_may_only_raise_its_own_maximum_and_that_does_not_move_the_price() -> None:
    m = Market()
    lot = m.auction(start=990_000)
    m.bid(lot, "ra", 1_000_000)
    m.bid(lot, "rb", 993_000)
    assert refused(m.bid(lot, "ra", 1_000_000)) == "below_increment"
    a = accepted(m.bid(lot, "ra", 1_200_000))
    assert (a.leading, a.visible_price_fen_per_t) == (True, 994_000)


def test_reserve_is_hidden_then_lifts_the_price_once_met() -> None:
    m = Market()
    lot = m.auction(start=990_000, reserve=1_020_000)
    a = accepted(m.bid(lot, "ra", 1_010_000))
    assert (a.reserve_met, a.visible_price_fen_per_t) == (False, 990_000)
    a = accepted(m.bid(lot, "rb", 1_030_000))
    # rb's maximum meets the reserve: the price is at least the reserve
    assert (a.leading, a.reserve_met, a.visible_price_fen_per_t) == (True, True, 1_020_000)


def test_buy_now_until_the_first_bid() -> None:
    m = Market()
    lot = m.auction(start=990_000, buy_now=1_100_000)
    events = m.do(BuyNow(lot_id=lot, bidder=PrincipalId("ra"), org=OrgId("RA")))
    award = of(Awarded, events)[0]
    assert (award.buyer, award.price_fen_per_t, award.via) == ("ra", 1_100_000, "buy_now")
    lot2 = m.auction(start=990_000, buy_now=1_100_000)
    m.bid(lot2, "rb", 990_000)
    assert refused(m.do(BuyNow(lot_id=lot2, bidder=PrincipalId("ra"), org=OrgId("RA")))) == (
        "lot_not_open"
    )


# -- soft close -------------------------------------------------------------------------


def test_leader_change_in_the_last_minutes_extends_up_to_the_cap() -> None:
    m = Market()
    lot = m.auction(start=990_000, duration=HOUR)
    m.bid(lot, "ra", 1_000_000, at(100))
    # a non-leading bid late on never extends
    events = m.bid(lot, "rb", 995_000, at(HOUR - 10))
    assert not of(AuctionExtended, events)
    # a refused bid never extends
    events = m.bid(lot, "rb", 995_000, at(HOUR - 9))
    assert refused(events) == "below_increment" and not of(AuctionExtended, events)
    # a new leader 10 s before the close moves it 300 s later
    events = m.bid(lot, "rb", 1_010_000, at(HOUR - 8))
    ext = of(AuctionExtended, events)
    assert [(x.closes_at, x.extended_s) for x in ext] == [(at(HOUR + 300), 300)]
    # keep changing the leader: the close stops at original + 1,800 s
    t, bidders, price = HOUR + 295, ["ra", "rb"], 1_020_000
    for i in range(20):
        m.bid(lot, bidders[i % 2], price, at(t))
        price += 10_000
        t += 290
        if t >= HOUR + 1800:
            break
    closes = [e for e in m.do(ExpireDue(), at(HOUR + 1800)) if isinstance(e, AuctionClosed)]
    assert len(closes) == 1


def test_bid_at_the_close_instant_is_refused_and_one_ms_before_is_taken() -> None:
    m = Market()
    lot = m.auction(start=990_000, duration=HOUR)
    m.bid(lot, "ra", 1_000_000, at(10))
    a = accepted(m.bid(lot, "rb", 991_000, at(HOUR - 0.001)))
    assert not a.leading
    events = m.bid(lot, "rc", 1_100_000, at(HOUR))
    assert [type(e) for e in events][:1] == [AuctionClosed]
    assert refused(events) == "lot_not_open"
    award = of(Awarded, events)[0]
    # ra wins at one ¥10 increment above rb's 991,000
    assert (award.buyer, award.price_fen_per_t, award.amount_fen) == ("ra", 992_000, 992_000)


# -- close and acceptance ----------------------------------------------------------------


def test_close_without_bids_expires_and_can_be_relisted() -> None:
    m = Market()
    lot = m.auction(duration=60)
    events = m.do(ExpireDue(), at(60))
    assert [(e.from_state, e.to_state) for e in of(LotStateChanged, events)] == [
        ("in_auction", "expired")
    ]
    new = m.id()
    events = m.do(
        SellLot(lot_id=new, market=M, owner=PrincipalId("s1"), org=OrgId("S1"), weight_kg=1000,
                floor_price_fen_per_t=990_000, if_unsold="rest", relist_of=lot),
        at(61),
    )  # fmt: skip
    moves = [(e.lot_id, e.to_state) for e in of(LotStateChanged, events)]
    assert moves == [(lot, "relisted"), (new, "open")]
    # a relisted lot cannot be relisted again
    again = m.do(
        SellLot(lot_id=m.id(), market=M, owner=PrincipalId("s1"), org=OrgId("S1"),
                weight_kg=1000, relist_of=lot),
        at(62),
    )  # fmt: skip
    assert refused(again) == "illegal_transition"


def test_reserve_not_met_waits_for_the_store_then_lapses() -> None:
    m = Market()
    lot = m.auction(reserve=1_200_000, duration=60)
    m.bid(lot, "ra", 1_000_000, at(1))
    events = m.do(ExpireDue(), at(60))
    closed = of(AuctionClosed, events)[0]
    assert (closed.result, closed.accept_by) == ("reserve_not_met", at(60 + 86_400))
    # the deposit at the visible price (990,000 x 1 t x 10%) stays held meanwhile
    assert m.e.buying_power(PrincipalId("ra"))[1] == 99_000
    events = m.do(ExpireDue(), at(60 + 86_400))
    assert [e.to_state for e in of(LotStateChanged, events)] == ["lapsed"]
    assert m.e.buying_power(PrincipalId("ra"))[1] == 0


def test_reserve_not_met_accept_and_decline() -> None:
    m = Market()
    lot = m.auction(reserve=1_200_000, duration=60)
    m.bid(lot, "ra", 1_000_000, at(1))
    m.do(ExpireDue(), at(60))
    assert refused(m.do(AcceptResult(lot_id=lot, owner=PrincipalId("s2")), at(61))) == (
        "lot_not_found"
    )
    events = m.do(AcceptResult(lot_id=lot, owner=PrincipalId("s1")), at(61))
    award = of(Awarded, events)[0]
    assert (award.via, award.price_fen_per_t) == ("accepted_below_reserve", 990_000)
    lot2 = m.auction(reserve=1_200_000, duration=60)
    m.bid(lot2, "rb", 1_000_000, at(62))
    m.do(ExpireDue(), at(200))
    m.do(DeclineResult(lot_id=lot2, owner=PrincipalId("s1")), at(201))
    assert m.e.buying_power(PrincipalId("rb"))[1] == 0
    assert refused(m.do(AcceptResult(lot_id=lot2, owner=PrincipalId("s1")), at(202))) == (
        "lot_not_open"
    )


def test_cancel_only_before_the_first_bid() -> None:
    m = Market()
    lot = m.auction()
    m.bid(lot, "ra", 1_000_000)
    assert refused(m.do(CancelLot(lot_id=lot, owner=PrincipalId("s1")))) == "lot_has_bids"
    lot2 = m.auction()
    events = m.do(CancelLot(lot_id=lot2, owner=PrincipalId("s1")))
    assert [e.to_state for e in of(LotStateChanged, events)] == ["cancelled"]
    assert refused(m.bid(lot2, "ra", 1_000_000)) == "lot_not_open"


def test_no_self_dealing_in_auctions() -> None:
    m = Market()
    lot = m.auction()
    events = m.do(
        AuctionBid(lot_id=lot, bidder=PrincipalId("x"), org=OrgId("S1"), max_price_fen_per_t=10**6)
    )
    assert refused(events) == "self_dealing_forbidden"


# -- standing bids join ----------------------------------------------------------------


def test_opted_in_standing_bids_join_so_a_lot_never_opens_below_the_market() -> None:
    m = Market()
    for i, (who, price, qty, join) in enumerate(
        [("ra", 1_010_000, 5000, True), ("rb", 1_005_000, 2000, True),
         ("rc", 1_020_000, 500, True), ("rc", 1_030_000, 5000, False)]
    ):  # fmt: skip
        m.do(
            PlaceBid(bid_id=OrderId(i + 1), market=M, owner=PrincipalId(who),
                     org=OrgId(who.upper()), price_fen_per_t=price, qty_kg=qty,
                     join_auctions=join)
        )  # fmt: skip
    lot = m.auction(weight=1000, start=990_000)
    # rc's 500 kg bid cannot take 1 t and its big bid did not opt in: ra and rb join
    events = m.do(ExpireDue())
    assert not events
    a = m.e._auctions[lot]
    assert a.leader is not None and a.leader.bidder == "ra"
    assert a.visible_price() == 1_010_000  # rb's 1,005,000 + ¥50: at ra's maximum


# -- buying power ------------------------------------------------------------------------


def test_buying_power_is_reserved_across_every_lot_led() -> None:
    m = Market(limit_fen=200_000)  # ¥2,000: two 1 t lots at ¥10,000/t
    lots = [m.auction(start=990_000) for _ in range(3)]
    assert accepted(m.bid(lots[0], "ra", 1_000_000)).leading  # holds 100,000
    assert accepted(m.bid(lots[1], "ra", 1_000_000)).leading  # holds 100,000 more
    assert refused(m.bid(lots[2], "ra", 990_000)) == "insufficient_buying_power"
    # outbid on lot 0: that deposit comes back at once and can be used elsewhere
    m.bid(lots[0], "rb", 1_100_000)
    assert m.e.buying_power(PrincipalId("ra")) == (200_000, 100_000, 100_000)
    assert accepted(m.bid(lots[2], "ra", 990_000)).leading
    assert refused(m.do(SetBuyingPower(bidder=PrincipalId("ra"), limit_fen=100_000))) == (
        "invalid_value"
    )


# -- offers ------------------------------------------------------------------------------


def offers_lot(m: Market, expires: datetime | None = None) -> OrderId:
    lot = m.id()
    m.do(
        InviteOffers(lot_id=lot, market=M, owner=PrincipalId("s1"), org=OrgId("S1"),
                     weight_kg=1000, expires_at=expires)
    )  # fmt: skip
    return lot


def offer(m: Market, lot: OrderId, who: str, price: int, ttl: int = HOUR) -> OrderId:
    oid = m.id()
    events = m.do(
        MakeOffer(offer_id=oid, lot_id=lot, bidder=PrincipalId(who), org=OrgId(who.upper()),
                            price_fen_per_t=price, expires_at=at(ttl))
    )  # fmt: skip
    assert not refused(events), events
    return oid


def test_accepting_an_offer_awards_the_lot_and_voids_the_rest() -> None:
    m = Market()
    lot = offers_lot(m)
    o1 = offer(m, lot, "ra", 1_000_000)
    o2 = offer(m, lot, "rb", 1_010_000)
    assert m.e.buying_power(PrincipalId("rb"))[1] == 101_000
    events = m.do(AcceptOffer(offer_id=o1, owner=PrincipalId("s1")))
    statuses = [(e.offer_id, e.status) for e in of(OfferChanged, events)]
    assert statuses == [(o1, "accepted"), (o2, "void")]
    assert of(Awarded, events)[0].price_fen_per_t == 1_000_000
    assert m.e.buying_power(PrincipalId("rb"))[1] == 0
    assert m.e.buying_power(PrincipalId("ra"))[1] == 100_000
    assert refused(m.do(RejectOffer(offer_id=o2, owner=PrincipalId("s1")))) == "lot_not_open"


def test_counter_then_accept_counter() -> None:
    m = Market()
    lot = offers_lot(m)
    o1 = offer(m, lot, "ra", 1_000_000)
    assert refused(m.do(CounterOffer(offer_id=o1, owner=PrincipalId("s2"), price_fen_per_t=1))) == (
        "offer_not_found"
    )
    m.do(CounterOffer(offer_id=o1, owner=PrincipalId("s1"), price_fen_per_t=1_030_000))
    assert refused(m.do(AcceptCounter(offer_id=o1, bidder=PrincipalId("rb")))) == "offer_not_found"
    events = m.do(AcceptCounter(offer_id=o1, bidder=PrincipalId("ra")))
    award = of(Awarded, events)[0]
    assert (award.price_fen_per_t, award.via) == (1_030_000, "counter")
    assert m.e.buying_power(PrincipalId("ra"))[1] == 103_000


def test_offers_expire_reject_and_one_open_offer_each() -> None:
    m = Market()
    lot = offers_lot(m, expires=at(2 * HOUR))
    o1 = offer(m, lot, "ra", 1_000_000, ttl=60)
    events = m.do(
        MakeOffer(offer_id=m.id(), lot_id=lot, bidder=PrincipalId("ra"), org=OrgId("RA"),
                  price_fen_per_t=1_000_000, expires_at=at(HOUR))
    )  # fmt: skip
    assert refused(events) == "offer_open"
    events = m.do(ExpireDue(), at(60))
    assert [(e.offer_id, e.status) for e in of(OfferChanged, events)] == [(o1, "expired")]
    o2 = offer(m, lot, "rb", 1_000_000, ttl=3 * HOUR)
    m.do(RejectOffer(offer_id=o2, owner=PrincipalId("s1")), at(61))
    o3 = offer(m, lot, "rc", 1_000_000, ttl=3 * HOUR)
    # the lot expires: its open offers are void and their deposits come back
    events = m.do(ExpireDue(), at(2 * HOUR))
    assert [(e.offer_id, e.status) for e in of(OfferChanged, events)] == [(o3, "void")]
    assert [e.to_state for e in of(LotStateChanged, events)] == ["expired"]
    assert m.e.buying_power(PrincipalId("rc"))[1] == 0
    assert refused(m.do(CancelLot(lot_id=lot, owner=PrincipalId("s1")), at(2 * HOUR))) == (
        "illegal_transition"
    )
