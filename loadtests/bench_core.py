"""Benchmark of the matching core: ``python -m loadtests.bench_core [--orders N] [--seed S]``.

Generates a mixed flow (about 60% passive limit orders, 25% cancels, 15% orders that
cross), replays it through ``auction.book.Book`` exactly as ``auction replay`` does, and
through a minimal heapq + dict baseline book in the same run, interleaved over several
rounds so that both see the same machine noise.  Prints events/s for both, their
ratio, per-operation latency percentiles of the real book, and checks that both books
printed the same tape (the baseline doubles as an independent check of the matching).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auction.book import BUY, SELL, Book, Fill, Order
from auction.flow import (
    CANCEL,
    LIMIT,
    FlowCommand,
    format_flow,
    generate_flow,
    match_flow,
    tape_sha256,
)

# -- the baseline --------------------------------------------------------------------


class HeapBook:
    """A minimal book: a heap of prices per side, a dict of price -> FIFO of
    ``[id, qty]`` entries, a dict of id -> entry for cancels; lazy deletion."""

    def __init__(self) -> None:
        self.heaps: tuple[list[int], list[int]] = ([], [])  # bids: -price, asks: price
        self.levels: tuple[dict[int, deque[list[int]]], dict[int, deque[list[int]]]] = ({}, {})
        self.live: dict[int, tuple[int, int, list[int]]] = {}
        self.seen: set[int] = set()
        self.tape: list[tuple[int, int, int, int]] = []
        self.rejected = 0

    def run(self, commands: Sequence[FlowCommand]) -> None:
        for op, oid, side, price, qty in commands:
            if op == CANCEL:
                got = self.live.pop(oid, None)
                if got is None:
                    self.rejected += 1
                else:
                    got[2][1] = 0
                continue
            if oid in self.seen:
                self.rejected += 1
                continue
            self.seen.add(oid)
            limit = price if op == LIMIT else (1 << 62) if side == BUY else 0
            left = self.match(oid, side, limit, qty)
            if left and op == LIMIT:
                entry = [oid, left]
                levels = self.levels[side]
                q = levels.get(price)
                if q is None:
                    q = levels[price] = deque()
                    heapq.heappush(self.heaps[side], -price if side == BUY else price)
                q.append(entry)
                self.live[oid] = (side, price, entry)

    def match(self, oid: int, side: int, limit: int, qty: int) -> int:
        other = SELL if side == BUY else BUY
        heap = self.heaps[other]
        levels = self.levels[other]
        tape = self.tape
        while qty and heap:
            price = -heap[0] if other == BUY else heap[0]
            if (side == BUY and price > limit) or (side == SELL and price < limit):
                break
            q = levels[price]
            while q and qty:
                entry = q[0]
                have = entry[1]
                if have == 0:
                    q.popleft()
                    continue
                fill = have if have < qty else qty
                entry[1] = have - fill
                qty -= fill
                tape.append((oid, entry[0], price, fill))
                if entry[1] == 0:
                    q.popleft()
                    del self.live[entry[0]]
            if not q:
                heapq.heappop(heap)
                del levels[price]
        return qty

    def resting(self, side: int) -> int:
        return sum(e[1] for q in self.levels[side].values() for e in q)


# -- timing --------------------------------------------------------------------------


def time_book(commands: Sequence[FlowCommand]) -> tuple[float, list[Fill], Book]:
    book = Book()
    started = time.perf_counter()
    fills, _ = match_flow(commands, book)
    return time.perf_counter() - started, fills, book


def time_baseline(commands: Sequence[FlowCommand]) -> tuple[float, HeapBook]:
    book = HeapBook()
    started = time.perf_counter()
    book.run(commands)
    return time.perf_counter() - started, book


def per_op_latency_ns(commands: Sequence[FlowCommand]) -> list[int]:
    """Each command alone, timed with ``perf_counter_ns`` around the same calls
    ``match_flow`` makes (the timer's own cost, ~50-80 ns, is included)."""
    book = Book()
    fills: list[Fill] = []
    stranded: list[tuple[Order, int]] = []
    seen: set[int] = set()
    clock = time.perf_counter_ns
    out = [0] * len(commands)
    for i, (op, oid, side, price, qty) in enumerate(commands):
        t0 = clock()
        if op == CANCEL:
            book.cancel(oid)
        elif oid not in seen:
            seen.add(oid)
            if op == LIMIT:
                book.place(Order(oid, side, price, qty), fills)
            else:
                bound = (1 << 62) if side == BUY else 0
                book.submit(Order(oid, side, bound, qty), fills, stranded)
        out[i] = clock() - t0
        if len(fills) > 4096:
            fills.clear()
    return out


def replay_cli(commands: Sequence[FlowCommand]) -> dict[str, Any]:
    """``auction replay`` itself, as a user runs it, on the same flow."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flow.csv"
        with path.open("w") as f:
            f.writelines(format_flow(commands))
        done = subprocess.run(
            [sys.executable, "-m", "auction", "replay", str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def percentile(sorted_values: Sequence[int], q: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    commands = generate_flow(args.orders, args.seed)
    ours: list[float] = []
    base: list[float] = []
    tape_ok = True
    fills: list[Fill] = []
    for _ in range(args.rounds):
        gc.collect()
        t, fills, book = time_book(commands)
        ours.append(t)
        gc.collect()
        tb, heap_book = time_baseline(commands)
        base.append(tb)
        ours_tape = [(a.id, b.id, p, q) for a, b, p, q in fills]
        tape_ok = tape_ok and ours_tape == heap_book.tape
        tape_ok = tape_ok and book.resting_qty(BUY) == heap_book.resting(BUY)
        tape_ok = tape_ok and book.resting_qty(SELL) == heap_book.resting(SELL)
    # the same pair with the cyclic GC off: the code paths alone, without the
    # baseline paying for its GC-tracked [id, qty] lists
    ours_nogc: list[float] = []
    base_nogc: list[float] = []
    for _ in range(max(1, args.rounds // 2)):
        gc.collect()
        gc.disable()
        try:
            ours_nogc.append(time_book(commands)[0])
            base_nogc.append(time_baseline(commands)[0])
        finally:
            gc.enable()
    cli = replay_cli(commands)
    gc.collect()
    lat = sorted(per_op_latency_ns(commands))
    n = len(commands)
    best_ours, best_base = min(ours), min(base)
    takers = len({taker.id for taker, _, _, _ in fills})
    report = {
        "flow": {
            "events": n,
            "seed": args.seed,
            "crossing_share": round(takers / n, 3),
            "trades": len(fills),
            "tape_sha256": tape_sha256(fills),
        },
        "book_events_per_s": round(n / best_ours),
        "baseline_events_per_s": round(n / best_base),
        "ratio_vs_baseline": round(best_base / best_ours, 3),
        "median_ratio": round(statistics.median(base) / statistics.median(ours), 3),
        "gc_off": {
            "book_events_per_s": round(n / min(ours_nogc)),
            "baseline_events_per_s": round(n / min(base_nogc)),
            "ratio_vs_baseline": round(min(base_nogc) / min(ours_nogc), 3),
        },
        "auction_replay_cli": {
            "events_per_s": cli["events_per_s"],
            "ratio_vs_baseline": round(cli["events_per_s"] / (n / best_base), 3),
            "trades": cli["trades"],
            "same_tape": cli["tape_sha256"] == tape_sha256(fills),
        },
        "same_tape_as_baseline": tape_ok,
        "latency_ns": {
            "p50": percentile(lat, 0.50),
            "p90": percentile(lat, 0.90),
            "p99": percentile(lat, 0.99),
            "p99.9": percentile(lat, 0.999),
            "max": lat[-1],
        },
        "rounds": args.rounds,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    print(json.dumps(report, indent=2))
    if not tape_ok:
        raise SystemExit("the book and the baseline disagree on the tape")


if __name__ == "__main__":
    main()
