"""Naive reference models, written for obviousness rather than speed.

Every resting order lives in one plain list; each step picks the best eligible maker
by sorting every candidate.  No levels, no lazy deletion, no heaps: if the real book
and engine agree with these on random streams, their cleverness is not changing
the answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auction.catalogue import default_catalogue, valid_region
from auction.messages import (
    AmendBid,
    AnyCommand,
    CancelBid,
    CancelLot,
    ExpireDue,
    PlaceBid,
    SellLot,
    SetBuyingPower,
)
from auction.money import MAX_PRICE_FEN_PER_T, MAX_WEIGHT_KG

BUY, SELL = 0, 1


@dataclass
class RefOrder:
    id: int
    side: int
    price: int
    qty: int
    seq: int
    org: str | None = None
    min_qty: int = 0
    aon: bool = False
    # engine-level facts
    market: str = ""
    owner: str = ""
    expires_at: datetime | None = None


@dataclass
class RefBook:
    """One market: a list of resting orders."""

    orders: list[RefOrder] = field(default_factory=list)
    seq: int = 0

    def _crosses(self, maker: RefOrder, taker: RefOrder) -> bool:
        if taker.side == BUY:
            return maker.price <= taker.price
        return maker.price >= taker.price

    def _fill_for(self, maker: RefOrder, taker: RefOrder) -> int | None:
        if taker.org is not None and maker.org == taker.org:
            return None
        fill = min(taker.qty, maker.qty)
        if taker.aon and fill < taker.qty:
            return None
        if maker.aon and fill < maker.qty:
            return None
        if fill < taker.min_qty or fill < maker.min_qty:
            return None
        return fill

    def match(
        self, taker: RefOrder
    ) -> tuple[list[tuple[RefOrder, int, int]], list[tuple[RefOrder, int]]]:
        """Returns fills ``(maker, price, qty)`` and stranded ``(maker, qty)``."""
        fills: list[tuple[RefOrder, int, int]] = []
        stranded: list[tuple[RefOrder, int]] = []
        while taker.qty > 0 and taker.qty >= taker.min_qty:
            candidates = [
                o
                for o in self.orders
                if o.side != taker.side
                and self._crosses(o, taker)
                and self._fill_for(o, taker) is not None
            ]
            if not candidates:
                break
            best = sorted(
                candidates, key=lambda o: (-o.price if o.side == BUY else o.price, o.seq)
            )[0]
            fill = self._fill_for(best, taker)
            assert fill is not None
            best.qty -= fill
            taker.qty -= fill
            fills.append((best, best.price, fill))
            if 0 < best.qty < best.min_qty:
                stranded.append((best, best.qty))
                best.qty = 0
            if best.qty == 0:
                self.orders.remove(best)
        return fills, stranded

    def rest(self, order: RefOrder) -> None:
        self.seq += 1
        order.seq = self.seq
        self.orders.append(order)

    def find(self, order_id: int) -> RefOrder | None:
        for o in self.orders:
            if o.id == order_id:
                return o
        return None

    def remove(self, order_id: int) -> RefOrder | None:
        o = self.find(order_id)
        if o is not None:
            self.orders.remove(o)
        return o

    def resting_qty(self, side: int) -> int:
        return sum(o.qty for o in self.orders if o.side == side)

    def in_priority(self, side: int) -> list[RefOrder]:
        mine = [o for o in self.orders if o.side == side]
        return sorted(mine, key=lambda o: (-o.price if side == BUY else o.price, o.seq))


# -- the replay flow -----------------------------------------------------------------


def reference_replay(lines: list[str]) -> dict[str, Any]:
    """The DESIGN.md replay, from the text, naively."""
    book = RefBook()
    seen: set[int] = set()
    tape: list[tuple[int, int, int, int]] = []
    rejected = 0
    events = 0
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        events += 1
        parts = line.split(",")
        if parts[0] == "C":
            if book.remove(int(parts[1])) is None:
                rejected += 1
            continue
        oid = int(parts[1])
        if oid in seen:
            rejected += 1
            continue
        seen.add(oid)
        side = BUY if parts[2] == "B" else SELL
        if parts[0] == "L":
            price, qty = int(parts[3]), int(parts[4])
        else:
            price, qty = (10**18 if side == BUY else 0), int(parts[3])
        taker = RefOrder(oid, side, price, qty, 0)
        fills, _ = book.match(taker)
        tape.extend((oid, m.id, p, q) for m, p, q in fills)
        if parts[0] == "L" and taker.qty:
            book.rest(taker)
    digest = hashlib.sha256()
    for t in tape:
        digest.update(f"{t[0]},{t[1]},{t[2]},{t[3]}\n".encode())
    return {
        "events": events,
        "trades": len(tape),
        "volume": sum(t[3] for t in tape),
        "notional": sum(t[2] * t[3] for t in tape),
        "rejected": rejected,
        "resting_bid_qty": book.resting_qty(BUY),
        "resting_ask_qty": book.resting_qty(SELL),
        "tape_sha256": digest.hexdigest(),
    }


# -- the engine ----------------------------------------------------------------------

RATIO_BP = default_catalogue().sale_rules.deposit_ratio_bp
UNITS_PER_FEN = 10_000 * 1_000


def _amount(price: int, kg: int) -> int:
    # the rule restated with Fraction-free integer arithmetic, half up
    return (price * kg * 2 + 1000) // 2000


def _units(price: int, kg: int) -> int:
    return RATIO_BP * price * kg


class ReferenceEngine:
    """The engine's standing-bid and one-click rules (auction/engine.py), restated naively.

    Events are dicts compared against the real engine's events (without ``at``);
    rejections compare by command, code and field.  Buying power is recomputed from
    scratch every time: what resting bids hold on their open quantity plus what every
    trade holds.
    """

    def __init__(self) -> None:
        self.books: dict[str, RefBook] = {}
        self.last_id = 0
        self.trade_id = 1
        self.now: datetime | None = None
        self.categories = {c.code for c in default_catalogue().categories}
        self.lots: dict[int, dict[str, Any]] = {}  # lot id -> {"owner", "state", "market"}
        self.limits: dict[str, int] = {}
        self.trades: list[tuple[str, int]] = []  # (buyer, units held)
        self.touched: set[str] = set()

    def _book(self, market: str) -> RefBook:
        return self.books.setdefault(market, RefBook())

    def _all(self) -> list[RefOrder]:
        return [o for b in self.books.values() for o in b.orders]

    # buying power, from scratch
    def reserved_units(self, bidder: str) -> int:
        bids = sum(
            _units(o.price, o.qty) for o in self._all() if o.side == BUY and o.owner == bidder
        )
        return bids + sum(u for who, u in self.trades if who == bidder)

    def _available(self, bidder: str, extra_released: int = 0) -> int | None:
        if bidder not in self.limits:
            return None
        return self.limits[bidder] * UNITS_PER_FEN - self.reserved_units(bidder) + extra_released

    def _bp_events(self, out: list[dict[str, Any]]) -> None:
        for who in sorted(self.touched):
            limit = self.limits.get(who, 0)
            reserved = -(-self.reserved_units(who) // UNITS_PER_FEN)
            out.append(
                {
                    "type": "buying_power_changed",
                    "bidder": who,
                    "limit_fen": limit,
                    "reserved_fen": reserved,
                    "available_fen": limit - reserved,
                }
            )
        self.touched.clear()

    def _state(self, lot_id: int, to: str, move: str, out: list[dict[str, Any]]) -> None:
        lot = self.lots[lot_id]
        out.append(
            {
                "type": "lot_state_changed",
                "lot_id": lot_id,
                "market": lot["market"],
                "owner": lot["owner"],
                "from_state": lot["state"],
                "to_state": to,
                "move": move,
            }
        )
        lot["state"] = to

    def apply(self, c: AnyCommand, now: datetime) -> list[dict[str, Any]]:
        self.now = now
        out: list[dict[str, Any]] = []
        due = sorted(
            (o for o in self._all() if o.expires_at is not None and o.expires_at <= now),
            key=lambda o: (o.expires_at, o.id),
        )
        for o in due:
            self.books[o.market].remove(o.id)
            kind = "bid" if o.side == BUY else "lot"
            out.append(
                {
                    "type": f"{kind}_expired",
                    f"{kind}_id": o.id,
                    "market": o.market,
                    "remaining_kg": o.qty,
                }
            )
            if kind == "bid":
                self.touched.add(o.owner)
            else:
                self._state(o.id, "expired", "expire", out)
        self._bp_events(out)
        reason = self._refusal(c, now)
        if reason is not None:
            code, fld = reason
            tag = type(c).__struct_config__.tag
            out.append({"type": "rejected", "command": tag, "code": code, "field": fld})
            return out
        match c:
            case PlaceBid():
                self.last_id = c.bid_id
                self.touched.add(c.owner)
                out.append(
                    {
                        "type": "bid_placed",
                        "bid_id": c.bid_id,
                        "market": c.market,
                        "owner": c.owner,
                        "org": c.org,
                        "price_fen_per_t": c.price_fen_per_t,
                        "qty_kg": c.qty_kg,
                        "min_lot_kg": c.min_lot_kg,
                        "expires_at": c.expires_at,
                    }
                )
                bid = RefOrder(
                    c.bid_id, BUY, c.price_fen_per_t, c.qty_kg, 0, c.org, c.min_lot_kg, False,
                    c.market, c.owner, c.expires_at,
                )  # fmt: skip
                self._enter_bid(bid, out)
            case SellLot():
                book = self._book(c.market)
                floor = c.floor_price_fen_per_t
                lot = RefOrder(
                    c.lot_id, SELL, 0 if floor is None else floor, c.weight_kg, 0, c.org, 0,
                    not c.allow_partial, c.market, c.owner, c.expires_at,
                )  # fmt: skip
                fills, stranded = book.match(lot)
                if not fills and c.if_unsold == "refuse":
                    tag = type(c).__struct_config__.tag
                    out.append(
                        {"type": "rejected", "command": tag, "code": "no_buyer", "field": None}
                    )
                    return out
                self.last_id = c.lot_id
                self.lots[c.lot_id] = {"owner": c.owner, "state": "listed", "market": c.market}
                out.append(
                    {
                        "type": "lot_posted",
                        "lot_id": c.lot_id,
                        "market": c.market,
                        "owner": c.owner,
                        "org": c.org,
                        "weight_kg": c.weight_kg,
                        "floor_price_fen_per_t": floor,
                        "allow_partial": c.allow_partial,
                        "if_unsold": c.if_unsold,
                        "expires_at": c.expires_at,
                    }
                )
                self._state(c.lot_id, "open", "open_one_click", out)
                self._trades(lot, c.weight_kg, fills, stranded, out)
                if lot.qty and c.if_unsold == "rest":
                    book.rest(lot)
                elif lot.qty:
                    out.append(
                        {
                            "type": "lot_cancelled",
                            "lot_id": c.lot_id,
                            "market": c.market,
                            "remaining_kg": lot.qty,
                            "reason": "unsold_remainder",
                        }
                    )
                    self._state(c.lot_id, "awarded", "sold", out)
            case AmendBid():
                amended = self._mine(c.bid_id, c.owner, BUY)
                assert amended is not None
                bid = amended
                price = bid.price if c.price_fen_per_t is None else c.price_fen_per_t
                qty = bid.qty if c.qty_kg is None else c.qty_kg
                keeps = price == bid.price and qty < bid.qty
                self.touched.add(c.owner)
                out.append(
                    {
                        "type": "bid_amended",
                        "bid_id": c.bid_id,
                        "market": bid.market,
                        "price_fen_per_t": price,
                        "qty_kg": qty,
                        "kept_priority": keeps,
                    }
                )
                if keeps:
                    bid.qty = qty
                else:
                    self.books[bid.market].remove(bid.id)
                    bid.price, bid.qty = price, qty
                    self._enter_bid(bid, out)
            case CancelBid():
                found = self._mine(c.bid_id, c.owner, BUY)
                assert found is not None
                self.books[found.market].remove(found.id)
                self.touched.add(c.owner)
                out.append(
                    {
                        "type": "bid_cancelled",
                        "bid_id": found.id,
                        "market": found.market,
                        "remaining_kg": found.qty,
                        "reason": "owner",
                    }
                )
            case CancelLot():
                found = self._mine(c.lot_id, c.owner, SELL)
                assert found is not None
                self.books[found.market].remove(found.id)
                out.append(
                    {
                        "type": "lot_cancelled",
                        "lot_id": found.id,
                        "market": found.market,
                        "remaining_kg": found.qty,
                        "reason": "owner",
                    }
                )
                self._state(found.id, "cancelled", "cancel", out)
            case SetBuyingPower():
                self.limits[c.bidder] = c.limit_fen
                self.touched.add(c.bidder)
            case ExpireDue():
                pass
        self._bp_events(out)
        return out

    def _enter_bid(self, bid: RefOrder, out: list[dict[str, Any]]) -> None:
        book = self._book(bid.market)
        start = bid.qty
        fills, stranded = book.match(bid)
        self._trades(bid, start, fills, stranded, out)
        if bid.qty and bid.qty < bid.min_qty:
            out.append(
                {
                    "type": "bid_cancelled",
                    "bid_id": bid.id,
                    "market": bid.market,
                    "remaining_kg": bid.qty,
                    "reason": "below_min_lot",
                }
            )
        elif bid.qty:
            book.rest(bid)

    def _trades(
        self,
        taker: RefOrder,
        start: int,
        fills: list[tuple[RefOrder, int, int]],
        stranded: list[tuple[RefOrder, int]],
        out: list[dict[str, Any]],
    ) -> None:
        left = start
        stranded_left = {m.id: q for m, q in stranded}
        for maker, price, qty in fills:
            left -= qty
            maker_left = stranded_left.get(maker.id, maker.qty)
            bid, lot = (taker, maker) if taker.side == BUY else (maker, taker)
            self.trades.append((bid.owner, _units(price, qty)))
            self.touched.add(bid.owner)
            out.append(
                {
                    "type": "traded",
                    "trade_id": self.trade_id,
                    "market": taker.market,
                    "bid_id": bid.id,
                    "lot_id": lot.id,
                    "buyer": bid.owner,
                    "buyer_org": bid.org,
                    "seller": lot.owner,
                    "seller_org": lot.org,
                    "price_fen_per_t": price,
                    "weight_kg": qty,
                    "amount_fen": _amount(price, qty),
                    "aggressor": "buy" if taker.side == BUY else "sell",
                    "bid_remaining_kg": left if taker is bid else maker_left,
                    "lot_remaining_kg": left if taker is lot else maker_left,
                }
            )
            self.trade_id += 1
            if (left if taker is lot else maker_left) == 0:
                self._state(lot.id, "awarded", "sold", out)
        for maker, qty in stranded:
            self.touched.add(maker.owner)
            out.append(
                {
                    "type": "bid_cancelled",
                    "bid_id": maker.id,
                    "market": maker.market,
                    "remaining_kg": qty,
                    "reason": "below_min_lot",
                }
            )

    def _mine(self, oid: int, owner: str, side: int) -> RefOrder | None:
        for o in self._all():
            if o.id == oid and o.owner == owner and o.side == side:
                return o
        return None

    def _market_ok(self, market: str) -> bool:
        cat, sep, region = market.partition(":")
        return bool(sep) and cat in self.categories and valid_region(region)

    def _refusal(self, c: AnyCommand, now: datetime) -> tuple[str, str | None] | None:
        def price_bad(p: int) -> bool:
            return not 0 < p <= MAX_PRICE_FEN_PER_T

        def kg_bad(q: int) -> bool:
            return not 0 < q <= MAX_WEIGHT_KG

        def expiry_bad(e: datetime | None) -> bool:
            return e is not None and e <= now

        match c:
            case PlaceBid():
                if c.bid_id <= self.last_id:
                    return "duplicate_id", "bid_id"
                if not self._market_ok(c.market):
                    return "unknown_market", "market"
                if price_bad(c.price_fen_per_t):
                    return "invalid_value", "price_fen_per_t"
                if kg_bad(c.qty_kg):
                    return "invalid_value", "qty_kg"
                if not 0 <= c.min_lot_kg <= c.qty_kg:
                    return "invalid_value", "min_lot_kg"
                if expiry_bad(c.expires_at):
                    return "invalid_value", "expires_at"
                available = self._available(c.owner)
                if available is None or _units(c.price_fen_per_t, c.qty_kg) > available:
                    return "insufficient_buying_power", None
            case SellLot():
                if c.lot_id <= self.last_id:
                    return "duplicate_id", "lot_id"
                if not self._market_ok(c.market):
                    return "unknown_market", "market"
                if kg_bad(c.weight_kg):
                    return "invalid_value", "weight_kg"
                if c.floor_price_fen_per_t is not None and price_bad(c.floor_price_fen_per_t):
                    return "invalid_value", "floor_price_fen_per_t"
                if c.floor_price_fen_per_t is None and c.if_unsold == "rest":
                    return "invalid_value", "floor_price_fen_per_t"
                if expiry_bad(c.expires_at):
                    return "invalid_value", "expires_at"
            case AmendBid():
                bid = self._mine(c.bid_id, c.owner, BUY)
                if bid is None:
                    return "bid_not_found", None
                if c.price_fen_per_t is None and c.qty_kg is None:
                    return "invalid_value", None
                price = bid.price if c.price_fen_per_t is None else c.price_fen_per_t
                qty = bid.qty if c.qty_kg is None else c.qty_kg
                if price_bad(price):
                    return "invalid_value", "price_fen_per_t"
                if kg_bad(qty) or qty < bid.min_qty:
                    return "invalid_value", "qty_kg"
                if price == bid.price and qty == bid.qty:
                    return "invalid_value", None
                available = self._available(c.owner, _units(bid.price, bid.qty))
                if available is None or _units(price, qty) > available:
                    return "insufficient_buying_power", None
            case CancelBid():
                if self._mine(c.bid_id, c.owner, BUY) is None:
                    return "bid_not_found", None
            case CancelLot():
                lot = self.lots.get(c.lot_id)
                if lot is None or lot["owner"] != c.owner:
                    return "lot_not_found", None
                if lot["state"] != "open":
                    return "illegal_transition", None
            case SetBuyingPower():
                if c.limit_fen < 0 or c.limit_fen * UNITS_PER_FEN < self.reserved_units(c.bidder):
                    return "invalid_value", "limit_fen"
        return None

    def resting(self) -> dict[str, tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """Per market with orders: bids and lots in priority order, as engine snapshot rows."""
        out = {}
        for market in sorted(self.books):
            book = self.books[market]
            if not book.orders:
                continue
            sides = []
            for side in (BUY, SELL):
                sides.append(
                    [
                        (
                            o.id,
                            o.price,
                            o.qty,
                            o.min_qty,
                            o.aon,
                            o.owner,
                            o.org,
                            o.expires_at.isoformat() if o.expires_at else None,
                        )
                        for o in book.in_priority(side)
                    ]
                )
            out[market] = (sides[0], sides[1])
        return out
