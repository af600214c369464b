"""One screen that never reads, beside 50 that do, while 200 messages/s are published
through the real service: the slow one is cut off once its queue fills, the others
keep their latency and miss nothing, and the server's memory stays put."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests.integration.server import Service, environment, make_accounts, running
from tests.integration.wsclient import Feed

M = "ebike:330522"
RATE = 200  # messages/s on book:M (one standing bid each)
SECONDS = 12.0
NORMAL = 50


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def never_reading_client(port: int, channel: str) -> socket.socket:
    """A websocket client by hand with a tiny receive buffer, that subscribes and then
    never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    payload = json.dumps({"op": "subscribe", "channel": channel}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes((0x81, 0x80 | len(payload))) + mask + masked)
    return sock


def publish(svc: Service, stop: threading.Event, sent: list[int]) -> None:
    """Standing bids at RATE/s over one keep-alive connection."""
    conn = http.client.HTTPConnection(svc.base.removeprefix("http://"), timeout=10)
    headers = {**svc.auth("ra"), "Content-Type": "application/json"}
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        due = start + n / RATE
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        body = {"market": M, "price_fen_per_t": 900_000 + 100 * (n % 20), "qty_kg": 100}
        conn.request(
            "POST", "/v1/bids", json.dumps(body), {**headers, "Idempotency-Key": f"slow-{n}"}
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201, resp.status
        n += 1
        sent[0] = n
    conn.close()


def test_a_screen_that_never_reads_is_cut_off_and_the_others_do_not_notice(
    tmp_path: Path,
) -> None:
    env = environment(
        tmp_path, AUCTION_RATE_PER_PRINCIPAL="5000", AUCTION_WS_MAX_BUFFER=str(64 * 1024)
    )
    tokens = make_accounts(env)
    with running(env, tokens, tmp_path / "serve.log") as svc:
        assert (
            svc.call(
                "POST", "/v1/admin/buying-power", "adm", {"bidder": "ra", "limit_fen": 10**13}
            )[0]
            == 200
        )
        port = int(svc.base.rsplit(":", 1)[1])
        pid = svc.proc.pid

        async def session() -> dict[str, Any]:
            normal = [await Feed.open(svc.ws, svc.auth("board")) for _ in range(NORMAL)]
            for feed in normal:
                await feed.subscribe(f"book:{M}")
            slow = never_reading_client(port, f"book:{M}")
            rss_before = rss_kib(pid)
            latencies: list[float] = []
            counts = [0] * NORMAL

            async def read(i: int, feed: Feed) -> None:
                while True:
                    msg = await feed._read(30)
                    if msg.get("channel") == f"book:{M}" and msg["type"] == "update":
                        latencies.append(time.time() * 1000 - msg["time_ms"])
                        counts[i] += 1

            readers = [asyncio.create_task(read(i, f)) for i, f in enumerate(normal)]
            stop, sent = threading.Event(), [0]
            publisher = threading.Thread(target=publish, args=(svc, stop, sent))
            publisher.start()
            cut_at = None
            peak = rss_before
            t0 = time.monotonic()
            while time.monotonic() - t0 < SECONDS:
                await asyncio.sleep(0.1)
                peak = max(peak, rss_kib(pid))
                _status, stats = await asyncio.to_thread(svc.call, "GET", "/v1/ws/stats", "adm")
                if cut_at is None and stats["closed_slow"]:
                    cut_at = time.monotonic()
            stop.set()
            await asyncio.to_thread(publisher.join)
            await asyncio.sleep(1.0)  # the last messages reach the readers
            # 5 s after it was cut off, the slow client's connection is gone at TCP level:
            # whatever it reads ends in a reset or an end of stream
            assert cut_at is not None, ("never closed", stats, sent, counts[:3])
            await asyncio.sleep(max(0.0, cut_at + 5.0 - time.monotonic()))
            slow.setblocking(False)
            ended = False
            try:
                while chunk := slow.recv(65536):
                    del chunk
                ended = True  # end of stream
            except ConnectionResetError:
                ended = True
            except BlockingIOError:
                ended = False
            slow.close()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            stats = (await asyncio.to_thread(svc.call, "GET", "/v1/ws/stats", "adm"))[1]
            for feed in normal:
                await feed.close()
            return {
                "ended": ended,
                "latencies": sorted(latencies),
                "counts": counts,
                "sent": sent[0],
                "rss_before": rss_before,
                "peak": peak,
                "stats": stats,
                "cut_after_s": cut_at - t0,
            }

        out = asyncio.run(session())
    lat = out["latencies"]
    p99 = lat[int(len(lat) * 0.99)]
    print(
        f"sent {out['sent']}, cut after {out['cut_after_s']:.1f} s, p99 {p99:.1f} ms, "
        f"rss {out['rss_before']} -> peak {out['peak']} KiB, stats {out['stats']}"
    )
    assert out["sent"] >= RATE * SECONDS * 0.8, out["sent"]
    assert out["stats"]["closed_slow"] == 1, out["stats"]  # only the one that never reads
    assert out["ended"], "the slow client's connection was still open 5 s after the cut"
    # every normal screen saw every message, in order (Feed raises on a gap); a message
    # may carry two bids that were committed together
    assert min(out["counts"]) == max(out["counts"]) >= 0.9 * out["sent"], out["counts"][:5]
    assert p99 < 100.0, p99
    assert out["peak"] - out["rss_before"] < 64 * 1024, (out["rss_before"], out["peak"])
