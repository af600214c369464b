"""The order book of one market: two sides of price levels in price-time priority.

Rules (the engine and ``auction replay`` both rely on them):

* Best price first; at one price, oldest first.  A trade happens at the *resting*
  (maker) order's price.
* An order carries optional constraints: an ``org`` (two orders of the same
  organisation never trade), a minimum fill ``min_qty`` (a recycler's minimum lot:
  every fill of that order is at least this big) and ``aon`` (all-or-none: one fill for
  the whole remaining quantity, i.e. one pickup, one buyer).  A maker that cannot take
  a fill is skipped, not removed; the sweep goes on to the next one in priority order.
* An order whose remaining quantity falls below its own ``min_qty`` can never trade
  again; the book reports it as stranded and removes it.  The engine turns that
  into a cancellation with a reason.
* The book only matches and rests.  Time, expiry, ids and validation belong to the
  engine; the book trusts its caller (positive quantities, unique ids).

Layout, chosen for the common path of a plain limit-order flow:

* each side is a ``dict`` of level key -> ``Level`` plus a sorted ``list`` of keys whose
  *last* element is the best price (bids keyed by price, asks by ``-price``), so the
  best level is ``keys[-1]`` and removing it is ``list.pop()``;
* a level is a FIFO ``deque`` of orders with lazy deletion: a cancelled order gets
  ``qty = 0`` and stays in the deque until it reaches the front or the level is
  compacted (when dead entries outnumber live ones), so cancel is O(1);
* orders are ``msgspec.Struct(gc=False)``: cheap to create and invisible to the cyclic
  garbage collector, which keeps collection pauses out of the matching latency.

When neither the incoming order nor any resting order carries a constraint (the
generic limit-order mode of ``auction replay``), the sweep takes a lean path that
never looks at constraints; otherwise it takes the general path.  Both implement the
rules above and are tested against each other and against a naive reference model.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from typing import Final

import msgspec

BUY: Final = 0
SELL: Final = 1

# Price bounds that make a market order a limit order that always crosses.
MARKET_BUY_PRICE: Final = 1 << 62
MARKET_SELL_PRICE: Final = 0

_COMPACT_MIN_DEAD: Final = 32


class Order(msgspec.Struct, gc=False):
    """A resting or incoming order.  ``qty`` is what remains; 0 means gone."""

    id: int
    side: int
    price: int
    qty: int
    org: str | None = None
    min_qty: int = 0
    aon: bool = False


class Level(msgspec.Struct, gc=False):
    """All orders at one price, oldest first.

    ``total`` is the live quantity (0 exactly when no live order is left) and ``dead``
    the number of dead entries still in ``orders``, so ``len(orders) - dead`` orders live.
    """

    orders: deque[Order]
    total: int = 0
    dead: int = 0


Fill = tuple[Order, Order, int, int]
"""``(taker, maker, price, qty)``; after a sweep ``maker.qty`` is what remains of it."""


class Book:
    """One market's book.  Not thread-safe: one writer per market by design."""

    __slots__ = (
        "_constrained",
        "_keys",
        "_levels",
        "_orders",
    )

    def __init__(self) -> None:
        # index BUY / SELL; see the module docstring for the key convention
        self._keys: tuple[list[int], list[int]] = ([], [])
        self._levels: tuple[dict[int, Level], dict[int, Level]] = ({}, {})
        self._orders: dict[int, Order] = {}
        self._constrained = 0  # resting orders that carry any constraint

    # -- queries ---------------------------------------------------------------------

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def best_price(self, side: int) -> int | None:
        keys = self._keys[side]
        if not keys:
            return None
        return keys[-1] if side == BUY else -keys[-1]

    def resting_qty(self, side: int) -> int:
        return sum(level.total for level in self._levels[side].values())

    def depth(self, side: int, limit: int | None = None) -> list[tuple[int, int, int]]:
        """``(price, total qty, order count)`` per level, best first."""
        keys = self._keys[side]
        levels = self._levels[side]
        sign = 1 if side == BUY else -1
        out: list[tuple[int, int, int]] = []
        for key in reversed(keys):
            if limit is not None and len(out) >= limit:
                break
            level = levels[key]
            out.append((key * sign, level.total, len(level.orders) - level.dead))
        return out

    def orders(self, side: int) -> Iterator[Order]:
        """Live orders of one side in priority order (best price, then oldest)."""
        levels = self._levels[side]
        for key in reversed(self._keys[side]):
            for order in levels[key].orders:
                if order.qty:
                    yield order

    # -- changes ---------------------------------------------------------------------

    def submit(self, order: Order, fills: list[Fill], stranded: list[tuple[Order, int]]) -> None:
        """Match ``order`` against the other side; it does not rest.

        Fills are appended to ``fills`` in execution order; each maker appears at most
        once.  Makers removed because what remains of them is below their own minimum
        fill are appended to ``stranded`` with the quantity that was left.
        ``order.qty`` is updated to what remains: call ``rest`` to leave it in the book,
        or drop it (market order, one-click sale refused).
        """
        if order.side == BUY:
            keys = self._keys[SELL]
            bound = -order.price
            other = SELL
        else:
            keys = self._keys[BUY]
            bound = order.price
            other = BUY
        if not keys or keys[-1] < bound:
            return  # nothing on the other side crosses
        if self._constrained or order.org is not None or order.min_qty or order.aon:
            self._sweep_general(order, other, bound, fills, stranded)
        else:
            order.qty = self._sweep_plain(order, keys, self._levels[other], bound, fills)

    def place(self, order: Order, fills: list[Fill]) -> None:
        """A plain limit order: match, then rest what is left (``submit`` + ``rest``).

        For unconstrained orders only (the generic limit-order mode).
        """
        side = order.side
        if side == BUY:
            keys = self._keys[SELL]
            key = order.price
            if keys and keys[-1] >= -key:
                order.qty = self._sweep_plain(order, keys, self._levels[SELL], -key, fills)
        else:
            keys = self._keys[BUY]
            key = -order.price
            if keys and keys[-1] >= -key:
                order.qty = self._sweep_plain(order, keys, self._levels[BUY], -key, fills)
        if not order.qty:
            return
        # ``rest`` inlined (less its constraint count): this is the hot path of a plain flow
        levels = self._levels[side]
        level = levels.get(key)
        if level is None:
            level = levels[key] = Level(deque())
            own = self._keys[side]
            if not own or key > own[-1]:
                own.append(key)
            else:
                bisect.insort(own, key)
        level.orders.append(order)
        level.total += order.qty
        self._orders[order.id] = order

    def rest(self, order: Order) -> None:
        """Put ``order`` (with ``qty > 0``, an id not resting) at the back of its level."""
        side = order.side
        key = order.price if side == BUY else -order.price
        levels = self._levels[side]
        level = levels.get(key)
        if level is None:
            level = levels[key] = Level(deque())
            keys = self._keys[side]
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                bisect.insort(keys, key)
        level.orders.append(order)
        level.total += order.qty
        self._orders[order.id] = order
        if order.org is not None or order.min_qty or order.aon:
            self._constrained += 1

    def cancel(self, order_id: int) -> tuple[Order, int] | None:
        """Take a resting order out; returns it (now with ``qty`` 0) and what remained."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return None
        remaining = order.qty
        side = order.side
        key = order.price if side == BUY else -order.price
        level = self._levels[side][key]
        order.qty = 0
        if self._constrained and (order.org is not None or order.min_qty or order.aon):
            self._constrained -= 1
        level.total -= remaining
        if not level.total:
            self._drop_level(side, key)
            return order, remaining
        level.dead += 1
        dead = level.dead
        if dead > _COMPACT_MIN_DEAD and dead * 2 > len(level.orders):
            level.orders = deque(o for o in level.orders if o.qty)
            level.dead = 0
        return order, remaining

    def reduce(self, order_id: int, qty: int) -> None:
        """Lower a resting order's quantity in place, keeping its time priority."""
        order = self._orders[order_id]
        if not 0 < qty <= order.qty:
            raise ValueError("reduce needs 0 < qty <= remaining")
        side = order.side
        key = order.price if side == BUY else -order.price
        self._levels[side][key].total -= order.qty - qty
        order.qty = qty

    # -- internals -------------------------------------------------------------------

    def _drop_level(self, side: int, key: int) -> None:
        del self._levels[side][key]
        keys = self._keys[side]
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect.bisect_left(keys, key)]

    def _sweep_plain(
        self,
        taker: Order,
        keys: list[int],
        levels: dict[int, Level],
        bound: int,
        fills: list[Fill],
    ) -> int:
        """The unconstrained sweep: take from the front of the best level until done.

        ``keys`` / ``levels`` are the other side's; returns what is left of the taker.
        """
        qty = taker.qty
        orders = self._orders
        sign = -1 if taker.side == BUY else 1
        append = fills.append
        while keys:
            key = keys[-1]
            if key < bound:
                return qty
            level = levels[key]
            queue = level.orders
            price = key * sign
            while True:
                maker = queue[0]
                have = maker.qty
                if not have:
                    queue.popleft()
                    level.dead -= 1
                    continue
                if have > qty:
                    maker.qty = have - qty
                    level.total -= qty
                    append((taker, maker, price, qty))
                    return 0
                queue.popleft()
                maker.qty = 0
                del orders[maker.id]
                append((taker, maker, price, have))
                qty -= have
                level.total -= have
                if not level.total:
                    break
                if not qty:
                    return 0
            keys.pop()
            del levels[key]
            if not qty:
                return 0
        return qty

    def _sweep_general(
        self,
        taker: Order,
        side: int,
        bound: int,
        fills: list[Fill],
        stranded: list[tuple[Order, int]],
    ) -> None:
        """The sweep with constraints: skip makers that cannot take a fill."""
        keys = self._keys[side]
        levels = self._levels[side]
        sign = 1 if side == BUY else -1
        org = taker.org
        idx = len(keys) - 1
        while idx >= 0 and taker.qty and taker.qty >= taker.min_qty:
            key = keys[idx]
            if key < bound:
                break
            level = levels[key]
            price = key * sign
            for maker in level.orders:
                have = maker.qty
                if not have or (org is not None and maker.org == org):
                    continue
                want = taker.qty
                fill = want if want < have else have
                if (
                    (taker.aon and fill < want)
                    or (maker.aon and fill < have)
                    or fill < taker.min_qty
                    or fill < maker.min_qty
                ):
                    continue
                maker.qty = have - fill
                taker.qty = want - fill
                level.total -= fill
                fills.append((taker, maker, price, fill))
                if maker.qty and maker.qty < maker.min_qty:
                    stranded.append((maker, maker.qty))
                    level.total -= maker.qty
                    maker.qty = 0
                if not maker.qty:
                    del self._orders[maker.id]
                    level.dead += 1
                    if maker.org is not None or maker.min_qty or maker.aon:
                        self._constrained -= 1
                if not taker.qty or taker.qty < taker.min_qty:
                    break
            queue = level.orders
            while queue and not queue[0].qty:
                queue.popleft()
                level.dead -= 1
            if not level.total:
                self._drop_level(side, key)
            idx -= 1
