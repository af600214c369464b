"""Buying power and deposits (定金): what each recycler may commit, and what it has.

A recycler has a limit in fen.  Everything that could make it pay reserves a deposit of
``deposit_ratio × price × weight``: its standing bids (on their open quantity), the
auctions it leads (on its maximum), its open offers, and what it has been awarded
(until settlement, a later issue).  A command that would need more than is available is
refused before anything changes; outbid, cancel, decline, lapse and expiry release.

Amounts are kept exactly, in *units* of 10⁻⁷ fen (``ratio_bp × price_fen_per_t × kg``,
since basis points are 10⁻⁴ and kilograms 10⁻³ of a tonne), so that splitting a
reservation (a bid that trades in two fills) never creates or loses a fen by rounding.
Shown to people in fen: reserved rounded up, available what is left.

Atomicity: one engine applies one command at a time, so a check and its reservation
can never interleave with another's, across every lot a bidder is in.  (With markets on
several shards, see docs/design-notes.md: buying power lives on its own shard.)
"""

from __future__ import annotations

from typing import Final

from auction.errors import ClientError, InvariantBroken
from auction.types import PrincipalId

UNITS_PER_FEN: Final = 10_000 * 1_000

HoldKey = tuple[str, int]
"""``("bid", bid_id)``, ``("lead", lot_id)``, ``("offer", offer_id)``, ``("award", lot_id)``,
``("trade", trade_id)``."""


def fen_up(units: int) -> int:
    return -(-units // UNITS_PER_FEN)


class BuyingPower:
    def __init__(self, ratio_bp: int) -> None:
        if not 0 <= ratio_bp <= 10_000:
            raise InvariantBroken("deposit ratio must be between 0 and 10000 basis points")
        self.ratio_bp = ratio_bp
        self._limits: dict[PrincipalId, int] = {}
        self._reserved: dict[PrincipalId, int] = {}
        self._holds: dict[HoldKey, tuple[PrincipalId, int]] = {}

    # -- reading -----------------------------------------------------------------------

    def count(self) -> int:
        return len(self._holds)

    def units(self, price_fen_per_t: int, weight_kg: int) -> int:
        return self.ratio_bp * price_fen_per_t * weight_kg

    def deposit_fen(self, price_fen_per_t: int, weight_kg: int) -> int:
        return fen_up(self.units(price_fen_per_t, weight_kg))

    def limit_fen(self, bidder: PrincipalId) -> int | None:
        return self._limits.get(bidder)

    def reserved_units(self, bidder: PrincipalId) -> int:
        return self._reserved.get(bidder, 0)

    def available_units(self, bidder: PrincipalId) -> int:
        limit = self._limits.get(bidder)
        if limit is None:
            return 0
        return limit * UNITS_PER_FEN - self._reserved.get(bidder, 0)

    def held(self, key: HoldKey) -> tuple[PrincipalId, int] | None:
        return self._holds.get(key)

    def holds(self) -> dict[HoldKey, tuple[PrincipalId, int]]:
        return dict(self._holds)

    def bidders(self) -> list[PrincipalId]:
        return sorted(self._limits)

    def summary(self, bidder: PrincipalId) -> tuple[int, int, int]:
        """``(limit_fen, reserved_fen, available_fen)`` as shown to people."""
        limit = self._limits.get(bidder, 0)
        reserved = fen_up(self._reserved.get(bidder, 0))
        return limit, reserved, limit - reserved

    # -- checking (no change) ----------------------------------------------------------

    def check(self, bidder: PrincipalId, units: int, *, replacing: HoldKey | None = None) -> None:
        """Refuse with ``insufficient_buying_power`` unless ``units`` more can be held
        (less whatever ``replacing``, a hold of the same bidder, already holds)."""
        if bidder not in self._limits:
            raise ClientError(
                "insufficient_buying_power", "no buying power has been set for you yet"
            )
        already = 0
        if replacing is not None:
            held = self._holds.get(replacing)
            if held is not None and held[0] == bidder:
                already = held[1]
        need = units - already
        if need > self.available_units(bidder):
            _, _, available = self.summary(bidder)
            raise ClientError(
                "insufficient_buying_power",
                f"this needs a deposit of {fen_up(units)} fen; {available} fen is available",
            )

    # -- changing ----------------------------------------------------------------------

    def set_limit(self, bidder: PrincipalId, limit_fen: int) -> None:
        if limit_fen < 0:
            raise ClientError("invalid_value", "limit_fen must not be negative", field="limit_fen")
        if limit_fen * UNITS_PER_FEN < self._reserved.get(bidder, 0):
            raise ClientError(
                "invalid_value",
                f"{fen_up(self._reserved[bidder])} fen is reserved; the limit cannot go below it",
                field="limit_fen",
            )
        self._limits[bidder] = limit_fen

    def hold(self, key: HoldKey, bidder: PrincipalId, units: int) -> None:
        """Set ``key``'s hold to ``units`` (replacing what it held).  Checked first."""
        old = self._holds.get(key)
        if old is not None:
            self._reserved[old[0]] -= old[1]
        if units:
            self._holds[key] = (bidder, units)
            self._reserved[bidder] = self._reserved.get(bidder, 0) + units
        elif old is not None:
            del self._holds[key]
        if self.available_units(bidder) < 0:
            raise InvariantBroken(f"{bidder} holds more than its buying power after {key}")

    def release(self, key: HoldKey) -> PrincipalId | None:
        """Drop ``key``'s hold; returns whose it was (None if nothing was held)."""
        old = self._holds.pop(key, None)
        if old is None:
            return None
        self._reserved[old[0]] -= old[1]
        return old[0]

    def move(self, key: HoldKey, to: HoldKey, units: int) -> None:
        """Turn ``key``'s hold into a hold of ``units`` under ``to`` (never more)."""
        old = self._holds.pop(key, None)
        if old is None:
            raise InvariantBroken(f"nothing held under {key}")
        bidder, had = old
        if to in self._holds:
            raise InvariantBroken(f"{to} already holds a reservation")
        if units > had:
            raise InvariantBroken(f"moving {key} to {to} would hold more than was reserved")
        self._reserved[bidder] -= had - units
        if units:
            self._holds[to] = (bidder, units)
