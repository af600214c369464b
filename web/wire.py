"""The HTTP API's request and response bodies.  The same types validate requests and
generate ``/openapi.json``, so the bounds in the schema are the bounds enforced.

Identity (owner, org, bidder) is never in a body: it comes from the token.  Unknown
fields are refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from auction.catalogue import default_catalogue
from auction.messages import AnyEvent
from auction.money import MAX_PRICE_FEN_PER_T, MAX_WEIGHT_KG

Price = Annotated[int, Meta(ge=1, le=MAX_PRICE_FEN_PER_T, description="fen per tonne (分/吨)")]
Kg = Annotated[int, Meta(ge=1, le=MAX_WEIGHT_KG, description="whole kilograms")]
MinKg = Annotated[int, Meta(ge=0, le=MAX_WEIGHT_KG, description="whole kilograms")]
# the catalogue's categories and a GB/T 2260 region code (province part 11..82), so that the
# schema admits exactly the markets the engine knows
_CATEGORIES = "|".join(c.code for c in default_catalogue().categories)
MARKET_PATTERN = rf"^({_CATEGORIES}):(1[1-9]|[2-7][0-9]|8[0-2])[0-9]{{4}}$"
Market = Annotated[
    str,
    Meta(
        pattern=MARKET_PATTERN,
        description="<category>:<6-digit region code>, e.g. ebike:330522",
    ),
]
Seconds = Annotated[int, Meta(ge=1, le=30 * 86_400)]
LimitFen = Annotated[int, Meta(ge=0, le=10**15)]
Principal = Annotated[str, Meta(min_length=1, max_length=200)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class PlaceBidBody(Body):
    market: Market
    price_fen_per_t: Price
    qty_kg: Kg
    min_lot_kg: MinKg = 0
    expires_at: datetime | None = None
    join_auctions: bool = False


class AmendBidBody(Body):
    price_fen_per_t: Price | None = None
    qty_kg: Kg | None = None


class PostLotBody(Body):
    """A lot for sale: ``one_click`` (我要投售), ``auction`` (竞价投售) or ``offers`` (议价投售)."""

    mode: Literal["one_click", "auction", "offers"]
    market: Market
    weight_kg: Kg
    floor_price_fen_per_t: Price | None = None
    allow_partial: bool = False
    if_unsold: Literal["rest", "refuse"] = "refuse"
    start_price_fen_per_t: Price | None = None
    reserve_fen_per_t: Price | None = None
    buy_now_fen_per_t: Price | None = None
    duration_s: Seconds | None = None
    expires_at: datetime | None = None
    relist_of: Annotated[int, Meta(ge=1)] | None = None


class AuctionBidBody(Body):
    max_price_fen_per_t: Price


class OfferBody(Body):
    price_fen_per_t: Price
    expires_at: datetime


class CounterBody(Body):
    price_fen_per_t: Price


class BuyingPowerBody(Body):
    bidder: Principal
    limit_fen: LimitFen


class Empty(Body):
    """No fields: the action is in the path."""


class CommandAnswer(msgspec.Struct):
    """What a state-changing request answers: the journal position and the events."""

    seq: int | None
    replay: bool
    events: list[AnyEvent]
    id: int | None = None


class Page(msgspec.Struct):
    items: list[dict[str, Any]]
    limit: int
    offset: int
    next_offset: int | None


class Problem(msgspec.Struct):
    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None


class Health(msgspec.Struct):
    ok: bool
    journal: Literal["reachable", "unreachable"]
    seq: int
