"""HTTP benchmark with a raw asyncio client: ``python -m loadtests.bench_http``.

Starts ``auction serve`` (one process, SQLite journal) and a bare Starlette app
(``loadtests.bare_app``, same uvicorn settings) on free ports, then drives each with C
keep-alive connections for S seconds: durable acknowledged bids (``POST /v1/bids``, a
fresh Idempotency-Key each, 2xx only counted) against the bare msgspec POST, and the book
read (``GET /v1/markets/{m}/book``) against the bare GET.  httpx and locust cannot load a
server this fast from one core here, so the client is ~60 lines of asyncio streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.crash import free_port


async def one_connection(
    port: int, make: Any, stop: float, lat: list[float], codes: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            request = make()
            t0 = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            code = int(status_line.split()[1])
            codes[code] = codes.get(code, 0) + 1
    finally:
        writer.close()


def request_maker(
    method: str, path: str, body: bytes | None, headers: dict[str, str], keyed: bool
) -> Any:
    n = [0]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    def make() -> bytes:
        n[0] += 1
        key = f"Idempotency-Key: b{os.getpid()}-{n[0]}-{id(n)}\r\n" if keyed else ""
        length = (
            f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n" if body else ""
        )
        return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{head}{key}{length}\r\n".encode() + (
            body or b""
        )

    return make


class Tally:
    """Answers and latencies of one phase, summed over its rounds."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.codes: dict[int, int] = {}
        self.took = 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.lat)
        ok = sum(v for k, v in self.codes.items() if 200 <= k < 300)
        return {
            "ok_per_s": round(ok / self.took) if self.took else 0,
            "codes": self.codes,
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None,
        }


async def drive(port: int, makers: list[Any], seconds: float, tally: Tally) -> None:
    stop = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(one_connection(port, m, stop, tally.lat, tally.codes) for m in makers))
    tally.took += time.perf_counter() - t0


def wait_up(port: int, path: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10, help="per phase, all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    env = dict(
        os.environ,
        AUCTION_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'b.db'}",
        AUCTION_SNAPSHOT_PATH=str(tmp / "snap"),
        AUCTION_RATE_PER_PRINCIPAL="1000000",
    )
    run = [sys.executable, "-m", "auction"]
    tokens = []
    for i in range(16):
        subprocess.run(
            [*run, "accounts", "create", "--id", f"r{i}", "--org", f"R{i}", "--role", "recycler"],
            env=env,
            check=True,
            capture_output=True,
        )
        tokens.append(
            subprocess.run(
                [*run, "accounts", "token", "--id", f"r{i}"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
    subprocess.run(
        [*run, "accounts", "create", "--id", "adm", "--org", "P", "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
    )
    admin = subprocess.run(
        [*run, "accounts", "token", "--id", "adm"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    sport, bport = free_port(), free_port()
    serve = subprocess.Popen(
        [*run, "serve", "--port", str(sport)], env=env, stdout=subprocess.DEVNULL
    )
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "loadtests.bare_app:app",
            "--port",
            str(bport),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    report: dict[str, Any] = {
        "connections": args.connections,
        "seconds": args.seconds,
        "rounds": args.rounds,
    }
    try:
        wait_up(sport, "/healthz")
        wait_up(bport, "/book")
        for i in range(16):
            req = urllib.request.Request(
                f"http://127.0.0.1:{sport}/v1/admin/buying-power",
                method="POST",
                data=json.dumps({"bidder": f"r{i}", "limit_fen": 10**14}).encode(),
                headers={
                    "Authorization": f"Bearer {admin}",
                    "Idempotency-Key": f"f{i}",
                    "Content-Type": "application/json",
                },
            )
            urllib.request.urlopen(req)
        bid = json.dumps(
            {"market": "ebike:330522", "price_fen_per_t": 990_000, "qty_kg": 100}
        ).encode()
        c = args.connections
        auth = [{"Authorization": f"Bearer {tokens[i % 16]}"} for i in range(c)]
        book = "/v1/markets/ebike:330522/book?depth=10"
        phases = {
            "bids": (sport, [request_maker("POST", "/v1/bids", bid, h, True) for h in auth]),
            "bare_post": (bport, [request_maker("POST", "/bid", bid, {}, False)] * c),
            "book_read": (sport, [request_maker("GET", book, None, h, False) for h in auth]),
            "bare_get": (bport, [request_maker("GET", "/book", None, {}, False)] * c),
        }
        tallies = {name: Tally() for name in phases}
        # rounds interleave the phases, so that a neighbour's load on a shared machine
        # falls on the service and the bare app alike and the ratios stay fair
        for _ in range(args.rounds):
            for name, (port, makers) in phases.items():
                asyncio.run(drive(port, makers, args.seconds / args.rounds, tallies[name]))
        for name, tally in tallies.items():
            report[name] = tally.summary()
        report["bids_vs_bare_post"] = round(
            report["bids"]["ok_per_s"] / report["bare_post"]["ok_per_s"], 3
        )
        report["read_vs_bare_get"] = round(
            report["book_read"]["ok_per_s"] / report["bare_get"]["ok_per_s"], 3
        )
    finally:
        serve.terminate()
        bare.terminate()
        serve.wait(30)
        bare.wait(30)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
