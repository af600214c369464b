"""The HTTP API's request and response bodies.  The same types validate requests and
generate ``/openapi.json``, so the bounds in the schema are the bounds enforced.

Identity (owner, org, bidder) is never in a body: it comes from the token.  Unknown
fields are refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from auction.catalogue import default_catalogue
from auction.messages import AnyEvent
from auction.money import MAX_PRICE_FEN_PER_T, MAX_WEIGHT_KG
from auction.prices import CategoryIndex, MarketStats, Quote, Settlement

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
# an auction's duration: the widest the catalogue's categories allow (each category's own
# bounds, if narrower, are the engine's to check)
_RULES = [default_catalogue().rules(c.code) for c in default_catalogue().categories]
Duration = Annotated[
    int,
    Meta(
        ge=min(r.min_duration_s for r in _RULES),
        le=max(r.max_duration_s for r in _RULES),
        description="seconds",
    ),
]
Instant = Annotated[datetime, Meta(tz=True, description="RFC 3339 with its offset")]
LimitFen = Annotated[int, Meta(ge=0, le=10**15)]
Principal = Annotated[str, Meta(min_length=1, max_length=200)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class PlaceBidBody(Body):
    market: Market
    price_fen_per_t: Price
    qty_kg: Kg
    min_lot_kg: MinKg = 0
    expires_at: Instant | None = None
    join_auctions: bool = False


class AmendBidBody(Body):
    """A new price, a new quantity or both (an empty amendment is refused)."""

    __schema_extra__: ClassVar[dict[str, Any]] = {"minProperties": 1}
    price_fen_per_t: Price | UnsetType = UNSET
    qty_kg: Kg | UnsetType = UNSET


class PostLotBody(Body):
    """A lot for sale: ``one_click`` (我要投售), ``auction`` (竞价投售) or ``offers`` (议价投售).
    An auction needs its start price and duration; a one-click lot that rests when
    unsold needs the floor it rests at."""

    __schema_extra__: ClassVar[dict[str, Any]] = {
        "allOf": [
            {
                "if": {"properties": {"mode": {"const": "auction"}}, "required": ["mode"]},
                "then": {
                    "required": ["start_price_fen_per_t", "duration_s"],
                    "properties": {
                        "start_price_fen_per_t": {"type": "integer"},
                        "duration_s": {"type": "integer"},
                    },
                },
            },
            {
                "if": {
                    "properties": {"mode": {"const": "one_click"}, "if_unsold": {"const": "rest"}},
                    "required": ["mode", "if_unsold"],
                },
                "then": {
                    "required": ["floor_price_fen_per_t"],
                    "properties": {"floor_price_fen_per_t": {"type": "integer"}},
                },
            },
        ]
    }

    mode: Literal["one_click", "auction", "offers"]
    market: Market
    weight_kg: Kg
    floor_price_fen_per_t: Price | None = None
    allow_partial: bool = False
    if_unsold: Literal["rest", "refuse"] = "refuse"
    start_price_fen_per_t: Price | None = None
    reserve_fen_per_t: Price | None = None
    buy_now_fen_per_t: Price | None = None
    duration_s: Duration | None = None
    expires_at: Instant | None = None
    relist_of: Annotated[int, Meta(ge=1)] | None = None


class AuctionBidBody(Body):
    max_price_fen_per_t: Price


class OfferBody(Body):
    price_fen_per_t: Price
    expires_at: Instant


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
    min_next_bid_fen_per_t: int | None = None  # below_increment
    band_low_fen_per_t: int | None = None  # price_out_of_band
    band_high_fen_per_t: int | None = None


_CATEGORY_OR_LEAD = rf"^({_CATEGORIES}|lead)$"


class PublishPriceBody(Body):
    """A daily quote (每日报价) or an upstream quote (上游报价) for a market, or an
    end-of-chain price (回收行情) for a category or ``lead`` (the lead ingot)."""

    __schema_extra__: ClassVar[dict[str, Any]] = {
        "allOf": [
            {
                "if": {"properties": {"kind": {"enum": ["daily", "upstream"]}}},
                "then": {"properties": {"key": {"pattern": MARKET_PATTERN}}},
            },
            {
                "if": {"properties": {"kind": {"const": "end_of_chain"}}},
                "then": {"properties": {"key": {"pattern": _CATEGORY_OR_LEAD}}},
            },
        ]
    }
    kind: Literal["daily", "upstream", "end_of_chain"]
    key: Annotated[str, Meta(min_length=1, max_length=64)]
    price_fen_per_t: Price
    vat_included: bool = False


class MarketPrices(msgspec.Struct):
    """One market's view of the price state: its day so far, the prices published for it
    (its daily and upstream quotes, its category's end-of-chain price, lead), its last
    settlement and its category's index."""

    market: str
    day: str | None
    stale: bool
    stats: MarketStats | None
    quotes: list[Quote]
    settlement: Settlement | None
    index: CategoryIndex | None


class WsTicket(msgspec.Struct):
    ticket: str
    expires_in_s: int


class Health(msgspec.Struct):
    ok: bool
    journal: Literal["reachable", "unreachable"]
    seq: int


class SellQuote(msgspec.Struct):
    """What a one-click sale of ``weight_kg`` would fetch now (``null`` price: no bid can
    take it whole)."""

    market: str
    weight_kg: int
    price_fen_per_t: int | None
    amount_fen: int | None
