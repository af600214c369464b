"""The engine: ``apply(command, now) -> events`` over every market.  Pure and synchronous.

No I/O, no clock, no randomness: ``now`` and every id come in with the command, so the
same commands at the same times give the same events, whatever the process or
``PYTHONHASHSEED``.  Rules, beyond the book's own (``auction.book``):

* ``now`` never goes backwards.  Before a command is looked at, everything whose
  expiry is at or before ``now`` expires (``BidExpired`` / ``LotExpired``): time
  passing is not the command's doing, so those events come even when it is refused.
* A command is validated fully before anything changes; a refused command answers one
  ``Rejected`` event and changes nothing.
* Bid and lot ids share one space and must increase: an id at or below the highest one
  already used is a ``duplicate_id``.  (The shell assigns them from a sequence.)
* Another principal's bid or lot answers ``bid_not_found`` / ``lot_not_found``, exactly
  as one that does not exist.
* Standing bids are the buy side of their market's book, lots the sell side.  A bid
  rests until filled, cancelled or expired; what is left of it below its minimum lot is
  cancelled (``below_min_lot``).  A lot is all-or-none unless it allows partial fills;
  an unsold lot rests at its floor or is refused (``no_buyer``), as the store chose.
"""

from __future__ import annotations

import hashlib
import heapq
from datetime import datetime
from typing import Literal

import msgspec

from auction.book import BUY, MARKET_SELL_PRICE, SELL, Book, Fill, Order
from auction.catalogue import Catalogue, default_catalogue, valid_region
from auction.errors import ClientError, InvariantBroken
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
    Command,
    ExpireDue,
    LotCancelled,
    LotExpired,
    LotPosted,
    PlaceBid,
    Rejected,
    SellLot,
    Traded,
)
from auction.money import MAX_PRICE_FEN_PER_T, MAX_WEIGHT_KG, amount_fen
from auction.types import MarketId, OrderId, OrgId, PrincipalId, TradeId, split_market_id

Kind = Literal["bid", "lot"]


class Entry(msgspec.Struct, gc=False):
    """What the engine knows of a resting bid or lot beyond its book order."""

    kind: Kind
    market: MarketId
    owner: PrincipalId
    org: OrgId
    expires_at: datetime | None


class Engine:
    """Every market's book, the resting orders' owners, expiries and the id counters."""

    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self._catalogue = catalogue or default_catalogue()
        self._books: dict[MarketId, Book] = {}
        self._entries: dict[OrderId, Entry] = {}
        self._expiries: list[tuple[datetime, int]] = []
        self._last_order_id = 0
        self._next_trade_id = 1
        self._now: datetime | None = None

    # -- the one entry point -----------------------------------------------------------

    def apply(self, command: AnyCommand, now: datetime) -> list[AnyEvent]:
        if now.tzinfo is None:
            raise InvariantBroken("the engine takes aware datetimes only")
        if self._now is not None and now < self._now:
            raise InvariantBroken(f"time went backwards: {now} < {self._now}")
        self._now = now
        events: list[AnyEvent] = []
        self._expire_due(now, events)
        try:
            match command:
                case PlaceBid():
                    self._place_bid(command, now, events)
                case SellLot():
                    self._sell_lot(command, now, events)
                case AmendBid():
                    self._amend_bid(command, now, events)
                case CancelBid():
                    self._cancel_bid(command, now, events)
                case CancelLot():
                    self._cancel_lot(command, now, events)
                case ExpireDue():
                    pass
                case _:
                    raise InvariantBroken(f"unknown command {command!r}")
        except ClientError as err:
            events.append(
                Rejected(
                    at=now,
                    command=_tag(command),
                    code=err.code,
                    detail=err.detail,
                    field=err.field,
                )
            )
        return events

    # -- queries -----------------------------------------------------------------------

    def book(self, market: MarketId) -> Book | None:
        return self._books.get(market)

    def markets(self) -> list[MarketId]:
        return sorted(m for m, b in self._books.items() if len(b))

    def entry(self, order_id: OrderId) -> Entry | None:
        return self._entries.get(order_id)

    def next_expiry(self) -> datetime | None:
        """When the shell should send ``ExpireDue`` next (may be early, never late)."""
        return self._expiries[0][0] if self._expiries else None

    def snapshot(self) -> dict[str, object]:
        """The canonical state: counters and every resting order in priority order."""
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
        return {
            "last_order_id": self._last_order_id,
            "next_trade_id": self._next_trade_id,
            "markets": markets,
        }

    def state_hash(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self.snapshot())).hexdigest()

    # -- commands ----------------------------------------------------------------------

    def _place_bid(self, c: PlaceBid, now: datetime, events: list[AnyEvent]) -> None:
        self._check_new_id(c.bid_id, "bid_id")
        self._check_market(c.market)
        _check_price(c.price_fen_per_t, "price_fen_per_t")
        _check_weight(c.qty_kg, "qty_kg")
        if not 0 <= c.min_lot_kg <= c.qty_kg:
            raise ClientError(
                "invalid_value",
                f"min_lot_kg must be between 0 and qty_kg ({c.qty_kg})",
                field="min_lot_kg",
            )
        _check_expiry(c.expires_at, now)

        self._last_order_id = c.bid_id
        order = Order(c.bid_id, BUY, c.price_fen_per_t, c.qty_kg, org=c.org, min_qty=c.min_lot_kg)
        entry = Entry("bid", c.market, c.owner, c.org, c.expires_at)
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

    def _sell_lot(self, c: SellLot, now: datetime, events: list[AnyEvent]) -> None:
        self._check_new_id(c.lot_id, "lot_id")
        self._check_market(c.market)
        _check_weight(c.weight_kg, "weight_kg")
        if c.floor_price_fen_per_t is not None:
            _check_price(c.floor_price_fen_per_t, "floor_price_fen_per_t")
        elif c.if_unsold == "rest":
            raise ClientError(
                "invalid_value",
                "a lot that rests when unsold needs a floor_price_fen_per_t to rest at",
                field="floor_price_fen_per_t",
            )
        _check_expiry(c.expires_at, now)

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
        entry = Entry("lot", c.market, c.owner, c.org, c.expires_at)
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
        self._record_fills(c.market, order, c.weight_kg, entry, fills, stranded, now, events)
        if not order.qty:
            return
        if c.if_unsold == "rest":
            self._rest(book, order, entry)
        else:
            events.append(
                LotCancelled(
                    at=now,
                    lot_id=c.lot_id,
                    market=c.market,
                    remaining_kg=order.qty,
                    reason="unsold_remainder",
                )
            )

    def _amend_bid(self, c: AmendBid, now: datetime, events: list[AnyEvent]) -> None:
        entry = self._owned(c.bid_id, c.owner, "bid")
        book = self._books[entry.market]
        old = book.get(c.bid_id)
        if old is None:
            raise InvariantBroken(f"bid {c.bid_id} has an entry but is not in its book")
        if c.price_fen_per_t is None and c.qty_kg is None:
            raise ClientError("invalid_value", "give a new price_fen_per_t, qty_kg or both")
        price = old.price if c.price_fen_per_t is None else c.price_fen_per_t
        qty = old.qty if c.qty_kg is None else c.qty_kg
        _check_price(price, "price_fen_per_t")
        _check_weight(qty, "qty_kg")
        if qty < old.min_qty:
            raise ClientError(
                "invalid_value",
                f"qty_kg is below the bid's minimum lot of {old.min_qty} kg",
                field="qty_kg",
            )
        if price == old.price and qty == old.qty:
            raise ClientError("invalid_value", "the amendment changes nothing")

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
        self._trade_bid(order, entry, now, events, push_expiry=False)

    def _cancel_bid(self, c: CancelBid, now: datetime, events: list[AnyEvent]) -> None:
        entry = self._owned(c.bid_id, c.owner, "bid")
        remaining = self._take_out(c.bid_id, entry)
        events.append(
            BidCancelled(
                at=now, bid_id=c.bid_id, market=entry.market, remaining_kg=remaining, reason="owner"
            )
        )

    def _cancel_lot(self, c: CancelLot, now: datetime, events: list[AnyEvent]) -> None:
        entry = self._owned(c.lot_id, c.owner, "lot")
        remaining = self._take_out(c.lot_id, entry)
        events.append(
            LotCancelled(
                at=now, lot_id=c.lot_id, market=entry.market, remaining_kg=remaining, reason="owner"
            )
        )

    # -- shared steps ------------------------------------------------------------------

    def _trade_bid(
        self,
        order: Order,
        entry: Entry,
        now: datetime,
        events: list[AnyEvent],
        *,
        push_expiry: bool = True,
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
        self._rest(book, order, entry, push_expiry=push_expiry)

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
            events.append(
                Traded(
                    at=now,
                    trade_id=TradeId(self._next_trade_id),
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
            self._next_trade_id += 1
        for maker, left in stranded:
            # only bids carry a minimum lot, so only bids are ever stranded
            events.append(
                BidCancelled(
                    at=now,
                    bid_id=OrderId(maker.id),
                    market=market,
                    remaining_kg=left,
                    reason="below_min_lot",
                )
            )

    def _rest(self, book: Book, order: Order, entry: Entry, *, push_expiry: bool = True) -> None:
        book.rest(order)
        self._entries[OrderId(order.id)] = entry
        if push_expiry and entry.expires_at is not None:
            heapq.heappush(self._expiries, (entry.expires_at, order.id))

    def _take_out(self, order_id: OrderId, entry: Entry) -> int:
        got = self._books[entry.market].cancel(order_id)
        if got is None:
            raise InvariantBroken(f"order {order_id} has an entry but is not in its book")
        del self._entries[order_id]
        return got[1]

    def _expire_due(self, now: datetime, events: list[AnyEvent]) -> None:
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expires_at, oid = heapq.heappop(heap)
            entry = self._entries.get(OrderId(oid))
            if entry is None or entry.expires_at != expires_at:
                continue  # traded or cancelled since
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

    # -- validation --------------------------------------------------------------------

    def _check_new_id(self, order_id: int, field: str) -> None:
        if order_id <= self._last_order_id:
            raise ClientError(
                "duplicate_id",
                f"{field} {order_id} is not above the last id used ({self._last_order_id})",
                field=field,
            )

    def _check_market(self, market: MarketId) -> None:
        try:
            category, region = split_market_id(market)
            known = self._catalogue.has_category(category) and valid_region(region)
        except ValueError:
            known = False
        if not known:
            raise ClientError(
                "unknown_market",
                f"{market!r} is not '<category>:<6-digit region code>' of a known category",
                field="market",
            )

    def _owned(self, order_id: OrderId, owner: PrincipalId, kind: Kind) -> Entry:
        entry = self._entries.get(order_id)
        if entry is None or entry.kind != kind or entry.owner != owner:
            code = "bid_not_found" if kind == "bid" else "lot_not_found"
            raise ClientError(code, f"no {kind} {order_id} of yours is open")
        return entry


def _tag(command: Command) -> str:
    return str(type(command).__struct_config__.tag)


def _check_price(value: int, field: str) -> None:
    if not 0 < value <= MAX_PRICE_FEN_PER_T:
        raise ClientError(
            "invalid_value",
            f"{field} must be between 1 and {MAX_PRICE_FEN_PER_T} fen per tonne",
            field=field,
        )


def _check_weight(value: int, field: str) -> None:
    if not 0 < value <= MAX_WEIGHT_KG:
        raise ClientError(
            "invalid_value", f"{field} must be between 1 and {MAX_WEIGHT_KG} kg", field=field
        )


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise ClientError("invalid_value", "expires_at needs a time zone", field="expires_at")
    if expires_at <= now:
        raise ClientError("invalid_value", "expires_at is not in the future", field="expires_at")
