"""What the engine holds, and the steps every kind of sale shares.

``EngineState`` is the data (books, lots, auctions, offers, buying power, deadlines and
counters) plus the small shared moves: a lifecycle transition with its event, a
deadline, a buying-power change noted for its event, the validation helpers.  The
commands live in ``engine`` (standing bids and one-click sales) and ``sales``
(auctions and offers).
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Literal

import msgspec

from auction.auctions import Auction
from auction.book import Book
from auction.buying_power import BuyingPower, HoldKey
from auction.catalogue import Catalogue, SaleRules, default_catalogue, valid_region
from auction.errors import ClientError
from auction.lifecycle import LotState, Move, next_state
from auction.messages import AnyEvent, BuyingPowerChanged, LotStateChanged
from auction.money import MAX_PRICE_FEN_PER_T, MAX_WEIGHT_KG
from auction.types import MarketId, OrderId, OrgId, PrincipalId, split_market_id

Kind = Literal["bid", "lot"]
LotKind = Literal["one_click", "auction", "offers"]
DeadlineKind = Literal["expiry", "close", "lapse", "offer_expiry"]


class Entry(msgspec.Struct, gc=False):
    """What the engine knows of an order resting in a book beyond the book's own order."""

    kind: Kind
    market: MarketId
    owner: PrincipalId
    org: OrgId
    expires_at: datetime | None
    join_auctions: bool = False


class Lot(msgspec.Struct, gc=False):
    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    weight_kg: int
    kind: LotKind
    state: LotState
    expires_at: datetime | None = None
    offers_made: int = 0
    open_offers: list[OrderId] = []


class Offer(msgspec.Struct, gc=False):
    offer_id: OrderId
    lot_id: OrderId
    bidder: PrincipalId
    org: OrgId
    price: int
    expires_at: datetime
    status: Literal["made", "countered", "accepted", "rejected", "withdrawn", "expired", "void"] = (
        "made"
    )
    counter: int | None = None


class EngineState:
    def __init__(self, catalogue: Catalogue | None = None) -> None:
        self._catalogue = catalogue or default_catalogue()
        self._rules: dict[str, SaleRules] = {}
        self._books: dict[MarketId, Book] = {}
        self._entries: dict[OrderId, Entry] = {}
        self._lots: dict[OrderId, Lot] = {}
        self._auctions: dict[OrderId, Auction] = {}
        self._offers: dict[OrderId, Offer] = {}
        self._bp = BuyingPower(self._catalogue.sale_rules.deposit_ratio_bp)
        self._deadlines: list[tuple[datetime, int, DeadlineKind]] = []
        self._touched: set[PrincipalId] = set()
        self._last_order_id = 0
        self._next_trade_id = 1
        self._now: datetime | None = None
        # each market's price band from its latest daily quote: (low, high) fen per tonne
        self._bands: dict[MarketId, tuple[int, int]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def _move(self, lot: Lot, move: Move, now: datetime, events: list[AnyEvent]) -> None:
        to = next_state(lot.state, move)
        events.append(
            LotStateChanged(
                at=now,
                lot_id=lot.lot_id,
                market=lot.market,
                owner=lot.owner,
                from_state=lot.state,
                to_state=to,
                move=move,
            )
        )
        lot.state = to

    # -- deadlines ---------------------------------------------------------------------

    def _deadline(self, when: datetime, object_id: int, kind: DeadlineKind) -> None:
        """Fire ``kind`` for ``object_id`` at ``when``.  Stale entries are skipped when
        they come up, so changing a deadline is just setting a new one."""
        heapq.heappush(self._deadlines, (when, object_id, kind))

    def next_deadline(self) -> datetime | None:
        """When the shell should send ``ExpireDue`` next (may be early, never late)."""
        return self._deadlines[0][0] if self._deadlines else None

    # -- buying power ------------------------------------------------------------------

    def _hold(self, key: HoldKey, bidder: PrincipalId, units: int) -> None:
        self._bp.hold(key, bidder, units)
        self._touched.add(bidder)

    def _release(self, key: HoldKey) -> None:
        who = self._bp.release(key)
        if who is not None:
            self._touched.add(who)

    def _move_hold(self, key: HoldKey, to: HoldKey, units: int) -> None:
        held = self._bp.held(key)
        self._bp.move(key, to, units)
        if held is not None:
            self._touched.add(held[0])

    def _buying_power_events(self, now: datetime, events: list[AnyEvent]) -> None:
        if not self._touched:
            return
        for bidder in sorted(self._touched):
            limit, reserved, available = self._bp.summary(bidder)
            events.append(
                BuyingPowerChanged(
                    at=now,
                    bidder=bidder,
                    limit_fen=limit,
                    reserved_fen=reserved,
                    available_fen=available,
                )
            )
        self._touched.clear()

    # -- validation --------------------------------------------------------------------

    def _check_new_id(self, order_id: int, field: str) -> None:
        if order_id <= self._last_order_id:
            raise ClientError(
                "duplicate_id",
                f"{field} {order_id} is not above the last id used ({self._last_order_id})",
                field=field,
            )

    def _check_market(self, market: MarketId) -> SaleRules:
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
        rules = self._rules.get(category)
        if rules is None:
            rules = self._rules[category] = self._catalogue.rules(category)
        return rules

    def _check_band(self, market: MarketId, price: int, field: str) -> None:
        """The fat-finger guard: a price outside the band around the market's latest daily
        quote is refused.  No daily quote yet, or a band of 0: no band."""
        band = self._bands.get(market)
        if band is not None and not band[0] <= price <= band[1]:
            raise ClientError(
                "price_out_of_band",
                f"{field} {price} is outside today's band {band[0]}-{band[1]} fen/t "
                "around the daily quote",
                field=field,
                limits={"band_low_fen_per_t": band[0], "band_high_fen_per_t": band[1]},
            )

    def _own_lot(self, lot_id: OrderId, owner: PrincipalId) -> Lot:
        lot = self._lots.get(lot_id)
        if lot is None or lot.owner != owner:
            raise ClientError("lot_not_found", f"no lot {lot_id} of yours")
        return lot

    def _check_relist(self, relist_of: OrderId | None, owner: PrincipalId) -> Lot | None:
        if relist_of is None:
            return None
        old = self._own_lot(relist_of, owner)
        next_state(old.state, "relist")  # raises illegal_transition, changes nothing
        return old


def check_price(value: int, field: str) -> None:
    if not 0 < value <= MAX_PRICE_FEN_PER_T:
        raise ClientError(
            "invalid_value",
            f"{field} must be between 1 and {MAX_PRICE_FEN_PER_T} fen per tonne",
            field=field,
        )


def check_weight(value: int, field: str) -> None:
    if not 0 < value <= MAX_WEIGHT_KG:
        raise ClientError(
            "invalid_value", f"{field} must be between 1 and {MAX_WEIGHT_KG} kg", field=field
        )


def check_expiry(expires_at: datetime | None, now: datetime, field: str = "expires_at") -> None:
    if expires_at is None:
        return
    if expires_at.tzinfo is None:
        raise ClientError("invalid_value", f"{field} needs a time zone", field=field)
    if expires_at <= now:
        raise ClientError("invalid_value", f"{field} is not in the future", field=field)
