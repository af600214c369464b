"""One error tree for the engine and everything around it.

::

    AuctionError
    ├── ClientError           the command is wrong, or not allowed now; nothing changed
    │   └── (code)            a stable machine-readable code from CODES, e.g. "below_min_lot"
    └── InvariantBroken       the engine broke one of its own rules: a bug, never the client's

Every client error carries a stable ``code``; the status it maps to lives in ``CODES``
(HTTP status; the web layer turns it into problem+json and websocket close codes in one
place).  The pure engine never lets a ``ClientError`` escape ``apply``: it answers with a
``Rejected`` event instead, so a rejection is data that can be journaled and replayed.
"""

from __future__ import annotations

from typing import Final

# code -> (HTTP status, title).  Codes are part of the public interface: never rename.
CODES: Final[dict[str, tuple[int, str]]] = {
    "invalid_value": (422, "A value is out of range"),
    "invalid_type": (422, "A value has the wrong type"),
    "wrong_unit": (422, "Prices are fen per tonne and weights kilograms"),
    "malformed_json": (400, "The body is not one valid JSON document"),
    "unknown_field": (422, "The body has a field that is not allowed"),
    "unknown_market": (422, "No such market"),
    "duplicate_id": (409, "That id is already in use"),
    "order_not_found": (404, "No such order"),
    "lot_not_found": (404, "No such lot"),
    "bid_not_found": (404, "No such bid"),
    "no_buyer": (409, "No buyer at or above your floor now"),
    "offer_not_found": (404, "No such offer"),
    "lot_not_open": (409, "The lot is not open for that"),
    "illegal_transition": (409, "The lot cannot move that way from where it is"),
    "lot_has_bids": (409, "The lot already has bids"),
    "below_increment": (422, "The bid is below the minimum next bid"),
    "insufficient_buying_power": (422, "Not enough buying power"),
    "self_dealing_forbidden": (403, "You cannot bid on your own organisation's lot"),
    "offer_open": (409, "You already have an open offer on this lot"),
    "price_out_of_band": (422, "The price is outside the band around the daily quote"),
    "overloaded": (503, "The engine is busy"),
    "journal_unavailable": (503, "The journal could not be written; try again"),
    "tickets_unavailable": (503, "Websocket tickets cannot be issued or checked now; try again"),
    "idempotency_in_flight": (409, "A request with this key is still being applied"),
    "idempotency_key_reused": (422, "This idempotency key was used for a different request"),
}


class AuctionError(Exception):
    """Root of every error this project raises on purpose."""


class ClientError(AuctionError):
    """A command that cannot be applied; applying it changed nothing."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        limits: dict[str, int] | None = None,
    ) -> None:
        if code not in CODES:
            raise InvariantBroken(f"unregistered error code {code!r}")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field
        self.limits = limits
        """The bounds the refusal names, as numbers a program can use (e.g. the band)."""

    @property
    def status(self) -> int:
        return CODES[self.code][0]


class InvariantBroken(AuctionError):
    """The engine's state or inputs broke a rule it relies on: a bug to fix, not to map."""
