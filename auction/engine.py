"""The engine: ``apply(command, now) -> events`` over every market.  Pure and synchronous.

No I/O, no clock, no randomness: ``now`` and every id come in with the command, so the
same commands at the same times give the same events, whatever the process or
``PYTHONHASHSEED``.  Rules, beyond the book's (``auction.book``), the auction's
(``auction.auctions``), the lifecycle's (``auction.lifecycle``) and buying power's
(``auction.buying_power``):

* ``now`` never goes backwards.  Before a command is looked at, every deadline at or
  before ``now`` fires, earliest first (ties by object id): expiries of bids, lots and
  offers, auction closes, acceptance windows lapsing.  Time passing is not the command's
  doing, so those events come even when it is refused.
* A command is validated fully before anything changes; a refused command answers one
  ``Rejected`` event and changes nothing.
* Bid, lot and offer ids share one space and must increase: an id at or below the
  highest one already used is a ``duplicate_id``.  (The shell assigns them in order.)
* Another principal's bid, lot or offer answers ``*_not_found``, exactly as one that
  does not exist.
* Standing bids are the buy side of their market's book and reserve buying power on
  their open quantity; one-click lots are the sell side.  A bid rests until filled,
  cancelled or expired; what is left of it below its minimum lot is cancelled
  (``below_min_lot``).  A lot is all-or-none unless it allows partial fills; an unsold
  lot rests at its floor or is refused (``no_buyer``), as the store chose.
* After each command, every bidder whose buying power changed gets one
  ``BuyingPowerChanged``, in name order.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from auction.book import BUY, MARKET_SELL_PRICE, SELL, Book, Fill, Order
from auction.catalogue import Catalogue
from auction.errors import ClientError, InvariantBroken
from auction.messages import (
    AcceptCounter,
    AcceptOffer,
    AcceptResult,
    AmendBid,
    AnyCommand,
    AnyEvent,
    AuctionBid,
    BidAmended,
    BidCancelled,
    BidExpired,
    BidPlaced,
    BuyNow,
    CancelBid,
    CancelLot,
    Command,
    CounterOffer,
    DeclineResult,
    ExpireDue,
    InviteOffers,
    LotCancelled,
    LotExpired,
    LotPosted,
    MakeOffer,
    PlaceBid,
    PricePublished,
    PublishPrice,
    Rejected,
    RejectOffer,
    SellLot,
    SetBuyingPower,
    StartAuction,
    Traded,
    WithdrawOffer,
)
from auction.money import amount_fen
from auction.sales import Sales
from auction.state import Entry, Lot, Offer, check_expiry, check_price, check_weight
from auction.types import MarketId, OrderId, OrgId, PrincipalId, TradeId

__all__ = ["Engine", "Entry"]


class Engine(Sales):
    """Every market's book and lots, buying power, deadlines and the id counters."""

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        super().__init__(catalogue)
        # one handler per command type: a dict lookup instead of a chain of isinstance
        self._handlers: dict[type[Command], Callable[[Any, datetime, list[AnyEvent]], None]] = {
            PlaceBid: self._place_bid,
            SellLot: self._sell_lot,
            AuctionBid: self._auction_bid,
            AmendBid: self._amend_bid,
            CancelBid: self._cancel_bid,
            CancelLot: self._cancel_lot,
            ExpireDue: self._expire_due,
            StartAuction: self._start_auction,
            BuyNow: self._buy_now,
            AcceptResult: self._accept_result,
            DeclineResult: self._decline_result,
            InviteOffers: self._invite_offers,
            MakeOffer: self._make_offer,
            CounterOffer: self._counter_offer,
            AcceptOffer: self._accept_offer,
            AcceptCounter: self._accept_counter,
            RejectOffer: self._reject_offer,
            WithdrawOffer: self._withdraw_offer,
            SetBuyingPower: self._set_buying_power,
            PublishPrice: self._publish_price,
        }

    # -- the one entry point -----------------------------------------------------------

    def apply(self, command: AnyCommand, now: datetime) -> list[AnyEvent]:
        if now.tzinfo is None:
            raise InvariantBroken("the engine takes aware datetimes only")
        if self._now is not None and now < self._now:
            raise InvariantBroken(f"time went backwards: {now} < {self._now}")
        self._now = now
        events: list[AnyEvent] = []
        if self._deadlines and self._deadlines[0][0] <= now:
            self._fire_deadlines(now, events)
            self._buying_power_events(now, events)
        mark = len(events)
        handler = self._handlers.get(type(command))
        if handler is None:
            raise InvariantBroken(f"unknown command {command!r}")
        try:
            handler(command, now, events)
        except ClientError as err:
            if len(events) > mark or self._touched:
                raise InvariantBroken(
                    f"{_tag(command)} was refused ({err.code}) after it changed something"
                ) from err
            events.append(
                Rejected(
                    at=now,
                    command=_tag(command),
                    code=err.code,
                    detail=err.detail,
                    field=err.field,
                    limits=err.limits,
                )
            )
            return events
        if self._touched:
            self._buying_power_events(now, events)
        return events

    def _set_buying_power(
        self, command: SetBuyingPower, now: datetime, events: list[AnyEvent]
    ) -> None:
        self._bp.set_limit(command.bidder, command.limit_fen)
        self._touched.add(command.bidder)

    def _publish_price(self, c: PublishPrice, now: datetime, events: list[AnyEvent]) -> None:
        check_price(c.price_fen_per_t, "price_fen_per_t")
        band: tuple[int, int] | None = None
        if c.kind == "end_of_chain":
            if c.key != "lead" and not self._catalogue.has_category(c.key):
                raise ClientError(
                    "unknown_market", f"{c.key[:40]!r} is not a category or 'lead'", field="key"
                )
        else:
            market = MarketId(c.key)
            rules = self._check_market(market)
            if c.kind == "daily":
                bp = rules.band_bp
                if bp:
                    band = (-(-c.price_fen_per_t * (10_000 - bp) // 10_000),
                            c.price_fen_per_t * (10_000 + bp) // 10_000)  # fmt: skip
                    self._bands[market] = band
                else:
                    self._bands.pop(market, None)
        events.append(
            PricePublished(
                at=now,
                kind=c.kind,
                key=c.key,
                publisher=c.publisher,
                price_fen_per_t=c.price_fen_per_t,
                vat_included=c.vat_included,
                band_low_fen_per_t=band[0] if band else None,
                band_high_fen_per_t=band[1] if band else None,
            )
        )

    def _expire_due(self, command: ExpireDue, now: datetime, events: list[AnyEvent]) -> None:
        """Nothing to do: due deadlines fire before every command."""

    # -- queries -----------------------------------------------------------------------

    @property
    def catalogue(self) -> Catalogue:
        return self._catalogue

    def book(self, market: MarketId) -> Book | None:
        return self._books.get(market)

    def markets(self) -> list[MarketId]:
        return sorted(m for m, b in self._books.items() if len(b))

    def sell_quote(self, market: MarketId, weight_kg: int, org: OrgId) -> int | None:
        """The price a one-click sale of ``weight_kg`` (whole, all-or-none) by ``org``
        would trade at now: the first bid, best price then oldest, that can take it
        whole.  A read; nothing changes."""
        book = self._books.get(market)
        if book is None:
            return None
        for bid in book.orders(BUY):
            if bid.org == org or bid.qty < weight_kg or weight_kg < bid.min_qty:
                continue
            if bid.aon and bid.qty != weight_kg:
                continue
            return bid.price
        return None

    def sizes(self) -> dict[str, int]:
        """How much the engine holds: lots (every one stays until settlement exists),
        auctions, offers, resting orders and buying-power holds."""
        return {
            "lots": len(self._lots),
            "auctions": len(self._auctions),
            "offers": len(self._offers),
            "resting": len(self._entries),
            "holds": self._bp.count(),
        }

    def open_offers(self, lot_id: OrderId) -> list[Offer]:
        """The offers still open on a lot (made or countered), oldest first."""
        lot = self._lots.get(lot_id)
        return [] if lot is None else [self._offers[o] for o in lot.open_offers]

    def entry(self, order_id: OrderId) -> Entry | None:
        return self._entries.get(order_id)

    def lot(self, lot_id: OrderId) -> Lot | None:
        return self._lots.get(lot_id)

    def buying_power(self, bidder: PrincipalId) -> tuple[int, int, int]:
        """``(limit_fen, reserved_fen, available_fen)``."""
        return self._bp.summary(bidder)

    def snapshot(self) -> dict[str, Any]:
        """The canonical state, in a fixed order: what ``state_hash`` hashes."""
        markets = []
        for market in self.markets():
            book = self._books[market]
            sides = []
            for side in (BUY, SELL):
                rows = []
                for o in book.orders(side):
                    e = self._entries[OrderId(o.id)]
                    expires = e.expires_at.isoformat() if e.expires_at else None
                    rows.append([o.id, o.price, o.qty, o.min_qty, o.aon, e.owner, e.org, expires])
                sides.append(rows)
            markets.append([market, sides[0], sides[1]])
        auctions = []
        for lot_id in sorted(self._auctions):
            a = self._auctions[lot_id]
            proxies = sorted(
                [p.bidder, p.org, p.max_price, p.seq, p.auto] for p in a.proxies.values()
            )
            auctions.append(
                [
                    lot_id,
                    a.start_price,
                    a.reserve,
                    a.buy_now,
                    a.closes_at,
                    a.original_close,
                    a.accept_by,
                    a.leader.bidder if a.leader else None,
                    a.runner_up,
                    a.bids,
                    a.visible,
                    a.next_min,
                    proxies,
                ]
            )
        holds = sorted([list(k), who, units] for k, (who, units) in self._bp.holds().items())
        return {
            "last_order_id": self._last_order_id,
            "next_trade_id": self._next_trade_id,
            "markets": markets,
            "lots": [msgspec.to_builtins(self._lots[k]) for k in sorted(self._lots)],
            "auctions": msgspec.to_builtins(auctions),
            "offers": [msgspec.to_builtins(self._offers[k]) for k in sorted(self._offers)],
            "limits": [[b, self._bp.limit_fen(b)] for b in self._bp.bidders()],
            "holds": holds,
            "bands": [[m, *self._bands[m]] for m in sorted(self._bands)],
        }

    def state_hash(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self.snapshot())).hexdigest()

    # -- standing bids -----------------------------------------------------------------

    def _place_bid(self, c: PlaceBid, now: datetime, events: list[AnyEvent]) -> None:
        self._check_new_id(c.bid_id, "bid_id")
        self._check_market(c.market)
        check_price(c.price_fen_per_t, "price_fen_per_t")
        self._check_band(c.market, c.price_fen_per_t, "price_fen_per_t")
        check_weight(c.qty_kg, "qty_kg")
        if not 0 <= c.min_lot_kg <= c.qty_kg:
            raise ClientError(
                "invalid_value",
                f"min_lot_kg must be between 0 and qty_kg ({c.qty_kg})",
                field="min_lot_kg",
            )
        check_expiry(c.expires_at, now)
        units = self._bp.units(c.price_fen_per_t, c.qty_kg)
        self._bp.check(c.owner, units)

        self._last_order_id = c.bid_id
        self._hold(("bid", int(c.bid_id)), c.owner, units)
        order = Order(c.bid_id, BUY, c.price_fen_per_t, c.qty_kg, org=c.org, min_qty=c.min_lot_kg)
        entry = Entry("bid", c.market, c.owner, c.org, c.expires_at, c.join_auctions)
        events.append(
            BidPlaced(
                at=now,
                bid_id=c.bid_id,
                market=c.market,
                owner=c.owner,
                org=c.org,
                price_fen_per_t=c.price_fen_per_t,
                qty_kg=c.qty_kg,
                min_lot_kg=c.min_lot_kg,
                expires_at=c.expires_at,
            )
        )
        self._trade_bid(order, entry, now, events)

    def _amend_bid(self, c: AmendBid, now: datetime, events: list[AnyEvent]) -> None:
        entry = self._owned_bid(c.bid_id, c.owner)
        book = self._books[entry.market]
        old = book.get(c.bid_id)
        if old is None:
            raise InvariantBroken(f"bid {c.bid_id} has an entry but is not in its book")
        if c.price_fen_per_t is None and c.qty_kg is None:
            raise ClientError("invalid_value", "give a new price_fen_per_t, qty_kg or both")
        price = old.price if c.price_fen_per_t is None else c.price_fen_per_t
        qty = old.qty if c.qty_kg is None else c.qty_kg
        check_price(price, "price_fen_per_t")
        if c.price_fen_per_t is not None:
            self._check_band(entry.market, price, "price_fen_per_t")
        check_weight(qty, "qty_kg")
        if qty < old.min_qty:
            raise ClientError(
                "invalid_value",
                f"qty_kg is below the bid's minimum lot of {old.min_qty} kg",
                field="qty_kg",
            )
        if price == old.price and qty == old.qty:
            raise ClientError("invalid_value", "the amendment changes nothing")
        key = ("bid", int(c.bid_id))
        units = self._bp.units(price, qty)
        self._bp.check(c.owner, units, replacing=key)

        self._hold(key, c.owner, units)
        keeps = price == old.price and qty < old.qty
        events.append(
            BidAmended(
                at=now,
                bid_id=c.bid_id,
                market=entry.market,
                price_fen_per_t=price,
                qty_kg=qty,
                kept_priority=keeps,
            )
        )
        if keeps:
            book.reduce(c.bid_id, qty)
            return
        # priority is lost: out of the book, then in again as if new (it may trade now)
        book.cancel(c.bid_id)
        del self._entries[c.bid_id]
        order = Order(c.bid_id, BUY, price, qty, org=old.org, min_qty=old.min_qty)
        self._trade_bid(order, entry, now, events, set_deadline=False)

    def _cancel_bid(self, c: CancelBid, now: datetime, events: list[AnyEvent]) -> None:
        entry = self._owned_bid(c.bid_id, c.owner)
        remaining = self._take_out(c.bid_id, entry)
        events.append(
            BidCancelled(
                at=now, bid_id=c.bid_id, market=entry.market, remaining_kg=remaining, reason="owner"
            )
        )

    def _trade_bid(
        self,
        order: Order,
        entry: Entry,
        now: datetime,
        events: list[AnyEvent],
        *,
        set_deadline: bool = True,
    ) -> None:
        """Match an incoming (or re-entering) bid, then rest what is left of it."""
        book = self._books.setdefault(entry.market, Book())
        fills: list[Fill] = []
        stranded: list[tuple[Order, int]] = []
        start = order.qty
        book.submit(order, fills, stranded)
        self._record_fills(entry.market, order, start, entry, fills, stranded, now, events)
        if not order.qty:
            return
        if order.qty < order.min_qty:
            self._release(("bid", order.id))
            events.append(
                BidCancelled(
                    at=now,
                    bid_id=OrderId(order.id),
                    market=entry.market,
                    remaining_kg=order.qty,
                    reason="below_min_lot",
                )
            )
            return
        self._rest(book, order, entry, set_deadline=set_deadline)

    # -- one-click sale ----------------------------------------------------------------

    def _sell_lot(self, c: SellLot, now: datetime, events: list[AnyEvent]) -> None:
        self._check_new_id(c.lot_id, "lot_id")
        self._check_market(c.market)
        check_weight(c.weight_kg, "weight_kg")
        if c.floor_price_fen_per_t is not None:
            check_price(c.floor_price_fen_per_t, "floor_price_fen_per_t")
            self._check_band(c.market, c.floor_price_fen_per_t, "floor_price_fen_per_t")
        elif c.if_unsold == "rest":
            raise ClientError(
                "invalid_value",
                "a lot that rests when unsold needs a floor_price_fen_per_t to rest at",
                field="floor_price_fen_per_t",
            )
        check_expiry(c.expires_at, now)
        old = self._check_relist(c.relist_of, c.owner)

        book = self._books.get(c.market)
        if book is None:
            book = Book()  # registered below only if the lot is accepted
        floor = c.floor_price_fen_per_t
        order = Order(
            c.lot_id,
            SELL,
            MARKET_SELL_PRICE if floor is None else floor,
            c.weight_kg,
            org=c.org,
            aon=not c.allow_partial,
        )
        fills: list[Fill] = []
        stranded: list[tuple[Order, int]] = []
        book.submit(order, fills, stranded)
        if not fills and c.if_unsold == "refuse":
            # nothing traded, so nothing changed: a clean refusal
            where = "now" if floor is None else f"at or above your floor of {floor} fen/t now"
            raise ClientError("no_buyer", f"no buyer can take this lot {where}")

        self._last_order_id = c.lot_id
        self._books.setdefault(c.market, book)
        if old is not None:
            self._move(old, "relist", now, events)
        entry = Entry("lot", c.market, c.owner, c.org, c.expires_at)
        lot = self._lots[c.lot_id] = Lot(
            c.lot_id, c.market, c.owner, c.org, c.weight_kg, "one_click", "listed", c.expires_at
        )
        events.append(
            LotPosted(
                at=now,
                lot_id=c.lot_id,
                market=c.market,
                owner=c.owner,
                org=c.org,
                weight_kg=c.weight_kg,
                floor_price_fen_per_t=floor,
                allow_partial=c.allow_partial,
                if_unsold=c.if_unsold,
                expires_at=c.expires_at,
            )
        )
        self._move(lot, "open_one_click", now, events)
        self._record_fills(c.market, order, c.weight_kg, entry, fills, stranded, now, events)
        if not order.qty:
            return
        if c.if_unsold == "rest":
            self._rest(book, order, entry)
            return
        events.append(
            LotCancelled(
                at=now,
                lot_id=c.lot_id,
                market=c.market,
                remaining_kg=order.qty,
                reason="unsold_remainder",
            )
        )
        self._move(lot, "sold", now, events)  # what could be sold was

    def _cancel_lot(self, c: CancelLot, now: datetime, events: list[AnyEvent]) -> None:
        lot = self._own_lot(c.lot_id, c.owner)
        if lot.state in ("in_auction", "taking_offers"):
            started = self._auctions[lot.lot_id].bids if lot.kind == "auction" else lot.offers_made
            if started:
                raise ClientError(
                    "lot_has_bids", "a lot can be cancelled only before its first bid or offer"
                )
        elif lot.state != "open":
            raise ClientError(
                "illegal_transition", f"a lot that is {lot.state} cannot be cancelled"
            )
        remaining = lot.weight_kg
        entry = self._entries.get(c.lot_id)
        if entry is not None:
            remaining = self._take_out(c.lot_id, entry)
        events.append(
            LotCancelled(
                at=now, lot_id=c.lot_id, market=lot.market, remaining_kg=remaining, reason="owner"
            )
        )
        self._move(lot, "cancel", now, events)

    # -- shared steps ------------------------------------------------------------------

    def _record_fills(
        self,
        market: MarketId,
        taker: Order,
        taker_start: int,
        taker_entry: Entry,
        fills: list[Fill],
        stranded: list[tuple[Order, int]],
        now: datetime,
        events: list[AnyEvent],
    ) -> None:
        remaining = taker_start
        # a stranded maker still had this much right after its trade
        left_after = {maker.id: left for maker, left in stranded}
        bp = self._bp
        for _, maker, price, qty in fills:
            remaining -= qty
            maker_left = left_after.get(maker.id, maker.qty)
            maker_entry = self._entries[OrderId(maker.id)]
            if not maker.qty:
                del self._entries[OrderId(maker.id)]
            if taker.side == BUY:
                bid, bid_entry, bid_left = taker, taker_entry, remaining
                lot, lot_entry, lot_left = maker, maker_entry, maker_left
            else:
                bid, bid_entry, bid_left = maker, maker_entry, maker_left
                lot, lot_entry, lot_left = taker, taker_entry, remaining
            trade_id = self._next_trade_id
            self._next_trade_id += 1
            # the bid's hold shrinks first, so the trade's never needs more than there is
            self._hold(("bid", bid.id), bid_entry.owner, bp.units(bid.price, bid_left))
            self._hold(("trade", trade_id), bid_entry.owner, bp.units(price, qty))
            events.append(
                Traded(
                    at=now,
                    trade_id=TradeId(trade_id),
                    market=market,
                    bid_id=OrderId(bid.id),
                    lot_id=OrderId(lot.id),
                    buyer=bid_entry.owner,
                    buyer_org=bid_entry.org,
                    seller=lot_entry.owner,
                    seller_org=lot_entry.org,
                    price_fen_per_t=price,
                    weight_kg=qty,
                    amount_fen=amount_fen(price, qty),
                    aggressor="buy" if taker.side == BUY else "sell",
                    bid_remaining_kg=bid_left,
                    lot_remaining_kg=lot_left,
                )
            )
            if not lot_left:
                self._move(self._lots[OrderId(lot.id)], "sold", now, events)
        for maker, left in stranded:
            # only bids carry a minimum lot, so only bids are ever stranded
            self._release(("bid", maker.id))
            events.append(
                BidCancelled(
                    at=now,
                    bid_id=OrderId(maker.id),
                    market=market,
                    remaining_kg=left,
                    reason="below_min_lot",
                )
            )

    def _rest(self, book: Book, order: Order, entry: Entry, *, set_deadline: bool = True) -> None:
        book.rest(order)
        self._entries[OrderId(order.id)] = entry
        if set_deadline and entry.expires_at is not None:
            self._deadline(entry.expires_at, order.id, "expiry")

    def _take_out(self, order_id: OrderId, entry: Entry) -> int:
        got = self._books[entry.market].cancel(order_id)
        if got is None:
            raise InvariantBroken(f"order {order_id} has an entry but is not in its book")
        del self._entries[order_id]
        if entry.kind == "bid":
            self._release(("bid", int(order_id)))
        return got[1]

    def _fire_deadlines(self, now: datetime, events: list[AnyEvent]) -> None:
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            when, oid, kind = heapq.heappop(heap)
            entry = self._entries.get(OrderId(oid)) if kind == "expiry" else None
            if entry is None or entry.expires_at != when:
                self._fire_sale_deadline(when, oid, kind, now, events)
                continue
            remaining = self._take_out(OrderId(oid), entry)
            if entry.kind == "bid":
                events.append(
                    BidExpired(
                        at=now, bid_id=OrderId(oid), market=entry.market, remaining_kg=remaining
                    )
                )
            else:
                events.append(
                    LotExpired(
                        at=now, lot_id=OrderId(oid), market=entry.market, remaining_kg=remaining
                    )
                )
                self._move(self._lots[OrderId(oid)], "expire", now, events)

    # -- validation --------------------------------------------------------------------

    def _owned_bid(self, order_id: OrderId, owner: PrincipalId) -> Entry:
        entry = self._entries.get(order_id)
        if entry is None or entry.kind != "bid" or entry.owner != owner:
            raise ClientError("bid_not_found", f"no bid {order_id} of yours is open")
        return entry


def _tag(command: Command) -> str:
    return str(type(command).__struct_config__.tag)
