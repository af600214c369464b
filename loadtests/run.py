"""The headless load run, and the soak: ``python -m loadtests.run``.

    python -m loadtests.run                       # the peak mix on SQLite, 1,000 boards
    python -m loadtests.run --backend postgres    # PostgreSQL journal + Redis prices/feed
    python -m loadtests.run --soak --duration 600 # the soak, with its end-state checks

Steps: a fresh journal (a temporary SQLite file, or a new PostgreSQL database and a
flushed Redis database) with the parties' accounts; ``auction serve`` on a free port;
prices and buying power set through the API; quote boards connected (``--boards``: a few
inside locust, measured into its statistics, the rest from ``loadtests.boards``); locust
headless for ``--duration`` seconds with CSV output; the server's CPU, memory and open
files sampled every second; then the raw asyncio client drives the bid path alone to
find the server's own ceiling (``--ceiling-seconds``; locust itself tops out well below
it on this machine).  The soak adds, after the load: the journal, the read tables, the
engine's ``state_hash()`` replayed from the journal, the prices (Redis or in-process)
rebuilt from SQL, and the audit chain must all agree, and memory and open files must be
flat.  Everything goes to ``--out`` (``report.md`` and the raw files).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import func, select, text

from auction.accounts import Accounts
from auction.book import BUY
from auction.clock import LiveClock
from auction.codec import decode_command
from auction.db import begin_snapshot, make_engine
from auction.engine import Engine
from auction.journal import AWARDS, BIDS, LOTS, TRADES, Journal, from_us
from auction.messages import Awarded, Traded
from auction.migrate import upgrade
from auction.prices import MemoryPrices
from auction.pricing import PriceService
from loadtests.bench_feeds import proc_cpu_s, proc_rss_kib
from loadtests.bench_http import Tally, drive, request_maker
from tests.integration.crash import free_port
from tests.integration.server import wait_healthy

ROOT = Path(__file__).resolve().parents[1]
MARKETS = {  # market: daily quote, fen per tonne
    "ebike:330522": 1_010_000, "ebike:330502": 1_005_000, "ebike:330523": 1_008_000,
    "ebike:330521": 1_006_000, "ebike:330503": 1_004_000, "ebike:320582": 1_012_000,
    "auto_black:330523": 1_030_000, "auto_black:330522": 1_028_000,
    "auto_white:330522": 1_000_000, "auto_white:320582": 1_002_000,
}  # fmt: skip
END_OF_CHAIN = {"ebike": 1_012_500, "auto_white": 1_002_500, "auto_black": 1_032_500,
                "lead": 1_650_000}  # fmt: skip
REDIS_DB = 11  # the load runs' own Redis database (the tests use 9)


# -- setting up ---------------------------------------------------------------------------


def people(stores: int, recyclers: int) -> list[tuple[str, str, str, tuple[str, ...]]]:
    out: list[tuple[str, str, str, tuple[str, ...]]] = []
    out += [(f"store-{i}", f"STORE-{i}", "store", ()) for i in range(stores)]
    out += [(f"recycler-{i}", f"REC-{i}", "recycler", ()) for i in range(recyclers)]
    out += [(f"regulator-{i}", f"EPB-{i}", "regulator", (r,))
            for i, r in enumerate(["3305", "3205", "33"])]  # fmt: skip
    out += [("admin", "PLATFORM", "admin", ()), ("prices", "PLATFORM", "service", ()),
            ("boards", "BOARDS", "service", ())]  # fmt: skip
    return out


async def make_accounts(
    url: str, who: list[tuple[str, str, str, tuple[str, ...]]]
) -> dict[str, str]:
    db = make_engine(url)
    try:
        await upgrade(db)
        accounts = Accounts(db)
        now = datetime.now(UTC)
        tokens = {}
        for pid, org, role, regions in who:
            await accounts.create_principal(pid, org, role, now, regions=regions)
            tokens[pid] = await accounts.issue_token(pid, now)
        return tokens
    finally:
        await db.dispose()


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", sql],
                   check=True, capture_output=True)  # fmt: skip


def fresh_backend(backend: str, tmp: Path, redis_db: int) -> dict[str, str]:
    """A new SQLite file; or a new PostgreSQL database (dropped at the end) and a flushed
    Redis database of the run's own."""
    if backend == "sqlite":
        return {"AUCTION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'load.db'}"}
    name = f"load_{os.getpid()}_{int(time.time())}"
    psql(f"create database {name}")
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", str(redis_db), "flushdb"],
                   check=True, capture_output=True)  # fmt: skip
    return {
        "AUCTION_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
        "AUCTION_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "PG_DATABASE": name,
    }


class Api:
    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base, self.tokens, self.n = base, tokens, 0

    def call(self, method: str, path: str, who: str, body: Any = None) -> Any:
        self.n += 1
        headers = {
            "Authorization": f"Bearer {self.tokens[who]}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"setup-{self.n}",
        }
        data = json.dumps(body).encode() if method == "POST" else None
        req = urllib.request.Request(self.base + path, data, headers, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())


def seed(api: Api, recyclers: int) -> None:
    for market, price in MARKETS.items():
        api.call("POST", "/v1/prices", "prices",
                 {"kind": "daily", "key": market, "price_fen_per_t": price})  # fmt: skip
    for key, price in END_OF_CHAIN.items():
        api.call("POST", "/v1/prices", "prices", {"kind": "end_of_chain", "key": key,
                 "price_fen_per_t": price, "vat_included": True})  # fmt: skip
    for i in range(recyclers):
        api.call("POST", "/v1/admin/buying-power", "admin",
                 {"bidder": f"recycler-{i}", "limit_fen": 100_000_000_000})  # fmt: skip


# -- watching the server -------------------------------------------------------------------


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8]) / os.sysconf("SC_CLK_TCK")
    return total - idle / os.sysconf("SC_CLK_TCK"), total


class Sampler(threading.Thread):
    """The server's CPU (share of one core), RSS (KiB) and open files once a second, at
    ``time.monotonic()`` times; the whole machine's busy cores (``machine``); and the CPU
    of the other processes of the run (``watch``: locust, the boards, a feeds process),
    which share the machine's cores with the server."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.rows: list[tuple[float, float, int, int]] = []
        self.machine: list[tuple[float, float]] = []
        self.others: dict[str, list[tuple[float, float]]] = {}  # name -> (time, cores)
        self._watched: dict[str, tuple[int, float, float]] = {}  # name -> (pid, t, cpu s)
        self.done = threading.Event()

    def watch(self, name: str, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            self._watched[name] = (pid, time.monotonic(), proc_cpu_s(pid))
        self.others.setdefault(name, [])

    def _sample_others(self) -> None:
        for name, (pid, t, cpu) in list(self._watched.items()):
            try:
                now, used = time.monotonic(), proc_cpu_s(pid)
            except (FileNotFoundError, ProcessLookupError):
                del self._watched[name]
                continue
            self.others[name].append((now, (used - cpu) / max(1e-9, now - t)))
            self._watched[name] = (pid, now, used)

    def run(self) -> None:
        last_t, last_cpu = time.monotonic(), proc_cpu_s(self.pid)
        last_busy, last_total = machine_busy()
        while not self.done.wait(1.0):
            try:
                now, cpu = time.monotonic(), proc_cpu_s(self.pid)
                fds = len(os.listdir(f"/proc/{self.pid}/fd"))
                rss = proc_rss_kib(self.pid)
            except (FileNotFoundError, ProcessLookupError):
                return
            busy, total = machine_busy()
            cores = (os.cpu_count() or 1) * (busy - last_busy) / max(1e-9, total - last_total)
            self.machine.append((now, cores))
            self.rows.append((now, (cpu - last_cpu) / (now - last_t), rss, fds))
            last_t, last_cpu, last_busy, last_total = now, cpu, busy, total
            self._sample_others()

    def window(self, start: float, end: float) -> list[tuple[float, float, int, int]]:
        return [r for r in self.rows if start <= r[0] <= end]


def slope_per_min(rows: list[tuple[float, float, int, int]], col: int) -> float:
    if len(rows) < 3:
        return 0.0
    return (
        statistics.linear_regression([r[0] for r in rows], [float(r[col]) for r in rows]).slope * 60
    )


def minute_median(rows: list[tuple[float, float, int, int]], col: int, *, first: bool) -> float:
    """The median of column ``col`` over the first (or last) 60 s of ``rows``."""
    if not rows:
        return 0.0
    edge = rows[0][0] + 60 if first else rows[-1][0] - 60
    inside = [r[col] for r in rows if (r[0] <= edge if first else r[0] >= edge)]
    return float(statistics.median(inside))


# -- the end of a soak ---------------------------------------------------------------------


def check(ok: bool, **detail: Any) -> dict[str, Any]:
    return {"ok": bool(ok), **detail}


async def replay(journal: Journal, engine: Engine, after: int, upto: int) -> list[Any]:
    """Apply journal rows ``after < seq <= upto`` to ``engine``; their events."""
    events: list[Any] = []
    async for chunk in journal.rows(after):
        for seq, at_us, command in chunk:
            if seq > upto:
                return events
            events += engine.apply(decode_command(command), from_us(at_us))
    return events


async def prices_agree(api: Api, db: Any, settlement: Any) -> tuple[bool, int]:
    """The prices served (Redis, or the process's own) against a rebuild from the
    journal's tables, read between two equal readings of what is served (auction closes
    go on after the load, and the price service applies commits a moment after them)."""
    for attempt in range(1, 61):
        before = comparable(api.call("GET", "/v1/prices", "admin"))
        rebuilt = PriceService(MemoryPrices(), db, LiveClock(), settlement)
        await rebuilt.rebuild()
        from_sql = comparable(msgspec.to_builtins(await rebuilt.board()))
        after = comparable(api.call("GET", "/v1/prices", "admin"))
        if before == after == from_sql:
            return True, attempt
        await asyncio.sleep(0.2)
    return False, 60


def comparable(board: dict[str, Any]) -> dict[str, Any]:
    def keyed(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        return {i[key]: i for i in items}

    quotes = {(q["kind"], q["key"], q["publisher"]): q["price_fen_per_t"] for q in board["quotes"]}
    return {"day": board["day"], "markets": keyed(board["markets"], "market"),
            "quotes": quotes, "settlements": board["settlements"],
            "indices": keyed(board["indices"], "category")}  # fmt: skip


async def soak_checks(
    base: str,
    tokens: dict[str, str],
    backend: dict[str, str],
    server: dict[str, Any],
    engine_sizes: dict[str, Any],
) -> dict[str, Any]:
    """Journal, read tables, the engine replayed, the prices and the audit chain agree;
    memory and open files are flat."""
    api = Api(base, tokens)
    out: dict[str, Any] = {}
    db = make_engine(backend["AUCTION_DATABASE_URL"])
    try:
        journal = Journal(db)
        # 1. the live engine at seq S against a replay of the journal's first S rows (the
        #    engine runs a batch ahead of the journal: wait for S to be committed)
        live = api.call("GET", "/v1/admin/state", "admin")
        for _ in range(100):
            if await journal.last_seq() >= live["seq"]:
                break
            await asyncio.sleep(0.1)
        engine = Engine()
        events = await replay(journal, engine, 0, live["seq"])
        out["state_hash"] = check(
            engine.state_hash() == live["state_hash"], seq=live["seq"],
            detail="the live engine equals a replay of the journal up to its seq",
        )  # fmt: skip
        # 2. one consistent read of the database: the journal's end and the read tables,
        #    against the same replay carried on to that end
        async with db.connect() as conn:
            await begin_snapshot(conn)
            seqs = list(
                (await conn.execute(text("select seq from journal order by seq"))).scalars()
            )
            n_trades, sum_trades = (
                await conn.execute(
                    select(func.count(), func.coalesce(func.sum(TRADES.c.amount_fen), 0))
                )
            ).one()
            n_awards = (await conn.execute(select(func.count()).select_from(AWARDS))).scalar()
            lots = {
                r.lot_id: (r.state, r.weight_kg, r.kind)
                for r in (await conn.execute(select(LOTS))).all()
            }
            bids = {
                r.bid_id: (r.price_fen_per_t, r.open_kg)
                for r in (await conn.execute(select(BIDS).where(BIDS.c.state == "open"))).all()
            }
            twice = (
                "select count(*) from (select lot_id from {} group by lot_id having count(*) > 1) x"
            )
            double_awards = (await conn.execute(text(twice.format("awards")))).scalar()
            await conn.rollback()
        end = seqs[-1] if seqs else 0
        events += await replay(journal, engine, live["seq"], end)
        traded = [e for e in events if isinstance(e, Traded)]
        awarded = [e for e in events if isinstance(e, Awarded)]
        out["journal"] = check(seqs == list(range(1, len(seqs) + 1)), rows=len(seqs),
                               detail="gapless, 1..N")  # fmt: skip
        engine_lots = {int(k): (v.state, v.weight_kg, v.kind) for k, v in engine._lots.items()}
        engine_bids = {}
        for market in engine.markets():
            book = engine.book(market)
            assert book is not None
            for order in book.orders(BUY):
                engine_bids[order.id] = (order.price, order.qty)
        out["read_tables"] = check(
            n_trades == len(traded) and sum_trades == sum(t.amount_fen for t in traded)
            and n_awards == len(awarded) and not double_awards
            and lots == engine_lots and bids == engine_bids,
            seq=end, trades=n_trades, awards=n_awards, lots=len(lots), open_bids=len(bids),
            detail="trades, awards, lots and open bids equal the replayed engine's",
        )  # fmt: skip
        # 3. the prices
        agree, attempts = await prices_agree(api, db, engine.catalogue.settlement)
        out["prices"] = check(
            agree, attempts=attempts,
            backend="redis" if "AUCTION_REDIS_URL" in backend else "in-process",
            detail="the prices served equal a rebuild from the journal's tables",
        )  # fmt: skip
        problem = await Journal(db).verify_audit()
        out["audit"] = check(problem is None, detail=str(problem) if problem else "chain intact")
    finally:
        await db.dispose()
    # memory: what the process gained over the steady window, against what the engine
    # must keep (every lot and its deposit hold stay until settlement, a later issue)
    lots = engine_sizes["end"]["lots"] - engine_sizes["start"]["lots"]
    gained_kib = (server["rss_mib_end"] - server["rss_mib_start"]) * 1024
    per_lot = gained_kib / max(1, lots)
    out["memory_flat"] = check(
        gained_kib <= 2.0 * lots + 8 * 1024, rss_gained_mib=round(gained_kib / 1024, 1),
        lots_added=lots, kib_per_lot=round(per_lot, 2),
        detail="RSS growth over the steady window <= 2 KiB per lot the engine keeps + 8 MiB",
    )  # fmt: skip
    # open files: the median of the window's first minute against its last minute's (one
    # sample at each end also counts the pool's spare connections of that second)
    first, last = server["fds_first_minute"], server["fds_last_minute"]
    out["fds_flat"] = check(
        last <= first + 5, fds_first_minute=first, fds_last_minute=last,
        detail="open files steady (median of the last minute within 5 of the first's)",
    )  # fmt: skip
    return out


# -- the report --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": sys.version.split()[0],
            "date": datetime.now(UTC).strftime("%Y-%m-%d")}  # fmt: skip


def locust_numbers(out: Path) -> dict[str, Any]:
    stats = out / "locust_stats.csv"
    rows = list(csv.DictReader(open(stats))) if stats.exists() else []  # noqa: SIM115
    summary = (
        json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    )
    refusals = (
        json.loads((out / "refusals.json").read_text()) if (out / "refusals.json").exists() else {}
    )
    return {"rows": rows, "summary": summary, "refusals": refusals}


def render(result: dict[str, Any]) -> str:
    a = result["args"]
    m = result["machine"]
    loc = result["locust"]
    lines = [
        f"# {'Soak' if a['soak'] else 'Load run'}: {a['backend']}, {a['users']} locust users "
        f"at pace {a['pace']}, {a['boards']} quote boards, {a['duration']} s",
        "",
        f"{m['date']}, {m['cpus']} cores ({m['cpu']}), Python {m['python']}; "
        f"`python -m loadtests.run {'--soak ' if a['soak'] else ''}--backend {a['backend']} "
        f"{'--feeds ' if a.get('feeds') else ''}"
        f"--users {a['users']} --pace {a['pace']} --boards {a['boards']} "
        f"--duration {a['duration']}`",
        "",
    ]
    sm = loc["summary"]
    if sm:
        lines += [
            f"Steady window (after {a['steady_after']} s of ramp): "
            f"**{sm['writes_per_s']:.0f} state-changing requests/s**, "
            f"p50 {sm['writes_p50_ms']} ms, "
            f"p95 {sm['writes_p95_ms']} ms, p99 **{sm['writes_p99_ms']} ms**; "
            f"{sm['reads_per_s']:.0f} reads/s, p99 {sm['reads_p99_ms']} ms; "
            f"failures {sm['failures']}; business refusals {sum(loc['refusals'].values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(loc['refusals'].items()))}).",
            "",
        ]
    lines += ["By request, locust's own statistics over the whole run, the ramp included (the "
              "connections and first requests of hundreds of users starting at once): a type's "
              "p99 here can be far above the steady window's above.", "",
              "| request | count | failures | req/s | p50 ms | p95 ms | p99 ms |",
              "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in loc["rows"]:
        lines.append(
            f"| {r['Type']} {r['Name']} | {r['Request Count']} | {r['Failure Count']} | "
            f"{float(r['Requests/s']):.0f} | {r['50%']} | {r['95%']} | {r['99%']} |"
        )
    b = result.get("boards")
    if b:
        lines += [
            "",
            f"Quote boards (loadtests.boards): {b.get('screens')} connected, "
            f"{b.get('closed_early')} dropped, {b.get('frames')} frames, "
            f"{b.get('trades_seen')} trades seen; trade-to-screen p50 {b.get('p50_ms')} ms, "
            f"p95 {b.get('p95_ms')} ms, p99 {b.get('p99_ms')} ms, max {b.get('max_ms')} ms.",
        ]
    s = result["server"]
    lines += ["", f"Server process: CPU {s['cpu_mean']} of a core on average (max {s['cpu_max']}; "
              f"the whole machine: {s.get('machine_cores_busy')} of {m['cpus']} cores busy); "
              f"RSS {s['rss_mib_start']} → {s['rss_mib_end']} MiB "
              f"({s['rss_mib_per_min']} MiB/min); "
              f"open files {s['fds_start']} → {s['fds_end']}."]  # fmt: skip
    others = s.get("others_cpu_mean")
    if others:
        lines[-1] += (
            " The run's other processes, on the same cores: "
            + ", ".join(f"{name} {cores} of a core" for name, cores in others.items())
            + "."
        )
    c = result.get("ceiling")
    if c:
        lines += [
            "",
            f"Bid-path ceiling, raw asyncio client alone (64 connections, "
            f"{a['ceiling_seconds']} s): **{c['ok_per_s']} durable bids/s**, "
            f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms (answers {c['codes']}).",
        ]
    grew = result.get("memory_grew")
    if grew:
        lines += ["", "What grew over the steady window (tracemalloc, by line):", ""]
        lines += [f"- {kib / 1024:+.1f} MiB `{where}`" for where, kib in
                  ((w, b / 1024) for w, b in grew.items())]  # fmt: skip
    checks = result.get("checks")
    if checks:
        lines += ["", "| end-state check | ok | detail |", "|---|---|---|"]
        for name, v in checks.items():
            extra = {k: x for k, x in v.items() if k not in ("ok", "detail")}
            lines.append(f"| {name} | {'yes' if v['ok'] else '**NO**'} | {v['detail']} {extra} |")
    return "\n".join(lines) + "\n"


# -- the run ---------------------------------------------------------------------------------


def start_locust(
    args: argparse.Namespace, base: str, out: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    classes = ["Store", "Recycler", "Regulator"] + (["Board"] if args.locust_boards else [])
    cmd = [
        sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "-u", str(args.users + args.locust_boards),
        "-r", str(args.spawn_rate), "-t", f"{args.duration}s", "--stop-timeout", "5",
        "--csv", str(out / "locust"), "--host", base, "--only-summary", "--loglevel", "WARNING",
        *classes,
    ]  # fmt: skip
    log = open(out / "locust.log", "w")  # noqa: SIM115
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def ceiling(port: int, tokens: dict[str, str], recyclers: int, seconds: float) -> dict[str, Any]:
    """The bid path alone: 64 keep-alive connections from the raw asyncio client."""
    makers = []
    for c in range(64):
        market = list(MARKETS)[c % len(MARKETS)]
        body = json.dumps({"market": market, "price_fen_per_t": MARKETS[market] - 100_000,
                           "qty_kg": 100}).encode()  # fmt: skip
        auth = {"Authorization": f"Bearer {tokens[f'recycler-{c % recyclers}']}"}
        makers.append(request_maker("POST", "/v1/bids", body, auth, keyed=True))
    tally = Tally()
    asyncio.run(drive(port, makers, seconds, tally))
    return tally.summary()


def account_file(tokens: dict[str, str], who: list[tuple[str, str, str, tuple[str, ...]]],
                 catalogue: Any) -> dict[str, Any]:  # fmt: skip
    markets = list(MARKETS)
    stores = [p for p, _, role, _ in who if role == "store"]
    recyclers = [p for p, _, role, _ in who if role == "recycler"]
    return {
        "catalogue": catalogue, "markets": markets, "daily": MARKETS,
        "stores": [{"id": p, "token": tokens[p], "markets": [markets[i % 6], markets[6 + i % 4]]}
                   for i, p in enumerate(stores)],
        "recyclers": [{"id": p, "token": tokens[p],
                       "markets": [markets[(i + k) % len(markets)] for k in range(3)]}
                      for i, p in enumerate(recyclers)],
        "regulators": [{"id": p, "token": tokens[p]} for p, _, r, _ in who if r == "regulator"],
        "boards": [{"id": "boards", "token": tokens["boards"]}],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--users",
        type=int,
        default=600,
        help="locust users besides boards (stores:recyclers:regulators 6:3:1)",
    )
    parser.add_argument("--pace", type=float, default=12.0, help="think-time divisor; 1 = soak")
    parser.add_argument("--boards", type=int, default=1000, help="quote boards in all")
    parser.add_argument("--locust-boards", type=int, default=20, help="of them, inside locust")
    parser.add_argument("--duration", type=int, default=120, help="locust's run, seconds")
    parser.add_argument("--spawn-rate", type=float, default=100)
    parser.add_argument(
        "--steady-after",
        type=float,
        default=None,
        help="ramp left out, s (default 20; a soak: half its duration)",
    )
    parser.add_argument("--ceiling-seconds", type=float, default=10)
    parser.add_argument("--stores", type=int, default=400)
    parser.add_argument("--recyclers", type=int, default=60)
    parser.add_argument("--soak", action="store_true", help="end-state checks, flat memory")
    parser.add_argument(
        "--feeds",
        action="store_true",
        help="boards on an `auction feeds` process (postgres backend: Redis)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--redis-db", type=int, default=REDIS_DB)
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the server's allocations; the report lists what grew",
    )
    args = parser.parse_args()
    if args.steady_after is None:
        args.steady_after = args.duration / 2 if args.soak else 20.0
    kind = "soak" if args.soak else "load"
    out: Path = args.out or ROOT / "loadtests" / "out" / f"{kind}-{args.backend}"
    tmp = out / "work"
    tmp.mkdir(parents=True, exist_ok=True)
    for old in tmp.iterdir():
        old.unlink()

    backend_env = fresh_backend(args.backend, tmp, args.redis_db)
    pg_database = backend_env.pop("PG_DATABASE", None)
    who = people(args.stores, args.recyclers)
    tokens = asyncio.run(make_accounts(backend_env["AUCTION_DATABASE_URL"], who))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **backend_env, "AUCTION_SNAPSHOT_PATH": str(tmp / "snap"),
           "AUCTION_RATE_PER_PRINCIPAL": "1000000"}  # fmt: skip
    if args.tracemalloc:
        env["PYTHONTRACEMALLOC"] = "1"
    log = out / "service.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "auction", "serve", "--port", str(port)],
        env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
    )  # fmt: skip
    sampler = Sampler(server.pid)
    result: dict[str, Any] = {"args": vars(args) | {"out": str(out)}, "machine": machine()}
    try:
        wait_healthy(base, server, log)
        seed(Api(base, tokens), args.recyclers)
        catalogue = json.loads(urllib.request.urlopen(base + "/v1/catalogue").read())
        (out / "accounts.json").write_text(json.dumps(account_file(tokens, who, catalogue)))
        sampler.start()
        board_port = port
        if args.feeds:  # the scale-out: screens on their own process, fed through Redis
            board_port = free_port()
            feeds = subprocess.Popen(
                [sys.executable, "-m", "auction", "feeds", "--port", str(board_port)],
                env=env, stdout=open(out / "feeds.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
            )  # fmt: skip
            wait_healthy(f"http://127.0.0.1:{board_port}", feeds, out / "feeds.log")
            sampler.watch("feeds", feeds.pid)
        swarm = None
        if args.boards > args.locust_boards:
            swarm = subprocess.Popen(
                [sys.executable, "-m", "loadtests.boards", "--port", str(board_port),
                 "--count", str(args.boards - args.locust_boards), "--token", tokens["boards"],
                 "--markets", ",".join(MARKETS), "--seconds", str(args.duration + 120)],
                stdout=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
            sampler.watch("boards", swarm.pid)
            time.sleep(5)  # the boards connect first, as shops open in the morning
        load_env = {**env, "LOAD_ACCOUNTS": str(out / "accounts.json"),
                    "LOAD_PACE": str(args.pace), "LOAD_LOCUST_BOARDS": str(args.locust_boards),
                    "LOAD_REFUSALS": str(out / "refusals.json"),
                    "LOAD_SUMMARY": str(out / "summary.json"),
                    "LOAD_STEADY_AFTER": str(args.steady_after)}  # fmt: skip
        api = Api(base, tokens)
        t0 = time.monotonic()
        locust = start_locust(args, base, out, load_env)
        sampler.watch("locust", locust.pid)
        time.sleep(args.steady_after)
        sizes0 = api.call("GET", "/v1/admin/state?hash=false", "admin")
        locust.wait(timeout=args.duration + 120)
        t1 = time.monotonic()
        sizes1 = api.call("GET", "/v1/admin/state?hash=false", "admin")
        result["engine"] = {"start": sizes0, "end": sizes1}
        if "memory" in sizes1:
            grew = {k: v - sizes0.get("memory", {}).get(k, 0) for k, v in sizes1["memory"].items()}
            result["memory_grew"] = dict(sorted(grew.items(), key=lambda kv: -kv[1])[:15])
            for side in (sizes0, sizes1):
                side.pop("memory", None)
        if swarm is not None:
            swarm.terminate()
            stdout, _ = swarm.communicate(timeout=60)
            lines = stdout.strip().splitlines()
            result["boards"] = json.loads(lines[-1]) if lines else {"error": "no output"}
        steady = sampler.window(t0 + args.steady_after, t1)
        result["server"] = {
            "cpu_mean": round(statistics.fmean(r[1] for r in steady), 2) if steady else None,
            "cpu_max": round(max(r[1] for r in steady), 2) if steady else None,
            "machine_cores_busy": round(
                statistics.fmean(
                    c for t, c in sampler.machine if t0 + args.steady_after <= t <= t1
                ),
                2,
            )
            if steady
            else None,
            "rss_mib_start": round(steady[0][2] / 1024, 1) if steady else None,
            "rss_mib_end": round(steady[-1][2] / 1024, 1) if steady else None,
            "rss_mib_per_min": round(slope_per_min(steady, 2) / 1024, 2),
            "fds_start": steady[0][3] if steady else None,
            "fds_end": steady[-1][3] if steady else None,
            "fds_first_minute": minute_median(steady, 3, first=True),
            "fds_last_minute": minute_median(steady, 3, first=False),
            "fds_per_min": round(slope_per_min(steady, 3), 2),
            "others_cpu_mean": {
                name: round(statistics.fmean(inside), 2)
                for name, rows in sampler.others.items()
                if (inside := [c for t, c in rows if t0 + args.steady_after <= t <= t1])
            },
        }
        if args.soak:
            time.sleep(2)  # let the last commits land
            result["checks"] = asyncio.run(
                soak_checks(base, tokens, backend_env, result["server"], result["engine"])
            )
        elif args.ceiling_seconds:
            result["ceiling"] = ceiling(port, tokens, args.recyclers, args.ceiling_seconds)
    finally:
        sampler.done.set()
        if "feeds" in locals():
            feeds.terminate()
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        if pg_database:
            psql(f"drop database if exists {pg_database} with (force)")
    result["locust"] = locust_numbers(out)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    report = render(result)
    (out / "report.md").write_text(report)
    print(report)
    failed = [k for k, v in result.get("checks", {}).items() if isinstance(v, dict) and not v["ok"]]
    if failed:
        sys.exit(f"soak checks failed: {failed}")


if __name__ == "__main__":
    main()
