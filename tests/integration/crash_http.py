"""The crash harness over the real HTTP service: ``auction serve``, bearer tokens,
``Idempotency-Key`` headers, a raw asyncio HTTP/1.1 client (httpx is too slow to load a
server here).  A 503 (``journal_unavailable``) is an answer that says "try again": the
request counts as unanswered and is retried with its key like a lost one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

from auction.clock import LiveClock
from auction.db import make_engine
from auction.engine import Engine
from auction.journal import Journal
from auction.runner import Runner
from tests.integration.crash import RECYCLERS, STORES, Harness, Outcome, Server

M = "ebike:330522"


class HttpServer(Server):
    ARGV: tuple[str, ...] = ("serve", "--port")
    READY = "auction service on"

    def address(self) -> str:
        return str(self.port)

    def wait_ready(self) -> None:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the service did not answer /healthz")


async def http(
    port: int, method: str, path: str, token: str, key: str | None, body: Any
) -> tuple[int, Any]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        data = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n"
        )
        if key:
            head += f"Idempotency-Key: {key}\r\n"
        writer.write(head.encode() + b"\r\n" + data)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 20)
        if not status_line:
            raise ConnectionError("closed")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        payload = await reader.readexactly(length)
        return int(status_line.split()[1]), json.loads(payload)
    finally:
        writer.close()


class HttpHarness(Harness):
    SERVER = HttpServer

    def prepare(self) -> None:
        self.tokens: dict[str, str] = {}
        run = [sys.executable, "-m", "auction"]
        url = ["--database-url", self.url]
        subprocess.run([*run, "db", "upgrade", *url], check=True, capture_output=True)
        people = [(r, "recycler") for r in RECYCLERS] + [(s, "store") for s in [*STORES, "s9"]]
        for pid, role in [*people, ("admin", "admin")]:
            subprocess.run(
                [
                    *run,
                    "accounts",
                    "create",
                    "--id",
                    pid,
                    "--org",
                    pid.upper(),
                    "--role",
                    role,
                    *url,
                ],
                check=True,
                capture_output=True,
            )
            self.tokens[pid] = subprocess.run(
                [*run, "accounts", "token", "--id", pid, *url],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()

    async def setup(self, port: int) -> None:
        for who in RECYCLERS:
            status, _ = await http(
                port,
                "POST",
                "/v1/admin/buying-power",
                self.tokens["admin"],
                f"fund-{who}",
                {"bidder": who, "limit_fen": 10**11},
            )
            assert status == 200
        for i in range(3):
            status, body = await http(
                port,
                "POST",
                "/v1/lots",
                self.tokens["s9"],
                f"auction-{i}",
                {
                    "mode": "auction",
                    "market": M,
                    "weight_kg": 500,
                    "start_price_fen_per_t": 990_000,
                    "duration_s": 86_400,
                },
            )
            assert status == 201, body
            self.auctions.append(body["id"])

    async def request(self, port: int, out: Outcome) -> dict[str, Any]:
        c = out.command
        if c["type"] == "place_bid":
            path, body = "/v1/bids", {k: c[k] for k in ("market", "price_fen_per_t", "qty_kg")}
        elif c["type"] == "sell_lot":
            path = "/v1/lots"
            body = {
                "mode": "one_click",
                **{k: c[k] for k in ("market", "weight_kg", "floor_price_fen_per_t", "if_unsold")},
            }
        else:
            path, body = (
                f"/v1/lots/{c['lot_id']}/bids",
                {"max_price_fen_per_t": c["max_price_fen_per_t"]},
            )
        status, answer = await http(port, "POST", path, self.tokens[out.principal], out.key, body)
        if status == 503:
            raise ConnectionError("try again")
        if status < 300:
            return {"ok": True, "seq": answer["seq"], "replay": answer["replay"]}
        return {"ok": False, "status": status, "code": answer.get("code")}

    async def state(self, port: int) -> dict[str, Any]:
        """The state hash a restart reaches (snapshot plus journal), computed here."""
        db = make_engine(self.url)
        try:
            journal = Journal(db)
            runner = Runner(Engine(), LiveClock(), journal, snapshot_path=self.snapshot)
            await runner.recover()
            journal.close()
            return {"seq": runner._seq, "state_hash": runner.engine.state_hash()}
        finally:
            await db.dispose()
