"""Benchmark of the durable path: ``python -m loadtests.bench_journal [--db sqlite|postgres]``.

1. **Acknowledged commands/s** through runner + journal with group commit: many
   concurrent in-process callers submit standing bids, one-click sales and cancels, each
   with its own idempotency key; a command counts once its caller has the answer, which
   it gets only after its batch is committed (SQLite: WAL + synchronous=FULL).
2. **Restart time** for a journal of ``--restart-rows`` commands: rebuilding the engine
   from the journal alone, and from a snapshot taken 100,000 commands before the end plus
   the rest.  The journal is filled by applying a seeded stream to an engine and writing
   the commands that changed it (what the runner would have journaled), in bulk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import insert

from auction import snapshot
from auction.clock import LiveClock
from auction.codec import encode_command
from auction.db import JournalRow, make_engine, table_of
from auction.engine import Engine
from auction.journal import Journal, from_us, to_us
from auction.messages import AnyCommand, CancelBid, PlaceBid, Rejected, SellLot, SetBuyingPower
from auction.migrate import upgrade
from auction.runner import Runner
from auction.types import MarketId, OrderId, OrgId, PrincipalId

MARKETS = [MarketId(f"ebike:33052{i}") for i in range(1, 4)]


def workload(rng: random.Random, bids: list[int]) -> AnyCommand:
    r = rng.random()
    if r < 0.45:
        who = f"r{rng.randrange(50)}"
        return PlaceBid(
            bid_id=OrderId(0), market=rng.choice(MARKETS), owner=PrincipalId(who),
            org=OrgId(who.upper()), price_fen_per_t=990_000 + 1_000 * rng.randint(0, 30),
            qty_kg=rng.choice((500, 1000, 3000)),
        )  # fmt: skip
    if r < 0.85 or not bids:
        who = f"s{rng.randrange(500)}"
        return SellLot(
            lot_id=OrderId(0), market=rng.choice(MARKETS), owner=PrincipalId(who),
            org=OrgId(who.upper()), weight_kg=rng.choice((100, 200, 400)),
            floor_price_fen_per_t=985_000 + 1_000 * rng.randint(0, 20), if_unsold="rest",
        )  # fmt: skip
    bid = bids.pop(rng.randrange(len(bids)))
    return CancelBid(bid_id=OrderId(bid), owner=PrincipalId(f"r{bid % 50}"))


async def throughput(url: str, commands: int, callers: int, max_batch: int) -> dict[str, Any]:
    db = make_engine(url)
    await upgrade(db)
    runner = await Runner.open(Journal(db), LiveClock(), max_batch=max_batch, max_queue=callers * 2)
    writer = asyncio.create_task(runner.run())
    for i in range(50):
        await runner.submit(SetBuyingPower(bidder=PrincipalId(f"r{i}"), limit_fen=10**13))
    rng = random.Random(3)
    bids: list[int] = []
    done = 0
    latencies: list[float] = []

    async def caller() -> None:
        nonlocal done
        while done < commands:
            done += 1
            cmd = workload(rng, bids)
            t0 = time.perf_counter()
            answer = await runner.submit(cmd, principal="bench", key=uuid.uuid4().hex)
            latencies.append(time.perf_counter() - t0)
            for ev in answer.events:
                bid_id = getattr(ev, "bid_id", None)
                if type(ev).__name__ == "BidPlaced" and bid_id is not None:
                    bids.append(bid_id)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    seconds = time.perf_counter() - started
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    journaled = runner._seq
    await db.dispose()
    latencies.sort()
    return {
        "acknowledged": done,
        "journaled": journaled,
        "seconds": round(seconds, 2),
        "acknowledged_per_s": round(done / seconds),
        "callers": callers,
        "latency_ms": {
            "p50": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        },
    }


async def restart(url: str, rows: int, snap: Path) -> dict[str, Any]:
    db = make_engine(url)
    await upgrade(db)
    rng = random.Random(9)
    engine = Engine()
    now_us = to_us(LiveClock().now())
    bids: list[int] = []
    batch: list[dict[str, Any]] = []
    seq = 0
    for i in range(50):
        fund = SetBuyingPower(bidder=PrincipalId(f"r{i}"), limit_fen=10**13)
        engine.apply(fund, from_us(now_us))
        seq += 1
        batch.append({"seq": seq, "at_us": now_us, "principal": None, "idem_key": None,
                      "command": encode_command(fund).decode()})  # fmt: skip
    table = table_of(JournalRow)
    t_gen = time.perf_counter()
    while seq < rows:
        now_us += 1_000
        cmd = workload(rng, bids)
        field = {PlaceBid: "bid_id", SellLot: "lot_id"}.get(type(cmd))
        if field:
            cmd = msgspec.structs.replace(cmd, **{field: engine._last_order_id + 1})
        events = engine.apply(cmd, from_us(now_us))
        if not events or (len(events) == 1 and isinstance(events[0], Rejected)):
            continue
        if isinstance(cmd, PlaceBid):
            bids.append(cmd.bid_id)
        seq += 1
        batch.append({"seq": seq, "at_us": now_us, "principal": None, "idem_key": None,
                      "command": encode_command(cmd).decode()})  # fmt: skip
        if seq == rows - 100_000:
            snapshot.write(snap, engine, seq)
        if len(batch) >= 20_000:
            async with db.begin() as conn:
                await conn.execute(insert(table), batch)
            batch.clear()
    if batch:
        async with db.begin() as conn:
            await conn.execute(insert(table), batch)
    generated = time.perf_counter() - t_gen
    live_hash = engine.state_hash()
    del engine
    out: dict[str, Any] = {"rows": rows, "fill_seconds": round(generated, 1)}
    for label, path in (("journal_alone", None), ("snapshot_plus_rest", snap)):
        t0 = time.perf_counter()
        runner = Runner(Engine(), LiveClock(), Journal(db), snapshot_path=path)
        await runner.recover()
        out[label + "_seconds"] = round(time.perf_counter() - t0, 2)
        assert runner.engine.state_hash() == live_hash, label
        del runner
    await db.dispose()
    return out


async def pg_database() -> tuple[str, str]:
    name = f"auction_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def pg_drop(name: str) -> None:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"db": args.db, "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        for part in ("throughput", "restart"):
            if args.db == "sqlite":
                url, name = f"sqlite+aiosqlite:///{tmp}/{part}.db", ""
            else:
                url, name = await pg_database()
            try:
                if part == "throughput":
                    report[part] = await throughput(url, args.commands, args.callers, args.batch)
                elif args.restart_rows:
                    report[part] = await restart(url, args.restart_rows, Path(tmp) / "snap")
            finally:
                if name:
                    await pg_drop(name)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--callers", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--restart-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
