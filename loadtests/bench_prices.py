"""Price-state benchmark: ``python -m loadtests.bench_prices [--prints N] [--redis URL]``.

For each backend (in-process, and Redis at ``--redis``, the tests' own database number,
flushed): trade-statistics updates per second (prints applied in batches of 50, as the
runner commits them, across 200 markets and 3 buyers each), then reads per second of the
all-markets snapshot (everything a quote board shows: 200 markets, their quotes, the
settlements, turned into the board).  ``redis-benchmark``'s own figures from the same
run (SET, HSET and an EVALSHA-free pipeline-less GET, 50 clients) say what the server
itself does here, for the ratio.  Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import time
from typing import Any
from urllib.parse import urlparse

from auction.prices import POS_SHIFT, MemoryPrices, PriceStore, Print, Quote, board
from auction.prices_redis import RedisPrices

DAY = "2026-11-27"
MARKETS = [f"ebike:{330500 + i:06d}" for i in range(200)]


def workload(n: int) -> tuple[list[list[Print]], list[Quote]]:
    rng = random.Random(1)
    prints = [
        Print(
            seq * POS_SHIFT,
            DAY,
            rng.choice(MARKETS),
            rng.randrange(950_000, 1_050_000, 500),
            rng.randrange(50, 2_000),
            f"r{rng.randrange(3)}",
        )
        for seq in range(1, n + 1)
    ]
    batches = [prints[i : i + 50] for i in range(0, n, 50)]
    quotes = [
        Quote(i + 1, "daily", m, "platform", 1_000_000, False, DAY) for i, m in enumerate(MARKETS)
    ]
    return batches, quotes


async def measure(store: PriceStore, batches: list[list[Print]], quotes: list[Quote],
                  reads: int) -> dict[str, Any]:  # fmt: skip
    await store.clear()
    await store.start_day(DAY, create=True)
    await store.add_quotes(quotes)
    n = sum(len(b) for b in batches)
    t0 = time.perf_counter()
    for batch in batches:
        await store.add_prints(batch)
    updates = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(reads):
        view = board(await store.read(), stale=False)
    took = time.perf_counter() - t0
    assert len(view.markets) == len(MARKETS)
    return {
        "updates_per_s": round(n / updates),
        "board_reads_per_s": round(reads / took),
        "board_read_ms": round(took / reads * 1000, 3),
    }


def redis_benchmark(url: str) -> dict[str, float] | str:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return "redis-benchmark not installed"
    u = urlparse(url)
    done = subprocess.run(
        [binary, "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 6379),
         "--dbnum", (u.path or "/0").lstrip("/") or "0", "-q", "-n", "100000", "-c", "50",
         "-t", "set,get,hset"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    out: dict[str, float] = {}
    for line in done.stdout.replace("\r", "\n").splitlines():
        if "requests per second" in line:
            name, _, rest = line.partition(":")
            out[name.strip()] = float(rest.split()[0])
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    batches, quotes = workload(args.prints)
    report: dict[str, Any] = {"prints": args.prints, "markets": len(MARKETS), "batch": 50}
    report["memory"] = await measure(MemoryPrices(), batches, quotes, args.reads)
    store = RedisPrices(args.redis, prefix="bench:px")
    try:
        report["redis"] = await measure(store, batches, quotes, args.reads)
        await store.clear()
    finally:
        await store.close()
    report["redis_benchmark"] = redis_benchmark(args.redis)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prints", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=2_000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
