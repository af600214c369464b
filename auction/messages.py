"""Commands into the engine and events out of it: frozen, tagged msgspec Structs.

Commands carry identity (``owner``, ``org``) because the shell fills it in from the
token; a client never sets it.  Ids of bids and lots (``OrderId``) are assigned by the
shell, increasing, and unique across the engine.  Quantities are kilograms and prices
fen per tonne; the unit is in every field name.

Every event carries ``at``, the ``now`` the command was applied at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from auction.types import MarketId, OrderId, OrgId, PrincipalId, Side, TradeId

# -- commands --------------------------------------------------------------------------


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every engine command."""


class PlaceBid(Command, frozen=True, tag="place_bid"):
    """A recycler's standing bid: buy up to ``qty_kg`` at ``price_fen_per_t``."""

    bid_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    price_fen_per_t: int
    qty_kg: int
    min_lot_kg: int = 0
    expires_at: datetime | None = None


class AmendBid(Command, frozen=True, tag="amend_bid"):
    """Change a standing bid's price and/or open quantity.

    A price change or a quantity increase loses time priority (and may trade at once);
    a decrease keeps it.
    """

    bid_id: OrderId
    owner: PrincipalId
    price_fen_per_t: int | None = None
    qty_kg: int | None = None


class CancelBid(Command, frozen=True, tag="cancel_bid"):
    bid_id: OrderId
    owner: PrincipalId


class SellLot(Command, frozen=True, tag="sell_lot"):
    """One-click sale (我要投售): trade the lot now against the best bids that can take it.

    All-or-none unless ``allow_partial``.  What is unsold rests in the book at
    ``floor_price_fen_per_t`` when ``if_unsold == "rest"`` (a floor is then required);
    with ``"refuse"`` a lot nobody can buy is refused (``no_buyer``) and an unsold
    remainder of a partial lot is released.  No floor means "at the best bid, whatever
    it is".
    """

    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    weight_kg: int
    floor_price_fen_per_t: int | None = None
    allow_partial: bool = False
    if_unsold: Literal["rest", "refuse"] = "refuse"
    expires_at: datetime | None = None


class CancelLot(Command, frozen=True, tag="cancel_lot"):
    lot_id: OrderId
    owner: PrincipalId


class ExpireDue(Command, frozen=True, tag="expire_due"):
    """A timer firing: expire whatever is due at ``now``.

    Every command does this first anyway; the shell sends ``ExpireDue`` when nothing
    else arrives, so expiries are announced on time.
    """


AnyCommand = PlaceBid | AmendBid | CancelBid | SellLot | CancelLot | ExpireDue

# -- events ----------------------------------------------------------------------------


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every engine event."""

    at: datetime


class BidPlaced(Event, frozen=True, tag="bid_placed"):
    bid_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    price_fen_per_t: int
    qty_kg: int
    min_lot_kg: int
    expires_at: datetime | None


class BidAmended(Event, frozen=True, tag="bid_amended"):
    bid_id: OrderId
    market: MarketId
    price_fen_per_t: int
    qty_kg: int
    kept_priority: bool


CancelReason = Literal["owner", "below_min_lot", "unsold_remainder"]


class BidCancelled(Event, frozen=True, tag="bid_cancelled"):
    """``below_min_lot``: what remained is smaller than the bid's own minimum lot."""

    bid_id: OrderId
    market: MarketId
    remaining_kg: int
    reason: CancelReason


class BidExpired(Event, frozen=True, tag="bid_expired"):
    bid_id: OrderId
    market: MarketId
    remaining_kg: int


class LotPosted(Event, frozen=True, tag="lot_posted"):
    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    weight_kg: int
    floor_price_fen_per_t: int | None
    allow_partial: bool
    if_unsold: Literal["rest", "refuse"]
    expires_at: datetime | None


class LotCancelled(Event, frozen=True, tag="lot_cancelled"):
    """``unsold_remainder``: a one-click partial lot with ``if_unsold="refuse"``."""

    lot_id: OrderId
    market: MarketId
    remaining_kg: int
    reason: CancelReason


class LotExpired(Event, frozen=True, tag="lot_expired"):
    lot_id: OrderId
    market: MarketId
    remaining_kg: int


class Traded(Event, frozen=True, tag="traded"):
    """One fill between a standing bid and a lot, at the resting order's price."""

    trade_id: TradeId
    market: MarketId
    bid_id: OrderId
    lot_id: OrderId
    buyer: PrincipalId
    buyer_org: OrgId
    seller: PrincipalId
    seller_org: OrgId
    price_fen_per_t: int
    weight_kg: int
    amount_fen: int
    aggressor: Side
    bid_remaining_kg: int
    lot_remaining_kg: int


class Rejected(Event, frozen=True, tag="rejected"):
    """The command was refused and changed nothing.  ``code`` is from ``errors.CODES``."""

    command: str
    code: str
    detail: str
    field: str | None = None


AnyEvent = (
    BidPlaced
    | BidAmended
    | BidCancelled
    | BidExpired
    | LotPosted
    | LotCancelled
    | LotExpired
    | Traded
    | Rejected
)
