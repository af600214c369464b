"""Benchmark of auction traffic through the engine: ``python -m loadtests.bench_auctions``.

Many lots open at once across markets, proxy bidding wars between funded recyclers
(mostly the minimum next bid, some jumps, some equal maximums), a share of bids in the
soft-close window so that closes extend, and the clock moving so that auctions close
and awards happen.  Commands are generated from the engine's own state between calls;
only ``engine.apply`` is timed.  Prints commands/s and per-command latency percentiles
by command type.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from auction.engine import Engine
from auction.messages import (
    AnyCommand,
    AuctionBid,
    AuctionExtended,
    Awarded,
    ExpireDue,
    Rejected,
    SetBuyingPower,
    StartAuction,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId

REGIONS = ["330522", "330521", "330523", "330502", "330503"]
CATEGORIES = ["ebike", "auto_white", "auto_black"]


def percentile(values: list[int], q: float) -> int:
    return values[min(len(values) - 1, int(q * len(values)))]


def bidding_war(n: int) -> dict[str, float]:
    """Two recyclers outbid each other on one lot, each bid at the minimum next bid, so
    every bid changes the leader: the auction's most expensive common path."""
    engine = Engine()
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    for b in ("ra", "rb"):
        engine.apply(SetBuyingPower(bidder=PrincipalId(b), limit_fen=10**12), now)
    engine.apply(
        StartAuction(
            lot_id=OrderId(1), market=MarketId("ebike:330522"), owner=PrincipalId("s"),
            org=OrgId("S"), weight_kg=1000, start_price_fen_per_t=500_000, duration_s=604_800,
        ),
        now,
    )  # fmt: skip
    auction = engine._auctions[OrderId(1)]
    out = []
    clock = time.perf_counter_ns
    for i in range(n):
        who = "ra" if i % 2 == 0 else "rb"
        cmd = AuctionBid(
            lot_id=OrderId(1), bidder=PrincipalId(who), org=OrgId(who.upper()),
            max_price_fen_per_t=auction.min_next_bid(),
        )  # fmt: skip
        t0 = clock()
        engine.apply(cmd, now)
        out.append(clock() - t0)
    out.sort()
    return {
        "bids": n,
        "mean": round(sum(out) / n / 1000, 2),
        "p50": round(percentile(out, 0.5) / 1000, 2),
        "p99": round(percentile(out, 0.99) / 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=100_000, help="auctions opened at most")
    parser.add_argument("--open", type=int, default=1_000, help="auctions open at once")
    parser.add_argument("--bidders", type=int, default=500)
    parser.add_argument("--bids", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    engine = Engine()
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    timings: dict[str, list[int]] = defaultdict(list)
    outcomes: Counter[str] = Counter()
    clock = time.perf_counter_ns

    def apply(cmd: AnyCommand) -> None:
        t0 = clock()
        events = engine.apply(cmd, now)
        timings[type(cmd).__name__].append(clock() - t0)
        for ev in events:
            if isinstance(ev, Rejected):
                outcomes["refused:" + ev.code] += 1
            elif isinstance(ev, AuctionExtended | Awarded):
                outcomes[type(ev).__name__] += 1

    bidders = [f"r{i}" for i in range(args.bidders)]
    for b in bidders:
        apply(SetBuyingPower(bidder=PrincipalId(b), limit_fen=10**10))
    next_id = 0
    live: list[int] = []
    opened = 0
    bids = 0
    gc.collect()
    started = time.perf_counter()
    while bids < args.bids:
        while len(live) < args.open and opened < args.lots:
            next_id += 1
            opened += 1
            market = MarketId(f"{rng.choice(CATEGORIES)}:{rng.choice(REGIONS)}")
            apply(
                StartAuction(
                    lot_id=OrderId(next_id), market=market, owner=PrincipalId(f"s{next_id}"),
                    org=OrgId(f"S{next_id}"), weight_kg=rng.choice((200, 500, 1000, 2000)),
                    start_price_fen_per_t=950_000 + 1_000 * rng.randint(0, 60),
                    duration_s=rng.choice((600, 1200, 1800)),
                    reserve_fen_per_t=1_000_000 if rng.random() < 0.3 else None,
                )
            )  # fmt: skip
            live.append(next_id)
        if not live:
            break
        now += timedelta(milliseconds=rng.randint(0, 60))
        lot_id = rng.choice(live)
        auction = engine._auctions[OrderId(lot_id)]
        lot = engine._lots[OrderId(lot_id)]
        if lot.state != "in_auction":
            live.remove(lot_id)
            continue
        least = auction.min_next_bid()
        r = rng.random()
        if r < 0.6:
            price = least
        elif r < 0.9:
            price = least + 1_000 * rng.randint(1, 30)
        else:
            leader = auction.leader
            price = leader.max_price if leader else least
        bidder = rng.choice(bidders)
        apply(
            AuctionBid(
                lot_id=OrderId(lot_id), bidder=PrincipalId(bidder), org=OrgId(bidder.upper()),
                max_price_fen_per_t=price,
            )
        )  # fmt: skip
        bids += 1
        if bids % 1000 == 0:
            apply(ExpireDue())
    wall = time.perf_counter() - started
    war = bidding_war(50_000)
    total_ns = sum(sum(v) for v in timings.values())
    commands = sum(len(v) for v in timings.values())
    report = {
        "commands": commands,
        "engine_commands_per_s": round(commands / (total_ns / 1e9)),
        "wall_seconds_with_generation": round(wall, 2),
        "lots_opened": opened,
        "outcomes": dict(sorted(outcomes.items())),
        "latency_us": {
            name: {
                "n": len(v),
                "p50": round(percentile(sorted(v), 0.50) / 1000, 2),
                "p99": round(percentile(sorted(v), 0.99) / 1000, 2),
                "p99.9": round(percentile(sorted(v), 0.999) / 1000, 2),
            }
            for name, v in sorted(timings.items())
        },
        "one_lot_bidding_war_us": war,
        "python": platform.python_version(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
