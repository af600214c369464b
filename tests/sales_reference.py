"""A naive reference for auctions, offers and their buying power.

Everything is recomputed from the raw history every time it is needed: the leader is
found by sorting every bidder's latest maximum, the price from the top two, the
reservations by summing over every lot and offer.  Slow and obvious on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auction.catalogue import default_catalogue
from auction.messages import (
    AcceptCounter,
    AcceptOffer,
    AcceptResult,
    AnyCommand,
    AuctionBid,
    BuyNow,
    CancelLot,
    CounterOffer,
    DeclineResult,
    ExpireDue,
    InviteOffers,
    MakeOffer,
    RejectOffer,
    SetBuyingPower,
    StartAuction,
    WithdrawOffer,
)
from auction.money import MAX_PRICE_FEN_PER_T

CAT = default_catalogue()
RULES = CAT.rules("ebike")
RATIO_BP = CAT.sale_rules.deposit_ratio_bp
UNITS_PER_FEN = 10_000 * 1_000


def units(price: int, kg: int) -> int:
    return RATIO_BP * price * kg


def increment(price: int) -> int:
    step = 0
    for start, inc in RULES.ladder:
        if price >= start:
            step = inc
    return step


@dataclass
class RLot:
    id: int
    kind: str
    owner: str
    org: str
    weight: int
    state: str
    start: int = 0
    reserve: int | None = None
    buy_now: int | None = None
    closes_at: datetime | None = None
    original_close: datetime | None = None
    accept_by: datetime | None = None
    bids: list[tuple[str, str, int, int]] = field(default_factory=list)  # bidder, org, max, seq
    expires_at: datetime | None = None
    offers_made: int = 0

    def maxima(self) -> list[tuple[int, int, str, str]]:
        """Each bidder's latest maximum as (max, seq, bidder, org), best first."""
        latest: dict[str, tuple[int, int, str, str]] = {}
        for bidder, org, mx, seq in self.bids:
            latest[bidder] = (mx, seq, bidder, org)
        return sorted(latest.values(), key=lambda t: (-t[0], t[1]))

    def leader(self) -> tuple[int, int, str, str] | None:
        m = self.maxima()
        return m[0] if m else None

    def visible(self) -> int | None:
        m = self.maxima()
        if not m:
            return None
        top = m[0][0]
        if len(m) == 1:
            price = self.start
        else:
            second = m[1][0]
            price = min(top, max(self.start, second + increment(second)))
        if self.reserve is not None and top >= self.reserve:
            price = max(price, self.reserve)
        return price

    def min_next(self) -> int:
        v = self.visible()
        return self.start if v is None else v + increment(v)


@dataclass
class ROffer:
    id: int
    lot: int
    bidder: str
    org: str
    price: int
    expires_at: datetime
    status: str = "made"
    counter: int | None = None


class ReferenceSales:
    def __init__(self) -> None:
        self.lots: dict[int, RLot] = {}
        self.offers: dict[int, ROffer] = {}
        self.limits: dict[str, int] = {}
        self.awards: list[tuple[int, str, int, str]] = []  # lot, buyer, price, via
        self.award_holds: dict[int, tuple[str, int]] = {}  # lot -> buyer, units
        self.last_id = 0
        self.seq = 0

    # -- derived -------------------------------------------------------------------------

    def reserved(self, bidder: str) -> int:
        total = 0
        for lot in self.lots.values():
            if lot.state == "in_auction":
                top = lot.leader()
                if top is not None and top[2] == bidder:
                    total += units(top[0], lot.weight)
        for offer in self.offers.values():
            if offer.bidder == bidder and offer.status in ("made", "countered"):
                total += units(offer.price, self.lots[offer.lot].weight)
        for who, u in self.award_holds.values():
            if who == bidder:
                total += u
        return total

    def available(self, bidder: str) -> int | None:
        if bidder not in self.limits:
            return None
        return self.limits[bidder] * UNITS_PER_FEN - self.reserved(bidder)

    # -- time ----------------------------------------------------------------------------

    def _due(self, now: datetime) -> tuple[datetime, int, str] | None:
        due: list[tuple[datetime, int, str]] = []
        for lot in self.lots.values():
            if lot.state == "in_auction" and lot.closes_at and lot.closes_at <= now:
                due.append((lot.closes_at, lot.id, "close"))
            if lot.state == "awaiting_acceptance" and lot.accept_by and lot.accept_by <= now:
                due.append((lot.accept_by, lot.id, "lapse"))
            if lot.state == "taking_offers" and lot.expires_at and lot.expires_at <= now:
                due.append((lot.expires_at, lot.id, "expiry"))
        for offer in self.offers.values():
            if offer.status in ("made", "countered") and offer.expires_at <= now:
                due.append((offer.expires_at, offer.id, "offer_expiry"))
        return min(due) if due else None

    def _fire(self, now: datetime) -> None:
        while (d := self._due(now)) is not None:
            when, oid, kind = d
            if kind == "close":
                lot = self.lots[oid]
                top = lot.leader()
                if top is None:
                    lot.state = "expired"
                    continue
                price = lot.visible()
                assert price is not None
                self.award_holds[oid] = (top[2], units(price, lot.weight))
                if lot.reserve is None or top[0] >= lot.reserve:
                    lot.state = "awarded"
                    self.awards.append((oid, top[2], price, "auction"))
                else:
                    lot.state = "awaiting_acceptance"
                    lot.accept_by = when + timedelta(seconds=RULES.acceptance_window_s)
            elif kind == "lapse":
                self.lots[oid].state = "lapsed"
                del self.award_holds[oid]
            elif kind == "expiry":
                lot = self.lots[oid]
                for offer in self.offers.values():
                    if offer.lot == oid and offer.status in ("made", "countered"):
                        offer.status = "void"
                lot.state = "expired"
            else:
                self.offers[oid].status = "expired"

    # -- commands ------------------------------------------------------------------------

    def apply(self, c: AnyCommand, now: datetime) -> str | None:
        """Apply; returns the refusal code, or None."""
        self._fire(now)
        code = self._refusal(c, now)
        if code is not None:
            return code
        match c:
            case StartAuction():
                self.last_id = c.lot_id
                close = now + timedelta(seconds=c.duration_s)
                self.lots[c.lot_id] = RLot(
                    c.lot_id, "auction", c.owner, c.org, c.weight_kg, "in_auction",
                    c.start_price_fen_per_t, c.reserve_fen_per_t, c.buy_now_fen_per_t,
                    close, close,
                )  # fmt: skip
            case AuctionBid():
                lot = self.lots[c.lot_id]
                before = lot.leader()
                self.seq += 1
                lot.bids.append((c.bidder, c.org, c.max_price_fen_per_t, self.seq))
                after = lot.leader()
                assert after is not None and lot.closes_at and lot.original_close
                changed = before is not None and before[2] != after[2]
                window = timedelta(seconds=RULES.soft_close_s)
                if changed and lot.closes_at - now <= window:
                    cap = lot.original_close + timedelta(seconds=RULES.max_extension_s)
                    lot.closes_at = max(lot.closes_at, min(lot.closes_at + window, cap))
            case BuyNow():
                lot = self.lots[c.lot_id]
                assert lot.buy_now is not None
                lot.state = "awarded"
                self.award_holds[lot.id] = (c.bidder, units(lot.buy_now, lot.weight))
                self.awards.append((lot.id, c.bidder, lot.buy_now, "buy_now"))
            case AcceptResult():
                lot = self.lots[c.lot_id]
                top, price = lot.leader(), lot.visible()
                assert top is not None and price is not None
                lot.state = "awarded"
                self.awards.append((lot.id, top[2], price, "accepted_below_reserve"))
            case DeclineResult():
                self.lots[c.lot_id].state = "declined"
                del self.award_holds[c.lot_id]
            case CancelLot():
                self.lots[c.lot_id].state = "cancelled"
            case InviteOffers():
                self.last_id = c.lot_id
                self.lots[c.lot_id] = RLot(
                    c.lot_id, "offers", c.owner, c.org, c.weight_kg, "taking_offers",
                    expires_at=c.expires_at,
                )  # fmt: skip
            case MakeOffer():
                self.last_id = c.offer_id
                self.lots[c.lot_id].offers_made += 1
                self.offers[c.offer_id] = ROffer(
                    c.offer_id, c.lot_id, c.bidder, c.org, c.price_fen_per_t, c.expires_at
                )
            case CounterOffer():
                offer = self.offers[c.offer_id]
                offer.status, offer.counter = "countered", c.price_fen_per_t
            case AcceptOffer() | AcceptCounter():
                offer = self.offers[c.offer_id]
                price = offer.price if isinstance(c, AcceptOffer) else offer.counter
                assert price is not None
                lot = self.lots[offer.lot]
                offer.status = "accepted"
                for other in self.offers.values():
                    if other.lot == lot.id and other.status in ("made", "countered"):
                        other.status = "void"
                lot.state = "awarded"
                self.award_holds[lot.id] = (offer.bidder, units(price, lot.weight))
                via = "offer" if isinstance(c, AcceptOffer) else "counter"
                self.awards.append((lot.id, offer.bidder, price, via))
            case RejectOffer():
                self.offers[c.offer_id].status = "rejected"
            case WithdrawOffer():
                self.offers[c.offer_id].status = "withdrawn"
            case SetBuyingPower():
                self.limits[c.bidder] = c.limit_fen
            case ExpireDue():
                pass
        return None

    def _refusal(self, c: AnyCommand, now: datetime) -> str | None:
        def bad_price(p: int) -> bool:
            return not 0 < p <= MAX_PRICE_FEN_PER_T

        def short(bidder: str, need: int, already: int = 0) -> bool:
            avail = self.available(bidder)
            return avail is None or need - already > avail

        match c:
            case StartAuction():
                if c.lot_id <= self.last_id:
                    return "duplicate_id"
                bad = bad_price(c.start_price_fen_per_t) or (
                    c.reserve_fen_per_t is not None and bad_price(c.reserve_fen_per_t)
                )
                if bad or not RULES.min_duration_s <= c.duration_s <= RULES.max_duration_s:
                    return "invalid_value"
                if c.buy_now_fen_per_t is not None and c.buy_now_fen_per_t <= max(
                    c.start_price_fen_per_t, c.reserve_fen_per_t or 0
                ):
                    return "invalid_value"
            case AuctionBid():
                lot = self.lots.get(c.lot_id)
                if lot is None:
                    return "lot_not_found"
                if lot.kind != "auction" or lot.state != "in_auction":
                    return "lot_not_open"
                if c.org == lot.org:
                    return "self_dealing_forbidden"
                if bad_price(c.max_price_fen_per_t):
                    return "invalid_value"
                top = lot.leader()
                need = units(c.max_price_fen_per_t, lot.weight)
                if top is not None and top[2] == c.bidder:
                    if c.max_price_fen_per_t <= top[0]:
                        return "below_increment"
                    if short(c.bidder, need, units(top[0], lot.weight)):
                        return "insufficient_buying_power"
                    return None
                if c.max_price_fen_per_t < lot.min_next():
                    return "below_increment"
                if short(c.bidder, need):
                    return "insufficient_buying_power"
            case BuyNow():
                lot = self.lots.get(c.lot_id)
                if lot is None:
                    return "lot_not_found"
                if lot.kind != "auction" or lot.state != "in_auction":
                    return "lot_not_open"
                if c.org == lot.org:
                    return "self_dealing_forbidden"
                if lot.buy_now is None or lot.bids:
                    return "lot_not_open"
                if short(c.bidder, units(lot.buy_now, lot.weight)):
                    return "insufficient_buying_power"
            case AcceptResult() | DeclineResult():
                lot = self.lots.get(c.lot_id)
                if lot is None or lot.owner != c.owner:
                    return "lot_not_found"
                if lot.state != "awaiting_acceptance":
                    return "lot_not_open"
            case CancelLot():
                lot = self.lots.get(c.lot_id)
                if lot is None or lot.owner != c.owner:
                    return "lot_not_found"
                if lot.state in ("in_auction", "taking_offers"):
                    if lot.bids or lot.offers_made:
                        return "lot_has_bids"
                elif lot.state != "open":
                    return "illegal_transition"
            case InviteOffers():
                if c.lot_id <= self.last_id:
                    return "duplicate_id"
                if c.expires_at is not None and c.expires_at <= now:
                    return "invalid_value"
            case MakeOffer():
                if c.offer_id <= self.last_id:
                    return "duplicate_id"
                lot = self.lots.get(c.lot_id)
                if lot is None:
                    return "lot_not_found"
                if lot.kind != "offers" or lot.state != "taking_offers":
                    return "lot_not_open"
                if c.org == lot.org:
                    return "self_dealing_forbidden"
                if bad_price(c.price_fen_per_t) or c.expires_at <= now:
                    return "invalid_value"
                if any(
                    o.lot == lot.id and o.bidder == c.bidder and o.status in ("made", "countered")
                    for o in self.offers.values()
                ):
                    return "offer_open"
                if short(c.bidder, units(c.price_fen_per_t, lot.weight)):
                    return "insufficient_buying_power"
            case CounterOffer() | AcceptOffer() | RejectOffer() | AcceptCounter() | WithdrawOffer():
                offer = self.offers.get(c.offer_id)
                if offer is None:
                    return "offer_not_found"
                lot = self.lots[offer.lot]
                store = isinstance(c, CounterOffer | AcceptOffer | RejectOffer)
                who = (
                    c.owner if isinstance(c, CounterOffer | AcceptOffer | RejectOffer) else c.bidder
                )
                if (lot.owner if store else offer.bidder) != who:
                    return "offer_not_found"
                if offer.status not in ("made", "countered") or lot.state != "taking_offers":
                    return "lot_not_open"
                if isinstance(c, CounterOffer) and bad_price(c.price_fen_per_t):
                    return "invalid_value"
                if isinstance(c, AcceptCounter):
                    if offer.counter is None:
                        return "lot_not_open"
                    need = units(offer.counter, lot.weight)
                    if short(offer.bidder, need, units(offer.price, lot.weight)):
                        return "insufficient_buying_power"
            case SetBuyingPower():
                if c.limit_fen < 0 or c.limit_fen * UNITS_PER_FEN < self.reserved(c.bidder):
                    return "invalid_value"
        return None

    def view(self) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for lot in self.lots.values():
            top = lot.leader()
            out[lot.id] = (
                lot.state,
                top[2] if top else None,
                lot.visible() if lot.state == "in_auction" else None,
                lot.closes_at,
                lot.accept_by,
            )
        return out
