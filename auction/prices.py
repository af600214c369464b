"""Price state: the day's statistics per market, the published prices, the settlements.

Derived state only: everything here is recomputed from the journal's read tables
(``trades``, ``awards``, ``prices``, ``daily_stats``) when a backend comes back empty.
Every write carries its position in the journal (``pos`` = sequence × 65536 + the index
of the print within its command) and is applied only if newer than what the key holds,
so applying a batch twice, or after a rebuild, changes nothing.

Two backends behind one small interface (``PriceStore``): ``MemoryPrices`` in-process
(the embedded default) and ``RedisPrices`` (``auction.prices_redis``), whose atomic
updates are Lua scripts.  Both hold the same raw aggregates (open, high, low, last,
volume, trade count, notional, buyers); what is computed from them (VWAP, change, the
回收指数, the waste-to-lead ratio, the settlement) is computed here, once, for both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from auction.catalogue import SettlementRule

POS_SHIFT = 65_536  # prints per command: a position is seq * POS_SHIFT + index


class Print(msgspec.Struct, frozen=True):
    """One sale at a price: a trade against a standing bid, or an award."""

    pos: int
    day: str
    market: str
    price_fen_per_t: int
    weight_kg: int
    buyer: str


class Quote(msgspec.Struct, frozen=True):
    """One published price; ``slot`` is what it replaces (kind, key and, for upstream
    quotes, the publisher)."""

    pos: int
    kind: str
    key: str
    publisher: str
    price_fen_per_t: int
    vat_included: bool
    at: str

    @property
    def slot(self) -> str:
        if self.kind == "upstream":
            return f"upstream|{self.key}|{self.publisher}"
        return f"{self.kind}|{self.key}"


class Settlement(msgspec.Struct, frozen=True):
    day: str
    price_fen_per_t: int | None
    carried: bool


class Aggregate(msgspec.Struct):
    """A market's day as the backends keep it."""

    open: int
    high: int
    low: int
    last: int
    volume_kg: int
    trades: int
    notional: int  # sum of price_fen_per_t * weight_kg
    buyers: int
    pos: int


class MarketStats(msgspec.Struct, frozen=True):
    market: str
    day: str
    open_fen_per_t: int | None
    high_fen_per_t: int | None
    low_fen_per_t: int | None
    last_fen_per_t: int | None
    volume_kg: int
    trades: int
    buyers: int
    vwap_fen_per_t: int | None
    previous_settlement_fen_per_t: int | None
    change_fen_per_t: int | None
    """``last`` against the previous day's settlement."""


class CategoryIndex(msgspec.Struct, frozen=True):
    """回收指数: the category's volume-weighted price across regions today, and its
    ratio to the lead ingot reference price (when one is published)."""

    category: str
    index_fen_per_t: int | None
    volume_kg: int
    lead_ratio: float | None


class Board(msgspec.Struct, frozen=True):
    """Everything a quote board shows, in one answer."""

    day: str | None
    stale: bool
    markets: list[MarketStats]
    quotes: list[Quote]
    settlements: dict[str, Settlement]
    indices: list[CategoryIndex]


Snapshot = tuple[str | None, dict[str, Aggregate], list[Quote], dict[str, Settlement]]


def honour_cancellation() -> None:
    """Raise ``CancelledError`` if our task is being cancelled: a client library that
    swallowed the cancellation (redis-py's socket timeout can turn it into a timeout) must
    not keep a service running through shutdown."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def vwap(notional: int, volume_kg: int) -> int | None:
    """Notional over volume, rounded half up to a whole fen per tonne."""
    if volume_kg <= 0:
        return None
    return (2 * notional + volume_kg) // (2 * volume_kg)


def settle(
    agg: Aggregate | None, previous: Settlement | None, day: str, rule: SettlementRule
) -> Settlement:
    """The day's VWAP when it had enough trades from enough buyers; otherwise the last
    settlement carried forward (marked so), or none at all."""
    if agg is not None and agg.trades >= rule.min_trades and agg.buyers >= rule.min_buyers:
        return Settlement(day, vwap(agg.notional, agg.volume_kg), False)
    return Settlement(day, previous.price_fen_per_t if previous else None, True)


class PriceStore(Protocol):
    """What a backend keeps.  Every method may raise ``ConnectionError`` (and only that,
    for a backend that is away); ``None`` from ``day`` means empty: rebuild it."""

    async def day(self) -> str | None: ...

    async def start_day(self, day: str, *, create: bool = False) -> bool:
        """Forget the statistics of every earlier day; ``day`` is the current one.  False
        if the store was found empty (unless ``create``: the rebuild's first step)."""
        ...

    async def add_prints(self, prints: list[Print]) -> bool:
        """False if the store was found empty (nothing applied: rebuild)."""
        ...

    async def add_quotes(self, quotes: list[Quote]) -> bool: ...

    async def set_settlements(self, settlements: dict[str, Settlement]) -> None: ...

    async def read(self) -> Snapshot:
        """The current day, its aggregates, the current quotes and the settlements: one
        round trip for a backend over the network."""
        ...

    async def clear(self) -> None: ...


def board(snapshot: Snapshot, stale: bool) -> Board:
    day, aggregates, quotes, settlements = snapshot
    markets = []
    by_category: dict[str, list[Aggregate]] = {}
    for market in sorted(aggregates):
        agg = aggregates[market]
        prev = settlements.get(market)
        prev_price = prev.price_fen_per_t if prev else None
        markets.append(
            MarketStats(
                market=market,
                day=day or "",
                open_fen_per_t=agg.open,
                high_fen_per_t=agg.high,
                low_fen_per_t=agg.low,
                last_fen_per_t=agg.last,
                volume_kg=agg.volume_kg,
                trades=agg.trades,
                buyers=agg.buyers,
                vwap_fen_per_t=vwap(agg.notional, agg.volume_kg),
                previous_settlement_fen_per_t=prev_price,
                change_fen_per_t=agg.last - prev_price if prev_price is not None else None,
            )
        )
        by_category.setdefault(market.partition(":")[0], []).append(agg)
    lead = next((q for q in quotes if q.kind == "end_of_chain" and q.key == "lead"), None)
    indices = []
    for category in sorted(by_category):
        aggs = by_category[category]
        volume = sum(a.volume_kg for a in aggs)
        index = vwap(sum(a.notional for a in aggs), volume)
        ratio = round(index / lead.price_fen_per_t, 4) if index and lead else None
        indices.append(CategoryIndex(category, index, volume, ratio))
    quotes = sorted(quotes, key=lambda q: q.slot)
    return Board(day, stale, markets, quotes, dict(sorted(settlements.items())), indices)


# -- the in-process backend -------------------------------------------------------------


@dataclass
class _Day:
    agg: Aggregate
    buyers: set[str] = field(default_factory=set)


class MemoryPrices:
    """The embedded default: dicts in this process."""

    def __init__(self) -> None:
        self._day: str | None = None
        self._stats: dict[str, _Day] = {}
        self._quotes: dict[str, Quote] = {}
        self._settlements: dict[str, Settlement] = {}

    async def day(self) -> str | None:
        return self._day

    async def start_day(self, day: str, *, create: bool = False) -> bool:
        if self._day is None and not create:
            return False
        if self._day != day:
            self._stats = {}
        self._day = day
        return True

    async def add_prints(self, prints: list[Print]) -> bool:
        if self._day is None:
            return False
        for p in prints:
            if p.day != self._day:
                continue  # another day's print: the service rolls the day first
            cur = self._stats.get(p.market)
            amount = p.price_fen_per_t * p.weight_kg
            if cur is None:
                self._stats[p.market] = _Day(
                    Aggregate(p.price_fen_per_t, p.price_fen_per_t, p.price_fen_per_t,
                              p.price_fen_per_t, p.weight_kg, 1, amount, 1, p.pos),
                    {p.buyer},
                )  # fmt: skip
                continue
            a = cur.agg
            if p.pos <= a.pos:
                continue
            a.high = max(a.high, p.price_fen_per_t)
            a.low = min(a.low, p.price_fen_per_t)
            a.last = p.price_fen_per_t
            a.volume_kg += p.weight_kg
            a.trades += 1
            a.notional += amount
            cur.buyers.add(p.buyer)
            a.buyers = len(cur.buyers)
            a.pos = p.pos
        return True

    async def add_quotes(self, quotes: list[Quote]) -> bool:
        if self._day is None:
            return False
        for q in quotes:
            held = self._quotes.get(q.slot)
            if held is None or q.pos > held.pos:
                self._quotes[q.slot] = q
        return True

    async def set_settlements(self, settlements: dict[str, Settlement]) -> None:
        self._settlements.update(settlements)

    async def read(self) -> Snapshot:
        aggs = {m: msgspec.structs.replace(d.agg) for m, d in self._stats.items()}
        return self._day, aggs, list(self._quotes.values()), dict(self._settlements)

    async def clear(self) -> None:
        self.__init__()  # type: ignore[misc]
