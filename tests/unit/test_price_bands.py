"""Published prices in the engine, and the band a daily quote sets (the fat-finger guard)."""

from datetime import UTC, datetime, timedelta

import pytest

from auction.engine import Engine
from auction.messages import (
    AmendBid,
    AnyCommand,
    AnyEvent,
    AuctionBid,
    InviteOffers,
    MakeOffer,
    PlaceBid,
    PricePublished,
    PublishPrice,
    Rejected,
    SellLot,
    SetBuyingPower,
    StartAuction,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
M = MarketId("ebike:330522")
R, S = PrincipalId("r1"), PrincipalId("s1")


class Session:
    def __init__(self) -> None:
        self.engine = Engine()
        self.now = T0
        self.next_id = 0
        self.run(SetBuyingPower(bidder=R, limit_fen=10**12))

    def run(self, command: AnyCommand) -> list[AnyEvent]:
        self.now += timedelta(seconds=1)
        return self.engine.apply(command, self.now)

    def new_id(self) -> OrderId:
        self.next_id += 1
        return OrderId(self.next_id)

    def bid(self, price: int) -> list[AnyEvent]:
        return self.run(
            PlaceBid(
                bid_id=self.new_id(), market=M, owner=R, org=OrgId("RO"),
                price_fen_per_t=price, qty_kg=1000,
            )
        )  # fmt: skip

    def daily(self, price: int, market: str = M) -> list[AnyEvent]:
        return self.run(
            PublishPrice(
                kind="daily", key=market, publisher=PrincipalId("p"), price_fen_per_t=price
            )
        )


def refused(events: list[AnyEvent]) -> str | None:
    return events[-1].code if isinstance(events[-1], Rejected) else None


def test_a_daily_quote_sets_a_band_of_20_percent_each_way() -> None:
    s = Session()
    published = s.daily(1_000_000)
    assert isinstance(published[-1], PricePublished)
    assert (published[-1].band_low_fen_per_t, published[-1].band_high_fen_per_t) == (
        800_000,
        1_200_000,
    )
    assert refused(s.bid(799_999)) == "price_out_of_band"
    assert refused(s.bid(1_200_001)) == "price_out_of_band"
    assert refused(s.bid(800_000)) is None
    assert refused(s.bid(1_200_000)) is None
    # the band rounds inwards: never a price more than 20% away
    odd = s.daily(1_000_003)[-1]
    assert isinstance(odd, PricePublished)
    assert odd.band_low_fen_per_t == 800_003 and odd.band_high_fen_per_t == 1_200_003


def test_no_quote_no_band_and_a_new_quote_moves_it() -> None:
    s = Session()
    assert refused(s.bid(10)) is None  # no daily quote yet
    s.daily(1_000_000, "ebike:330500")
    assert refused(s.bid(10)) is None  # another market's quote
    s.daily(1_000_000)
    assert refused(s.bid(1_300_000)) == "price_out_of_band"
    s.daily(1_200_000)
    assert refused(s.bid(1_300_000)) is None


def test_every_price_a_bidder_or_store_names_is_guarded() -> None:
    s = Session()
    s.daily(1_000_000)
    placed = s.bid(1_000_000)
    bid_id = next(e for e in placed if hasattr(e, "bid_id")).bid_id
    amend = AmendBid(bid_id=bid_id, owner=R, price_fen_per_t=2_000_000)
    assert refused(s.run(amend)) == "price_out_of_band"
    assert refused(s.run(AmendBid(bid_id=bid_id, owner=R, qty_kg=900))) is None  # no price
    sell = SellLot(lot_id=s.new_id(), market=M, owner=S, org=OrgId("SO"), weight_kg=500,
                   floor_price_fen_per_t=100, if_unsold="rest")  # fmt: skip
    assert refused(s.run(sell)) == "price_out_of_band"
    for field in ("start_price_fen_per_t", "reserve_fen_per_t", "buy_now_fen_per_t"):
        prices = {"start_price_fen_per_t": 900_000, field: 5_000_000}
        if field == "start_price_fen_per_t":
            prices = {"start_price_fen_per_t": 5_000_000}
        auction = StartAuction(lot_id=s.new_id(), market=M, owner=S, org=OrgId("SO"),
                               weight_kg=500, duration_s=600, **prices)  # type: ignore[arg-type]  # fmt: skip
        answer = s.run(auction)
        assert refused(answer) == "price_out_of_band" and answer[-1].field == field  # type: ignore[union-attr]
    lot = s.new_id()
    ok = StartAuction(lot_id=lot, market=M, owner=S, org=OrgId("SO"), weight_kg=500,
                      duration_s=600, start_price_fen_per_t=900_000)  # fmt: skip
    assert refused(s.run(ok)) is None
    high = AuctionBid(lot_id=lot, bidder=R, org=OrgId("RO"), max_price_fen_per_t=9_000_000)
    assert refused(s.run(high)) == "price_out_of_band"
    offers = s.new_id()
    s.run(InviteOffers(lot_id=offers, market=M, owner=S, org=OrgId("SO"), weight_kg=500))
    offer = MakeOffer(offer_id=s.new_id(), lot_id=offers, bidder=R, org=OrgId("RO"),
                      price_fen_per_t=1, expires_at=s.now + timedelta(hours=1))  # fmt: skip
    assert refused(s.run(offer)) == "price_out_of_band"


@pytest.mark.parametrize(
    ("kind", "key", "code"),
    [
        ("daily", "ebike:33", "unknown_market"),
        ("upstream", "nope:330522", "unknown_market"),
        ("end_of_chain", "ebike:330522", "unknown_market"),
        ("end_of_chain", "plutonium", "unknown_market"),
        ("end_of_chain", "lead", None),
        ("end_of_chain", "ebike", None),
        ("upstream", M, None),
    ],
)
def test_what_a_price_may_be_about(kind: str, key: str, code: str | None) -> None:
    s = Session()
    command = PublishPrice(kind=kind, key=key, publisher=PrincipalId("p"),  # type: ignore[arg-type]
                           price_fen_per_t=1_000_000, vat_included=True)  # fmt: skip
    assert refused(s.run(command)) == code


def test_a_refused_price_changes_nothing() -> None:
    s = Session()
    before = s.engine.state_hash()
    bad = PublishPrice(kind="daily", key=M, publisher=PrincipalId("p"), price_fen_per_t=0)
    assert refused(s.run(bad)) == "invalid_value"
    assert s.engine.state_hash() == before
    s.daily(1_000_000)
    assert s.engine.state_hash() != before  # the band is state: snapshots and replays keep it
