"""Fan-out benchmark: quote boards on ``/v1/ws`` against a bare ``websockets.broadcast()``
server, measured in the same run with the same client.

    python -m loadtests.bench_feeds [--quick]

For each server and each scenario (1,000 boards at 30 price updates/s; 5,000 boards at
5 updates/s) it prints:

- publish-to-screen latency p50/p99: from the moment the publisher sends a price to the
  moment a screen has the frame with it (batching delay included).  For our service the
  publisher is an HTTP client posting ``POST /v1/prices``: the path includes the journal
  commit, the price service, the sequencer and the conflation of the ``board`` channel.
  For the bare server it is a websocket message that the server broadcasts at once;
- server CPU per delivered frame (the server process's user+system time over the run,
  divided by the frames the screens got);
- memory per idle connection (the server's RSS growth over 2,000 connections that
  subscribed and then sat idle, divided by 2,000).

The screens are raw asyncio protocols in this process (a websocket client by hand: the
handshake, then unmasked frames), so the client costs little of the two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import uvloop
from websockets.asyncio.client import connect

from tests.integration.crash import free_port

_decode = msgspec.json.decode


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Tally:
    sent: dict[tuple[str, int], float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    frames: int = 0


class Screen(asyncio.Protocol):
    """One board: a hand-made websocket client that parses server frames."""

    def __init__(self, tally: Tally, first: bytes, bare: bool) -> None:
        self.tally = tally
        self.first = first
        self.bare = bare
        self.buf = b""
        self.open = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(  # type: ignore[union-attr]
            (
                f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{AUTH['header']}\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.open = True
            buf = buf[end + 4 :]
            mask = b"\x00\x00\x00\x00"
            assert self.transport is not None
            for first in self.first.split(b"\n") if self.first else ():  # one frame each
                self.transport.write(bytes((0x81, 0x80 | len(first))) + mask + first)
            if not self.ready.done():
                self.ready.set_result(None)
        now = time.monotonic()
        while len(buf) >= 2:
            n = buf[1] & 0x7F
            at = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + n:
                break
            self.frame(buf[at : at + n], now)
            buf = buf[at + n :]
        self.buf = buf

    def frame(self, payload: bytes, now: float) -> None:
        tally = self.tally
        if self.bare:
            msg = _decode(payload)
            sent = tally.sent.get((msg["k"], msg["p"]))
            if sent is not None:
                tally.frames += 1
                tally.latencies.append(now - sent)
            return
        if payload.startswith(b'{"channel":"board","seq"') and b'"update"' in payload[:80]:
            tally.frames += 1
            quotes = _decode(payload)["data"].get("quotes") or {}
            for q in quotes.values():
                if q:
                    sent = tally.sent.get((q["key"], q["price_fen_per_t"]))
                    if sent is not None:
                        tally.latencies.append(now - sent)


AUTH: dict[str, str] = {"header": ""}  # the boards' token, set by ``main``


async def post_prices(
    base_port: int, token: str, keys: list[str], rate: float, seconds: float, tally: Tally
) -> int:
    """POST /v1/prices at ``rate``/s over one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", base_port)
    price = dict.fromkeys(keys, 1000000)
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        key = keys[n % len(keys)]
        price[key] += 100
        body = json.dumps({"kind": "daily", "key": key, "price_fen_per_t": price[key]}).encode()
        tally.sent[(key, price[key])] = time.monotonic()
        writer.write(
            b"POST /v1/prices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + f"Idempotency-Key: b{n}-{time.time_ns()}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        n += 1
    writer.close()
    return n


async def post_bare(port: int, rate: float, seconds: float, tally: Tally) -> int:
    async with connect(f"ws://127.0.0.1:{port}/publish") as ws:
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            key = f"k{n % 20}"
            tally.sent[(key, n)] = time.monotonic()
            await ws.send(json.dumps({"k": key, "p": n}))
            n += 1
    return n


async def open_screens(
    port: int, count: int, tally: Tally, first: bytes, bare: bool, kind: type[Screen] | None = None
) -> list[Screen]:
    make = kind or Screen
    loop = asyncio.get_running_loop()
    screens: list[Screen] = []
    for i in range(0, count, 200):
        batch = []
        for _ in range(min(200, count - i)):
            _, proto = await loop.create_connection(
                lambda: make(tally, first, bare), "127.0.0.1", port
            )
            batch.append(proto)
        await asyncio.gather(*(s.ready for s in batch))
        screens.extend(batch)
    return screens


def close_screens(screens: list[Screen]) -> None:
    for s in screens:
        if s.transport is not None:
            s.transport.close()


async def scenario(
    name: str, pid: int, port: int, bare: bool, boards: int, rate: float, seconds: float,
    publish: Any,
) -> dict[str, Any]:  # fmt: skip
    tally = Tally()
    first = b"" if bare else b'{"op":"subscribe","channel":"board"}'
    screens = await open_screens(port, boards, tally, first, bare)
    await asyncio.sleep(1.0)
    tally.latencies.clear()
    tally.frames = 0
    cpu0 = proc_cpu_s(pid)
    sent = await publish(rate, seconds, tally)
    await asyncio.sleep(1.0)
    cpu = proc_cpu_s(pid) - cpu0
    close_screens(screens)
    await asyncio.sleep(0.5)
    lat = sorted(tally.latencies)
    out = {
        "server": name,
        "boards": boards,
        "rate": rate,
        "published": sent,
        "frames": tally.frames,
        "p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None,
        "cpu_us_per_frame": round(cpu / max(1, tally.frames) * 1e6, 2),
    }
    print(json.dumps(out), flush=True)
    return out


async def idle_memory(pid: int, port: int, bare: bool, count: int = 2000) -> float:
    tally = Tally()
    first = b"" if bare else b'{"op":"subscribe","channel":"board"}'
    await asyncio.sleep(0.5)
    before = proc_rss_kib(pid)
    screens = await open_screens(port, count, tally, first, bare)
    await asyncio.sleep(2.0)
    after = proc_rss_kib(pid)
    close_screens(screens)
    await asyncio.sleep(1.0)
    return (after - before) / count


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "w") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing on {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 10.0
    cases = [(1000, 30.0), (5000, 5.0)] if not args.quick else [(200, 30.0)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_feeds_"))
    env = dict(os.environ, AUCTION_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'b.db'}",
               AUCTION_SNAPSHOT_PATH=str(tmp / "snap"),
               AUCTION_RATE_PER_PRINCIPAL="10000",
               AUCTION_WS_CONFLATE_S="0.05")  # fmt: skip  # the figures in BENCHMARKS.md

    def cli(*a: str) -> str:
        return subprocess.run([sys.executable, "-m", "auction", *a], env=env, check=True,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip

    cli("accounts", "create", "--id", "boards", "--org", "P", "--role", "service")
    token = cli("accounts", "token", "--id", "boards")
    AUTH["header"] = f"Authorization: Bearer {token}\r\n"
    ours_port, bare_port = free_port(), free_port()
    ours = start(
        [sys.executable, "-m", "auction", "serve", "--port", str(ours_port)], env, tmp / "ours.log"
    )
    bare = start([sys.executable, "-m", "loadtests.bare_ws", str(bare_port)], env, tmp / "bare.log")
    keys = [f"ebike:3305{i:02d}" for i in (22, 23, 1, 2, 3)]
    try:
        wait_port(ours_port)
        wait_port(bare_port)
        results = []

        async def run() -> None:
            # memory first, on fresh processes (later runs leave freed memory behind)
            servers = [("bare websockets", bare.pid, bare_port, True),
                       ("auction /v1/ws", ours.pid, ours_port, False)]  # fmt: skip
            for name, pid, port, is_bare in servers:
                kib = await idle_memory(pid, port, is_bare, 500 if args.quick else 2000)
                print(
                    json.dumps({"server": name, "idle_kib_per_connection": round(kib, 1)}),
                    flush=True,
                )
            for boards, rate in cases:
                results.append(await scenario(
                    "bare websockets.broadcast", bare.pid, bare_port, True, boards, rate, seconds,
                    lambda r, s, t: post_bare(bare_port, r, s, t)))  # fmt: skip
                results.append(await scenario(
                    "auction /v1/ws board", ours.pid, ours_port, False, boards, rate, seconds,
                    lambda r, s, t: post_prices(ours_port, token, keys, r, s, t)))  # fmt: skip

        uvloop.run(run())
    finally:
        for p in (ours, bare):
            p.terminate()
            p.wait(timeout=30)


if __name__ == "__main__":
    main()
