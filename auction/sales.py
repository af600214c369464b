"""Competitive sales (竞价投售) and negotiated sales (议价投售) of whole lots.

The auction rules are in ``auction.auctions``, the lot's states in ``auction.lifecycle``
and buying power in ``auction.buying_power``; this module applies the commands that
drive them.  Every handler validates everything first and only then changes state, so
a ``ClientError`` leaves nothing behind.

Holds on buying power, by key: a standing bid ``("bid", bid_id)`` (engine), the leader
of an auction ``("lead", lot_id)``, an open offer ``("offer", offer_id)``, and an award,
or a below-reserve result waiting for the store, ``("award", lot_id)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from auction.auctions import Auction
from auction.book import BUY
from auction.errors import ClientError, InvariantBroken
from auction.messages import (
    AcceptCounter,
    AcceptOffer,
    AcceptResult,
    AnyEvent,
    AuctionBid,
    AuctionBidAccepted,
    AuctionClosed,
    AuctionExtended,
    AuctionStarted,
    Awarded,
    AwardVia,
    BuyNow,
    CounterOffer,
    DeclineResult,
    InviteOffers,
    LeaderChanged,
    MakeOffer,
    OfferChanged,
    OfferStatus,
    Outbid,
    RejectOffer,
    ResultDecided,
    StartAuction,
    WithdrawOffer,
)
from auction.money import amount_fen
from auction.state import EngineState, Lot, Offer, check_expiry, check_price, check_weight
from auction.types import OrderId, OrgId, PrincipalId


class Sales(EngineState):
    # -- competitive sale --------------------------------------------------------------

    def _start_auction(self, c: StartAuction, now: datetime, events: list[AnyEvent]) -> None:
        self._check_new_id(c.lot_id, "lot_id")
        rules = self._check_market(c.market)
        check_weight(c.weight_kg, "weight_kg")
        check_price(c.start_price_fen_per_t, "start_price_fen_per_t")
        self._check_band(c.market, c.start_price_fen_per_t, "start_price_fen_per_t")
        if c.reserve_fen_per_t is not None:
            check_price(c.reserve_fen_per_t, "reserve_fen_per_t")
            self._check_band(c.market, c.reserve_fen_per_t, "reserve_fen_per_t")
        if c.buy_now_fen_per_t is not None:
            check_price(c.buy_now_fen_per_t, "buy_now_fen_per_t")
            self._check_band(c.market, c.buy_now_fen_per_t, "buy_now_fen_per_t")
            floor = max(c.start_price_fen_per_t, c.reserve_fen_per_t or 0)
            if c.buy_now_fen_per_t <= floor:
                raise ClientError(
                    "invalid_value",
                    "buy_now_fen_per_t must be above the start price and the reserve",
                    field="buy_now_fen_per_t",
                )
        if not rules.min_duration_s <= c.duration_s <= rules.max_duration_s:
            raise ClientError(
                "invalid_value",
                f"duration_s must be between {rules.min_duration_s} and {rules.max_duration_s}",
                field="duration_s",
            )
        old = self._check_relist(c.relist_of, c.owner)

        self._last_order_id = c.lot_id
        if old is not None:
            self._move(old, "relist", now, events)
        closes_at = now + timedelta(seconds=c.duration_s)
        lot = self._lots[c.lot_id] = Lot(
            c.lot_id, c.market, c.owner, c.org, c.weight_kg, "auction", "listed"
        )
        auction = self._auctions[c.lot_id] = Auction(
            lot_id=c.lot_id,
            market=c.market,
            owner=c.owner,
            org=c.org,
            weight_kg=c.weight_kg,
            start_price=c.start_price_fen_per_t,
            reserve=c.reserve_fen_per_t,
            buy_now=c.buy_now_fen_per_t,
            rules=rules,
            opened_at=now,
            original_close=closes_at,
            closes_at=closes_at,
            proxies={},
            next_min=c.start_price_fen_per_t,
        )
        self._move(lot, "open_auction", now, events)
        events.append(
            AuctionStarted(
                at=now,
                lot_id=c.lot_id,
                market=c.market,
                owner=c.owner,
                org=c.org,
                weight_kg=c.weight_kg,
                start_price_fen_per_t=c.start_price_fen_per_t,
                has_reserve=c.reserve_fen_per_t is not None,
                buy_now_fen_per_t=c.buy_now_fen_per_t,
                closes_at=closes_at,
            )
        )
        self._deadline(closes_at, c.lot_id, "close")
        self._join_standing_bids(auction, now, events)

    def _join_standing_bids(self, auction: Auction, now: datetime, events: list[AnyEvent]) -> None:
        """Opted-in standing bids that could take the whole lot enter as proxies up to
        their price, best first, so the lot never opens below the market.  One that the
        rules or its buying power would refuse just stays out."""
        book = self._books.get(auction.market)
        if book is None:
            return
        weight = auction.weight_kg
        for order in list(book.orders(BUY)):
            entry = self._entries[OrderId(order.id)]
            if (
                not entry.join_auctions
                or entry.org == auction.org
                or order.qty < weight
                or order.min_qty > weight
                or entry.owner in auction.proxies
            ):
                continue
            try:
                self._check_auction_bid(auction, entry.owner, order.price)
            except ClientError:
                continue
            self._enter_auction_bid(auction, entry.owner, entry.org, order.price, now, events, True)

    def _auction_for(self, lot_id: OrderId) -> tuple[Lot, Auction]:
        lot = self._lots.get(lot_id)
        auction = self._auctions.get(lot_id)
        if lot is None:
            raise ClientError("lot_not_found", f"no lot {lot_id}")
        if auction is None:
            raise ClientError("lot_not_open", f"lot {lot_id} is for {lot.kind}, not in auction")
        if lot.state != "in_auction":
            raise ClientError("lot_not_open", f"lot {lot_id} is {lot.state}, not in auction")
        return lot, auction

    def _check_auction_bid(self, auction: Auction, bidder: PrincipalId, max_price: int) -> None:
        check_price(max_price, "max_price_fen_per_t")
        leader = auction.leader
        units = self._bp.units(max_price, auction.weight_kg)
        if leader is not None and leader.bidder == bidder:
            if max_price <= leader.max_price:
                raise ClientError(
                    "below_increment",
                    f"you lead with a maximum of {leader.max_price} fen/t; a new maximum "
                    "must be higher",
                    field="max_price_fen_per_t",
                )
            self._bp.check(bidder, units, replacing=("lead", auction.lot_id))
            return
        least = auction.min_next_bid()
        if max_price < least:
            raise ClientError(
                "below_increment",
                f"the minimum next bid is {least} fen/t",
                field="max_price_fen_per_t",
                limits={"min_next_bid_fen_per_t": least},
            )
        self._bp.check(bidder, units)

    def _auction_bid(self, c: AuctionBid, now: datetime, events: list[AnyEvent]) -> None:
        lot, auction = self._auction_for(c.lot_id)
        if now >= auction.closes_at:
            raise InvariantBroken(f"auction {c.lot_id} should have closed at {auction.closes_at}")
        if c.org == lot.org:
            raise ClientError(
                "self_dealing_forbidden", "you cannot bid on your own organisation's lot"
            )
        self._check_band(lot.market, c.max_price_fen_per_t, "max_price_fen_per_t")
        self._check_auction_bid(auction, c.bidder, c.max_price_fen_per_t)
        self._enter_auction_bid(auction, c.bidder, c.org, c.max_price_fen_per_t, now, events)

    def _enter_auction_bid(
        self,
        auction: Auction,
        bidder: PrincipalId,
        org: OrgId,
        max_price: int,
        now: datetime,
        events: list[AnyEvent],
        auto: bool = False,
    ) -> None:
        before = auction.leader
        displaced = auction.place(bidder, org, max_price, auto=auto)
        leader = auction.leader
        assert leader is not None
        key = ("lead", int(auction.lot_id))
        changed = before is None or before.bidder != leader.bidder
        if leader.bidder == bidder:
            if changed:
                self._release(key)
            self._hold(key, bidder, self._bp.units(max_price, auction.weight_kg))
        visible = auction.visible_price()
        assert visible is not None
        events.append(
            AuctionBidAccepted(
                at=now,
                lot_id=auction.lot_id,
                bidder=bidder,
                max_price_fen_per_t=max_price,
                leading=leader.bidder == bidder,
                auto=auto,
                visible_price_fen_per_t=visible,
                min_next_bid_fen_per_t=auction.min_next_bid(),
                reserve_met=auction.reserve_met(),
                leader=leader.bidder,
            )
        )
        if changed:
            events.append(
                LeaderChanged(
                    at=now,
                    lot_id=auction.lot_id,
                    leader=leader.bidder,
                    previous=before.bidder if before is not None else None,
                    visible_price_fen_per_t=visible,
                )
            )
        if displaced is not None:
            events.append(
                Outbid(
                    at=now,
                    lot_id=auction.lot_id,
                    bidder=displaced.bidder,
                    by=bidder,
                    visible_price_fen_per_t=visible,
                )
            )
        elif leader.bidder != bidder:
            events.append(
                Outbid(
                    at=now,
                    lot_id=auction.lot_id,
                    bidder=bidder,
                    by=leader.bidder,
                    visible_price_fen_per_t=visible,
                )
            )
        if changed and before is not None and auction.extend_for_leader_change(now):
            extended = auction.closes_at - auction.original_close
            events.append(
                AuctionExtended(
                    at=now,
                    lot_id=auction.lot_id,
                    closes_at=auction.closes_at,
                    extended_s=int(extended.total_seconds()),
                )
            )
            self._deadline(auction.closes_at, auction.lot_id, "close")

    def _buy_now(self, c: BuyNow, now: datetime, events: list[AnyEvent]) -> None:
        lot, auction = self._auction_for(c.lot_id)
        if c.org == lot.org:
            raise ClientError(
                "self_dealing_forbidden", "you cannot buy your own organisation's lot"
            )
        price = auction.buy_now
        if price is None or not auction.buy_now_open():
            raise ClientError("lot_not_open", "buy-now is not offered on this lot (any more)")
        units = self._bp.units(price, lot.weight_kg)
        self._bp.check(c.bidder, units)
        self._hold(("award", int(lot.lot_id)), c.bidder, units)
        events.append(
            AuctionClosed(
                at=now,
                lot_id=lot.lot_id,
                result="bought_now",
                leader=c.bidder,
                price_fen_per_t=price,
            )
        )
        self._award(lot, c.bidder, c.org, price, "buy_now", now, events)
        self._move(lot, "buy_now", now, events)

    def _close_auction(
        self, lot: Lot, auction: Auction, now: datetime, events: list[AnyEvent]
    ) -> None:
        leader = auction.leader
        if leader is None:
            events.append(
                AuctionClosed(
                    at=now, lot_id=lot.lot_id, result="no_bids", leader=None, price_fen_per_t=None
                )
            )
            self._move(lot, "expire", now, events)
            return
        price = auction.visible_price()
        assert price is not None
        units = self._bp.units(price, lot.weight_kg)
        self._move_hold(("lead", int(lot.lot_id)), ("award", int(lot.lot_id)), units)
        if auction.reserve_met():
            events.append(
                AuctionClosed(
                    at=now,
                    lot_id=lot.lot_id,
                    result="awarded",
                    leader=leader.bidder,
                    price_fen_per_t=price,
                )
            )
            self._award(lot, leader.bidder, leader.org, price, "auction", now, events)
            self._move(lot, "award", now, events)
            return
        accept_by = auction.closes_at + timedelta(seconds=auction.rules.acceptance_window_s)
        auction.accept_by = accept_by
        events.append(
            AuctionClosed(
                at=now,
                lot_id=lot.lot_id,
                result="reserve_not_met",
                leader=leader.bidder,
                price_fen_per_t=price,
                accept_by=accept_by,
            )
        )
        self._move(lot, "reserve_not_met", now, events)
        self._deadline(accept_by, lot.lot_id, "lapse")

    def _awaiting(self, lot_id: OrderId, owner: PrincipalId) -> tuple[Lot, Auction]:
        lot = self._own_lot(lot_id, owner)
        auction = self._auctions.get(lot_id)
        if auction is None or lot.state != "awaiting_acceptance":
            raise ClientError("lot_not_open", f"lot {lot_id} is not waiting for your decision")
        return lot, auction

    def _accept_result(self, c: AcceptResult, now: datetime, events: list[AnyEvent]) -> None:
        lot, auction = self._awaiting(c.lot_id, c.owner)
        leader = auction.leader
        price = auction.visible_price()
        assert leader is not None and price is not None
        events.append(ResultDecided(at=now, lot_id=lot.lot_id, decision="accepted"))
        self._award(lot, leader.bidder, leader.org, price, "accepted_below_reserve", now, events)
        self._move(lot, "accept", now, events)

    def _decline_result(self, c: DeclineResult, now: datetime, events: list[AnyEvent]) -> None:
        lot, _ = self._awaiting(c.lot_id, c.owner)
        self._release(("award", int(lot.lot_id)))
        events.append(ResultDecided(at=now, lot_id=lot.lot_id, decision="declined"))
        self._move(lot, "decline", now, events)

    def _lapse(self, lot: Lot, now: datetime, events: list[AnyEvent]) -> None:
        self._release(("award", int(lot.lot_id)))
        events.append(ResultDecided(at=now, lot_id=lot.lot_id, decision="lapsed"))
        self._move(lot, "lapse", now, events)

    def _award(
        self,
        lot: Lot,
        buyer: PrincipalId,
        buyer_org: OrgId,
        price: int,
        via: AwardVia,
        now: datetime,
        events: list[AnyEvent],
    ) -> None:
        """The event of a whole-lot award; the caller has put the hold under ``award``."""
        held = self._bp.held(("award", int(lot.lot_id)))
        if held is None or held[0] != buyer:
            raise InvariantBroken(f"award of lot {lot.lot_id} without the buyer's deposit held")
        events.append(
            Awarded(
                at=now,
                lot_id=lot.lot_id,
                market=lot.market,
                buyer=buyer,
                buyer_org=buyer_org,
                seller=lot.owner,
                seller_org=lot.org,
                price_fen_per_t=price,
                weight_kg=lot.weight_kg,
                amount_fen=amount_fen(price, lot.weight_kg),
                deposit_fen=self._bp.deposit_fen(price, lot.weight_kg),
                via=via,
            )
        )

    # -- negotiated sale ---------------------------------------------------------------

    def _invite_offers(self, c: InviteOffers, now: datetime, events: list[AnyEvent]) -> None:
        self._check_new_id(c.lot_id, "lot_id")
        self._check_market(c.market)
        check_weight(c.weight_kg, "weight_kg")
        check_expiry(c.expires_at, now)
        old = self._check_relist(c.relist_of, c.owner)

        self._last_order_id = c.lot_id
        if old is not None:
            self._move(old, "relist", now, events)
        lot = self._lots[c.lot_id] = Lot(
            c.lot_id, c.market, c.owner, c.org, c.weight_kg, "offers", "listed", c.expires_at, 0, []
        )
        self._move(lot, "open_offers", now, events)
        if c.expires_at is not None:
            self._deadline(c.expires_at, c.lot_id, "expiry")

    def _make_offer(self, c: MakeOffer, now: datetime, events: list[AnyEvent]) -> None:
        self._check_new_id(c.offer_id, "offer_id")
        lot = self._lots.get(c.lot_id)
        if lot is None:
            raise ClientError("lot_not_found", f"no lot {c.lot_id}")
        if lot.kind != "offers":
            raise ClientError("lot_not_open", f"lot {c.lot_id} is for {lot.kind}, not offers")
        if lot.state != "taking_offers":
            raise ClientError("lot_not_open", f"lot {c.lot_id} is {lot.state}")
        if c.org == lot.org:
            raise ClientError(
                "self_dealing_forbidden", "you cannot make an offer on your own organisation's lot"
            )
        check_price(c.price_fen_per_t, "price_fen_per_t")
        self._check_band(lot.market, c.price_fen_per_t, "price_fen_per_t")
        check_expiry(c.expires_at, now)
        if any(self._offers[o].bidder == c.bidder for o in lot.open_offers):
            raise ClientError("offer_open", "you already have an open offer on this lot")
        units = self._bp.units(c.price_fen_per_t, lot.weight_kg)
        self._bp.check(c.bidder, units)

        self._last_order_id = c.offer_id
        offer = self._offers[c.offer_id] = Offer(
            c.offer_id, c.lot_id, c.bidder, c.org, c.price_fen_per_t, c.expires_at
        )
        lot.offers_made += 1
        lot.open_offers.append(c.offer_id)
        self._hold(("offer", int(c.offer_id)), c.bidder, units)
        self._offer_event(offer, now, events)
        self._deadline(c.expires_at, c.offer_id, "offer_expiry")

    def _open_offer(self, offer_id: OrderId, who: PrincipalId, *, store: bool) -> tuple[Lot, Offer]:
        offer = self._offers.get(offer_id)
        lot = self._lots.get(offer.lot_id) if offer is not None else None
        if offer is None or lot is None or (lot.owner if store else offer.bidder) != who:
            raise ClientError("offer_not_found", f"no offer {offer_id} for you")
        if offer.status not in ("made", "countered") or lot.state != "taking_offers":
            raise ClientError("lot_not_open", f"offer {offer_id} is {offer.status}")
        return lot, offer

    def _counter_offer(self, c: CounterOffer, now: datetime, events: list[AnyEvent]) -> None:
        lot, offer = self._open_offer(c.offer_id, c.owner, store=True)
        check_price(c.price_fen_per_t, "price_fen_per_t")
        self._check_band(lot.market, c.price_fen_per_t, "price_fen_per_t")
        offer.status = "countered"
        offer.counter = c.price_fen_per_t
        self._offer_event(offer, now, events)

    def _accept_offer(self, c: AcceptOffer, now: datetime, events: list[AnyEvent]) -> None:
        lot, offer = self._open_offer(c.offer_id, c.owner, store=True)
        units = self._bp.units(offer.price, lot.weight_kg)
        self._close_offers(lot, offer, offer.price, units, "offer", now, events)

    def _accept_counter(self, c: AcceptCounter, now: datetime, events: list[AnyEvent]) -> None:
        lot, offer = self._open_offer(c.offer_id, c.bidder, store=False)
        if offer.counter is None:
            raise ClientError("lot_not_open", "the store has not countered this offer")
        units = self._bp.units(offer.counter, lot.weight_kg)
        key = ("offer", int(offer.offer_id))
        self._bp.check(offer.bidder, units, replacing=key)
        self._hold(key, offer.bidder, units)
        self._close_offers(lot, offer, offer.counter, units, "counter", now, events)

    def _close_offers(
        self,
        lot: Lot,
        winner: Offer,
        price: int,
        units: int,
        via: AwardVia,
        now: datetime,
        events: list[AnyEvent],
    ) -> None:
        self._move_hold(("offer", int(winner.offer_id)), ("award", int(lot.lot_id)), units)
        winner.status = "accepted"
        lot.open_offers.remove(winner.offer_id)
        self._offer_event(winner, now, events)
        self._void_offers(lot, now, events)
        self._award(lot, winner.bidder, winner.org, price, via, now, events)
        self._move(lot, "accept_offer", now, events)

    def _void_offers(self, lot: Lot, now: datetime, events: list[AnyEvent]) -> None:
        for offer_id in lot.open_offers:
            offer = self._offers[offer_id]
            offer.status = "void"
            self._release(("offer", int(offer_id)))
            self._offer_event(offer, now, events)
        lot.open_offers.clear()

    def _reject_offer(self, c: RejectOffer, now: datetime, events: list[AnyEvent]) -> None:
        lot, offer = self._open_offer(c.offer_id, c.owner, store=True)
        self._end_offer(lot, offer, "rejected", now, events)

    def _withdraw_offer(self, c: WithdrawOffer, now: datetime, events: list[AnyEvent]) -> None:
        lot, offer = self._open_offer(c.offer_id, c.bidder, store=False)
        self._end_offer(lot, offer, "withdrawn", now, events)

    def _end_offer(
        self, lot: Lot, offer: Offer, status: OfferStatus, now: datetime, events: list[AnyEvent]
    ) -> None:
        offer.status = status
        lot.open_offers.remove(offer.offer_id)
        self._release(("offer", int(offer.offer_id)))
        self._offer_event(offer, now, events)

    def _offer_event(self, offer: Offer, now: datetime, events: list[AnyEvent]) -> None:
        events.append(
            OfferChanged(
                at=now,
                offer_id=offer.offer_id,
                lot_id=offer.lot_id,
                bidder=offer.bidder,
                status=offer.status,
                price_fen_per_t=offer.price,
                counter_price_fen_per_t=offer.counter,
                expires_at=offer.expires_at,
            )
        )

    # -- deadlines of sales ------------------------------------------------------------

    def _fire_sale_deadline(
        self, when: datetime, object_id: int, kind: str, now: datetime, events: list[AnyEvent]
    ) -> None:
        oid = OrderId(object_id)
        if kind == "close":
            lot = self._lots.get(oid)
            auction = self._auctions.get(oid)
            if lot and auction and lot.state == "in_auction" and auction.closes_at == when:
                self._close_auction(lot, auction, now, events)
        elif kind == "lapse":
            lot = self._lots.get(oid)
            auction = self._auctions.get(oid)
            if lot and auction and lot.state == "awaiting_acceptance" and auction.accept_by == when:
                self._lapse(lot, now, events)
        elif kind == "offer_expiry":
            offer = self._offers.get(oid)
            if offer and offer.status in ("made", "countered") and offer.expires_at == when:
                self._end_offer(self._lots[offer.lot_id], offer, "expired", now, events)
        elif kind == "expiry":
            lot = self._lots.get(oid)
            if (
                lot
                and lot.kind == "offers"
                and lot.state == "taking_offers"
                and lot.expires_at == when
            ):
                self._void_offers(lot, now, events)
                self._move(lot, "expire", now, events)
