"""Quote boards in bulk for the load runs: ``python -m loadtests.boards``.

N websocket connections (the same hand-made client as ``bench_feeds``, cheap enough that
a thousand fit beside the service and locust on two cores), each on ``board`` and one
market's ``trades:`` channel.  For every trade a screen receives, the latency from the
engine's time of the trade to its arrival is kept; at the end (after ``--seconds``, or
on SIGTERM) one JSON line: screens, frames, trades seen, latency p50/p95/p99/max (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from datetime import datetime
from typing import Any

import msgspec
import uvloop

from loadtests.bench_feeds import AUTH, Screen, Tally, open_screens

_decode = msgspec.json.decode


class Board(Screen):
    def frame(self, payload: bytes, now: float) -> None:
        tally = self.tally
        tally.frames += 1
        if not payload.startswith(b'{"channel":"trades:') or b'"update"' not in payload[:90]:
            return
        wall = time.time()
        for trade in _decode(payload)["data"]["trades"]:
            at = datetime.fromisoformat(trade["at"]).timestamp()
            tally.latencies.append(wall - at)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def swarm(port: int, count: int, markets: list[str], seconds: float) -> dict[str, Any]:
    tally = Tally()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    screens: list[Screen] = []
    per_market: dict[str, list[int]] = {m: [] for m in markets}
    for i in range(count):
        per_market[markets[i % len(markets)]].append(i)
    for market, ids in per_market.items():
        first = b"\n".join(
            json.dumps({"op": "subscribe", "channel": ch}).encode()
            for ch in ("board", f"trades:{market}")
        )
        screens += await open_screens(port, len(ids), tally, first, bare=False, kind=Board)
    opened = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    lat = [x * 1000 for x in tally.latencies]
    closed = sum(1 for s in screens if s.transport is None or s.transport.is_closing())
    for s in screens:
        if s.transport is not None:
            s.transport.close()
    return {
        "screens": len(screens),
        "closed_early": closed,
        "seconds": round(time.monotonic() - opened, 1),
        "frames": tally.frames,
        "trades_seen": len(lat),
        "p50_ms": round(percentile(lat, 0.50), 1),
        "p95_ms": round(percentile(lat, 0.95), 1),
        "p99_ms": round(percentile(lat, 0.99), 1),
        "max_ms": round(max(lat), 1) if lat else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--token", required=True)
    parser.add_argument("--markets", required=True, help="comma-separated")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    AUTH["header"] = f"Authorization: Bearer {args.token}\r\n"
    result = uvloop.run(swarm(args.port, args.count, args.markets.split(","), args.seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
