"""List reads: ``python -m loadtests.bench_reads``.

Fills the read tables of a new SQLite database (lots, trades, awards and bids from 400
stores and 60 recyclers over 10 markets), starts ``auction serve`` on it and drives each
list page (``GET /v1/lots``, ``/v1/trades``, ``/v1/awards``, ``/v1/bids``) with C
keep-alive connections for S seconds: pages/s, p50/p99, and the server's CPU per page
(from ``/proc``), which is what a page costs the one process that also matches and
journals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from auction.accounts import Accounts
from auction.db import make_engine
from auction.journal import AWARDS, BIDS, LOTS, TRADES
from auction.migrate import upgrade
from loadtests.bench_feeds import proc_cpu_s
from loadtests.bench_http import Tally, drive, request_maker, wait_up
from tests.integration.crash import free_port

MARKETS = [f"{c}:{r}" for c in ("ebike", "auto_black") for r in
           ("330522", "330502", "330523", "320582", "440106")]  # fmt: skip
PAGES = {
    "regulator lots": ("regulator-0", "/v1/lots"),
    "regulator trades": ("regulator-0", "/v1/trades"),
    "regulator awards": ("regulator-0", "/v1/awards"),
    "store lots": ("store-1", "/v1/lots"),
    "recycler lots in auction": ("recycler-1", "/v1/lots?state=in_auction"),
    "recycler bids": ("recycler-1", "/v1/bids"),
    "recycler trades": ("recycler-1", "/v1/trades"),
}


async def fill(url: str, rows: int) -> dict[str, str]:
    db = make_engine(url)
    await upgrade(db)
    accounts = Accounts(db)
    now = datetime.now(UTC)
    tokens = {}
    who = [("regulator-0", "regulator", ("3305",)), ("store-1", "store", ()),
           ("recycler-1", "recycler", ())]  # fmt: skip
    for pid, role, regions in who:
        await accounts.create_principal(pid, pid.upper(), role, now, regions=regions)
        tokens[pid] = await accounts.issue_token(pid, now)
    rng = random.Random(9)
    stores = [f"store-{i}" for i in range(400)]
    recyclers = [f"recycler-{i}" for i in range(60)]
    states = ["awarded"] * 8 + ["open", "in_auction", "cancelled"]
    us = 1_795_000_000_000_000
    lots = [{"lot_id": i, "market": rng.choice(MARKETS), "owner": rng.choice(stores),
             "org": "S", "weight_kg": rng.randint(100, 5000), "kind": "one_click",
             "state": rng.choice(states), "updated_seq": i}
            for i in range(1, rows + 1)]  # fmt: skip
    trades = [{"trade_id": i, "seq": i, "at_us": us + i, "market": rng.choice(MARKETS),
               "bid_id": i, "lot_id": i, "buyer": rng.choice(recyclers),
               "seller": rng.choice(stores), "price_fen_per_t": 1_000_000,
               "weight_kg": 700, "amount_fen": 70_000} for i in range(1, rows + 1)]  # fmt: skip
    awards = [{"lot_id": i, "seq": i, "at_us": us + i, "market": rng.choice(MARKETS),
               "buyer": rng.choice(recyclers), "seller": rng.choice(stores),
               "price_fen_per_t": 1_000_000, "weight_kg": 700, "amount_fen": 70_000,
               "deposit_fen": 7_000, "via": "auction"} for i in range(1, rows // 10)]  # fmt: skip
    bids = [{"bid_id": i, "market": rng.choice(MARKETS), "owner": rng.choice(recyclers),
             "org": "R", "price_fen_per_t": 1_000_000, "open_kg": 0, "min_lot_kg": 0,
             "state": "filled", "updated_seq": i} for i in range(1, rows + 1)]  # fmt: skip
    async with db.begin() as conn:
        for table, values in ((LOTS, lots), (TRADES, trades), (AWARDS, awards), (BIDS, bids)):
            await conn.execute(insert(table), values)
    await db.dispose()
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5, help="per page")
    parser.add_argument("--rows", type=int, default=50_000, help="lots, trades and bids each")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'r.db'}"
    tokens = asyncio.run(fill(url, args.rows))
    env = dict(os.environ, AUCTION_DATABASE_URL=url, AUCTION_SNAPSHOT_PATH=str(tmp / "snap"),
               AUCTION_RATE_PER_PRINCIPAL="1000000")  # fmt: skip
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "auction", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    report: dict[str, Any] = {"connections": args.connections, "rows": args.rows}
    try:
        wait_up(port, "/healthz")
        for name, (who, path) in PAGES.items():
            auth = {"Authorization": f"Bearer {tokens[who]}"}
            makers = [request_maker("GET", path, None, auth, False)] * args.connections
            tally = Tally()
            before = proc_cpu_s(serve.pid)
            asyncio.run(drive(port, makers, args.seconds, tally))
            used = proc_cpu_s(serve.pid) - before
            report[name] = tally.summary() | {
                "server_cpu_us_per_page": round(used / max(1, len(tally.lat)) * 1e6)
            }
    finally:
        serve.terminate()
        serve.wait(30)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
