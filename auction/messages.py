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
    join_auctions: bool = False
    """Enter automatically, as a proxy up to ``price_fen_per_t``, every auction that opens
    in this market on a lot this bid could take whole."""


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
    relist_of: OrderId | None = None


class CancelLot(Command, frozen=True, tag="cancel_lot"):
    lot_id: OrderId
    owner: PrincipalId


class ExpireDue(Command, frozen=True, tag="expire_due"):
    """A timer firing: expire whatever is due at ``now``.

    Every command does this first anyway; the shell sends ``ExpireDue`` when nothing
    else arrives, so expiries are announced on time.
    """


class StartAuction(Command, frozen=True, tag="start_auction"):
    """Competitive sale (竞价投售) of one lot: an English auction with proxy bids.

    ``reserve_fen_per_t`` is hidden from bidders; ``buy_now_fen_per_t`` disappears at the
    first bid.  The close is ``duration_s`` after ``now``, softened by the category's rules.
    """

    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    weight_kg: int
    start_price_fen_per_t: int
    duration_s: int
    reserve_fen_per_t: int | None = None
    buy_now_fen_per_t: int | None = None
    relist_of: OrderId | None = None


class AuctionBid(Command, frozen=True, tag="auction_bid"):
    """A proxy maximum in a lot's auction; the engine bids for it up to ``max_price``."""

    lot_id: OrderId
    bidder: PrincipalId
    org: OrgId
    max_price_fen_per_t: int


class BuyNow(Command, frozen=True, tag="buy_now"):
    lot_id: OrderId
    bidder: PrincipalId
    org: OrgId


class AcceptResult(Command, frozen=True, tag="accept_result"):
    """The store accepts the best bid of an auction that closed below its reserve."""

    lot_id: OrderId
    owner: PrincipalId


class DeclineResult(Command, frozen=True, tag="decline_result"):
    lot_id: OrderId
    owner: PrincipalId


class InviteOffers(Command, frozen=True, tag="invite_offers"):
    """Negotiated sale (议价投售): recyclers make offers; the store picks."""

    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    weight_kg: int
    expires_at: datetime | None = None
    relist_of: OrderId | None = None


class MakeOffer(Command, frozen=True, tag="make_offer"):
    offer_id: OrderId
    lot_id: OrderId
    bidder: PrincipalId
    org: OrgId
    price_fen_per_t: int
    expires_at: datetime


class CounterOffer(Command, frozen=True, tag="counter_offer"):
    """The store answers an offer with its own price; the bidder may accept it."""

    offer_id: OrderId
    owner: PrincipalId
    price_fen_per_t: int


class AcceptOffer(Command, frozen=True, tag="accept_offer"):
    """The store accepts an offer: the lot is awarded, every other offer is void."""

    offer_id: OrderId
    owner: PrincipalId


class AcceptCounter(Command, frozen=True, tag="accept_counter"):
    """The bidder accepts the store's counter-price: the lot is awarded at it."""

    offer_id: OrderId
    bidder: PrincipalId


class RejectOffer(Command, frozen=True, tag="reject_offer"):
    offer_id: OrderId
    owner: PrincipalId


class WithdrawOffer(Command, frozen=True, tag="withdraw_offer"):
    """The bidder takes its offer back (an offer binds only once the store accepts it)."""

    offer_id: OrderId
    bidder: PrincipalId


class SetBuyingPower(Command, frozen=True, tag="set_buying_power"):
    """An admin sets a recycler's buying-power limit (it cannot go below what is reserved)."""

    bidder: PrincipalId
    limit_fen: int


PriceKind = Literal["daily", "upstream", "end_of_chain"]


class PublishPrice(Command, frozen=True, tag="publish_price"):
    """A published price (fen per tonne).

    - ``daily`` (每日报价): the reference price of a market (``key``), by the platform or a
      designated publisher; it sets the market's price band.
    - ``upstream`` (上游报价): what one licensed recycler (the ``publisher``) pays
      transporters in a market (``key``).
    - ``end_of_chain`` (回收行情): a smelter's purchase price for a category (``key``: a
      category code), or the lead ingot reference price (``key``: ``lead``); each says
      whether VAT is included.
    """

    kind: PriceKind
    key: str
    publisher: PrincipalId
    price_fen_per_t: int
    vat_included: bool = False


AnyCommand = (
    PlaceBid
    | AmendBid
    | CancelBid
    | SellLot
    | CancelLot
    | ExpireDue
    | StartAuction
    | AuctionBid
    | BuyNow
    | AcceptResult
    | DeclineResult
    | InviteOffers
    | MakeOffer
    | CounterOffer
    | AcceptOffer
    | AcceptCounter
    | RejectOffer
    | WithdrawOffer
    | SetBuyingPower
    | PublishPrice
)

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


class LotStateChanged(Event, frozen=True, tag="lot_state_changed"):
    """Every move of the lot lifecycle (``auction.lifecycle``)."""

    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    from_state: str
    to_state: str
    move: str


class AuctionStarted(Event, frozen=True, tag="auction_started"):
    """The reserve itself is never in an event: only whether there is one."""

    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    weight_kg: int
    start_price_fen_per_t: int
    has_reserve: bool
    buy_now_fen_per_t: int | None
    closes_at: datetime


class AuctionBidAccepted(Event, frozen=True, tag="auction_bid_accepted"):
    """A maximum was taken.  ``max_price_fen_per_t`` is the bidder's own business: the
    feed layer shows it only on the bidder's private channel."""

    lot_id: OrderId
    bidder: PrincipalId
    max_price_fen_per_t: int
    leading: bool
    auto: bool
    visible_price_fen_per_t: int
    min_next_bid_fen_per_t: int
    reserve_met: bool
    leader: PrincipalId


class LeaderChanged(Event, frozen=True, tag="leader_changed"):
    """The auction has a new leader (``previous`` is None for the first one)."""

    lot_id: OrderId
    leader: PrincipalId
    previous: PrincipalId | None
    visible_price_fen_per_t: int


class Outbid(Event, frozen=True, tag="outbid"):
    lot_id: OrderId
    bidder: PrincipalId
    by: PrincipalId
    visible_price_fen_per_t: int


class AuctionExtended(Event, frozen=True, tag="auction_extended"):
    lot_id: OrderId
    closes_at: datetime
    extended_s: int
    """Total extension so far past the original close."""


class AuctionClosed(Event, frozen=True, tag="auction_closed"):
    lot_id: OrderId
    result: Literal["awarded", "no_bids", "reserve_not_met", "bought_now"]
    leader: PrincipalId | None
    price_fen_per_t: int | None
    accept_by: datetime | None = None


class Awarded(Event, frozen=True, tag="awarded"):
    """A lot sold whole to one buyer by auction, buy-now or offer; the deposit is held."""

    lot_id: OrderId
    market: MarketId
    buyer: PrincipalId
    buyer_org: OrgId
    seller: PrincipalId
    seller_org: OrgId
    price_fen_per_t: int
    weight_kg: int
    amount_fen: int
    deposit_fen: int
    via: AwardVia


class ResultDecided(Event, frozen=True, tag="result_decided"):
    """The store's answer to a below-reserve result, or its lapse."""

    lot_id: OrderId
    decision: Literal["accepted", "declined", "lapsed"]


OfferStatus = Literal["made", "countered", "accepted", "rejected", "withdrawn", "expired", "void"]
AwardVia = Literal["auction", "buy_now", "accepted_below_reserve", "offer", "counter"]


class OfferChanged(Event, frozen=True, tag="offer_changed"):
    offer_id: OrderId
    lot_id: OrderId
    bidder: PrincipalId
    status: OfferStatus
    price_fen_per_t: int
    counter_price_fen_per_t: int | None
    expires_at: datetime


class BuyingPowerChanged(Event, frozen=True, tag="buying_power_changed"):
    """After any command that changed a bidder's reservations or limit."""

    bidder: PrincipalId
    limit_fen: int
    reserved_fen: int
    available_fen: int


class PricePublished(Event, frozen=True, tag="price_published"):
    """A ``PublishPrice`` accepted; for ``daily``, the band it sets (None: no band)."""

    kind: PriceKind
    key: str
    publisher: PrincipalId
    price_fen_per_t: int
    vat_included: bool
    band_low_fen_per_t: int | None = None
    band_high_fen_per_t: int | None = None


class Rejected(Event, frozen=True, tag="rejected"):
    """The command was refused and changed nothing.  ``code`` is from ``errors.CODES``."""

    command: str
    code: str
    detail: str
    field: str | None = None
    limits: dict[str, int] | None = None
    """The bounds the refusal names: ``min_next_bid_fen_per_t``, ``band_low_fen_per_t`` /
    ``band_high_fen_per_t``."""


AnyEvent = (
    BidPlaced
    | LotStateChanged
    | AuctionStarted
    | AuctionBidAccepted
    | LeaderChanged
    | Outbid
    | AuctionExtended
    | AuctionClosed
    | Awarded
    | ResultDecided
    | OfferChanged
    | BuyingPowerChanged
    | BidAmended
    | BidCancelled
    | BidExpired
    | LotPosted
    | LotCancelled
    | LotExpired
    | Traded
    | PricePublished
    | Rejected
)
