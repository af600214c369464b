"""``auction replay``: the matching core on a plain order flow (generic limit-order mode).

One market, every order from its own owner, partial fills on both sides.  Lines::

    L,<id>,<B|S>,<price>,<qty>   limit order; the rest rests
    M,<id>,<B|S>,<qty>           market order; the rest is dropped
    C,<id>                       cancel what rests of an order
    # ...                        ignored, as are blank lines

An order whose id was used by an earlier order (L or M, accepted or not) and a cancel
of an id that does not rest are rejected: counted, nothing changes.  A line that is
not one of the forms above is a malformed flow (``FlowError``), not a rejection.

The orders go through ``auction.book.Book``, the same book the engine uses.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

import msgspec

from auction.book import BUY, MARKET_BUY_PRICE, MARKET_SELL_PRICE, SELL, Book, Fill, Order

LIMIT: Final = 0
MARKET: Final = 1
CANCEL: Final = 2

FlowCommand = tuple[int, int, int, int, int]
"""``(op, id, side, price, qty)``; unused fields are 0."""


class FlowError(ValueError):
    """A flow line that is not one of the documented forms."""

    def __init__(self, line_no: int, line: str, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}: {line[:80]!r}")
        self.line_no = line_no


class ReplayResult(msgspec.Struct, frozen=True):
    """The one JSON object ``auction replay`` prints; field order is the output order."""

    events: int
    trades: int
    volume: int
    notional: int
    rejected: int
    resting_bid_qty: int
    resting_ask_qty: int
    tape_sha256: str
    seconds: float
    events_per_s: float


def _positive(text: str, what: str, line_no: int, line: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise FlowError(line_no, line, f"{what} must be a positive integer")
    value = int(text)
    if value <= 0:
        raise FlowError(line_no, line, f"{what} must be a positive integer")
    return value


def _side(text: str, line_no: int, line: str) -> int:
    text = text.strip()
    if text == "B":
        return BUY
    if text == "S":
        return SELL
    raise FlowError(line_no, line, "side must be B or S")


def generate_flow(n: int, seed: int) -> list[FlowCommand]:
    """A mixed flow: about 60% passive limits, 25% cancels, 15% orders that cross.

    A book follows the flow as it is generated, so that "passive" and "crossing" are
    measured against the real touch: passive orders rest 1-20 ticks behind the other
    side's best price, crossing ones are limits up to 3 ticks through it (two thirds)
    or market orders (one third), and cancels name orders that still rest.
    """
    rng = random.Random(seed)
    book = Book()
    fills: list[Fill] = []
    stranded: list[tuple[Order, int]] = []
    tick = 100
    mid = 1_000_000  # fen per tonne: ¥10,000/t, used while a side is empty
    candidates: list[int] = []
    out: list[FlowCommand] = []
    next_id = 1
    while len(out) < n:
        r = rng.random()
        if r < 0.25:
            while candidates:
                i = rng.randrange(len(candidates))
                candidates[i], candidates[-1] = candidates[-1], candidates[i]
                oid = candidates.pop()
                if oid in book:
                    book.cancel(oid)
                    out.append((CANCEL, oid, 0, 0, 0))
                    break
            continue
        side = BUY if rng.random() < 0.5 else SELL
        qty = rng.randint(1, 100)
        oid = next_id
        next_id += 1
        best_bid = book.best_price(BUY) or mid - tick
        best_ask = book.best_price(SELL) or mid + tick
        if r < 0.85:
            behind = tick * rng.randint(1, 20)
            price = best_ask - behind if side == BUY else best_bid + behind
        elif r < 0.95:
            through = tick * rng.randint(0, 3)
            price = best_ask + through if side == BUY else max(tick, best_bid - through)
        else:
            out.append((MARKET, oid, side, 0, qty))
            bound = MARKET_BUY_PRICE if side == BUY else MARKET_SELL_PRICE
            book.submit(Order(oid, side, bound, qty), fills, stranded)
            fills.clear()
            continue
        out.append((LIMIT, oid, side, price, qty))
        book.place(Order(oid, side, price, qty), fills)
        fills.clear()
        candidates.append(oid)
    return out


def format_flow(commands: Iterable[FlowCommand]) -> Iterator[str]:
    """The flow file lines for ``commands``."""
    for op, oid, side, price, qty in commands:
        s = "B" if side == BUY else "S"
        if op == LIMIT:
            yield f"L,{oid},{s},{price},{qty}\n"
        elif op == MARKET:
            yield f"M,{oid},{s},{qty}\n"
        else:
            yield f"C,{oid}\n"


def parse_flow(lines: Iterable[str]) -> list[FlowCommand]:
    """Parse flow lines into commands; raises ``FlowError`` on the first bad line."""
    out: list[FlowCommand] = []
    for line_no, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(",")
        op = parts[0].strip()
        if op == "L" and len(parts) == 5:
            out.append(
                (
                    LIMIT,
                    _positive(parts[1], "id", line_no, line),
                    _side(parts[2], line_no, line),
                    _positive(parts[3], "price", line_no, line),
                    _positive(parts[4], "qty", line_no, line),
                )
            )
        elif op == "M" and len(parts) == 4:
            out.append(
                (
                    MARKET,
                    _positive(parts[1], "id", line_no, line),
                    _side(parts[2], line_no, line),
                    0,
                    _positive(parts[3], "qty", line_no, line),
                )
            )
        elif op == "C" and len(parts) == 2:
            out.append((CANCEL, _positive(parts[1], "id", line_no, line), 0, 0, 0))
        else:
            raise FlowError(line_no, line, "expected L,id,B|S,price,qty / M,id,B|S,qty / C,id")
    return out


def read_flow(path: str | Path) -> list[FlowCommand]:
    with open(path, encoding="utf-8") as f:
        return parse_flow(f)


def match_flow(commands: Sequence[FlowCommand], book: Book) -> tuple[list[Fill], int]:
    """Apply the commands to ``book``; returns the fills and the number rejected."""
    fills: list[Fill] = []
    stranded: list[tuple[Order, int]] = []  # stays empty: flow orders have no minimums
    seen: set[int] = set()
    rejected = 0
    submit = book.submit
    place = book.place
    cancel = book.cancel
    for op, oid, side, price, qty in commands:
        if op == CANCEL:
            if cancel(oid) is None:
                rejected += 1
            continue
        if oid in seen:
            rejected += 1
            continue
        seen.add(oid)
        if op == LIMIT:
            place(Order(oid, side, price, qty), fills)
        else:
            bound = MARKET_BUY_PRICE if side == BUY else MARKET_SELL_PRICE
            submit(Order(oid, side, bound, qty), fills, stranded)
    return fills, rejected


def tape_sha256(fills: Iterable[Fill]) -> str:
    digest = hashlib.sha256()
    for taker, maker, price, qty in fills:
        digest.update(f"{taker.id},{maker.id},{price},{qty}\n".encode())
    return digest.hexdigest()


def replay(commands: Sequence[FlowCommand]) -> ReplayResult:
    book = Book()
    started = time.perf_counter()
    fills, rejected = match_flow(commands, book)
    seconds = time.perf_counter() - started
    return ReplayResult(
        events=len(commands),
        trades=len(fills),
        volume=sum(f[3] for f in fills),
        notional=sum(f[2] * f[3] for f in fills),
        rejected=rejected,
        resting_bid_qty=book.resting_qty(BUY),
        resting_ask_qty=book.resting_qty(SELL),
        tape_sha256=tape_sha256(fills),
        seconds=round(seconds, 6),
        events_per_s=round(len(commands) / seconds, 1) if seconds > 0 else 0.0,
    )
