"""Crash harness: the engine in a subprocess, many concurrent clients, abrupt deaths.

``Harness.run`` starts ``auction engine`` on a free port, funds recyclers and opens a
few auctions, then in rounds: clients send bids, one-click sales and auction bids, each
with a fresh idempotency key; the server dies (``kill -9`` at a random moment, or a fault
point); it is restarted and every request whose answer was lost is retried with the same
key.  ``check`` then reads the journal and holds the server to its promises.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from auction.codec import decode_command
from auction.db import make_engine
from auction.engine import Engine
from auction.journal import Journal, from_us

M = "ebike:330522"
RECYCLERS = [f"r{i}" for i in range(6)]
STORES = [f"s{i}" for i in range(6)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Outcome:
    principal: str
    key: str
    command: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)
    lost: int = 0


class Server:
    ARGV: tuple[str, ...] = ("engine", "--listen")
    READY = "ready"

    def __init__(self, url: str, snapshot: Path, env: dict[str, str] | None = None) -> None:
        self.log = open(snapshot.with_name("engine.log"), "a")  # noqa: SIM115
        self.port = free_port()
        full_env = dict(os.environ)
        full_env.pop("AUCTION_FAULTS", None)
        full_env.update(
            {
                "AUCTION_DATABASE_URL": url,
                "AUCTION_SNAPSHOT_PATH": str(snapshot),
                "AUCTION_SNAPSHOT_EVERY": "150",
                "PYTHONUNBUFFERED": "1",
            }
        )
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "auction", *self.ARGV, self.address()],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(self.READY):
            self.kill()
            raise RuntimeError(f"engine did not start: {line!r}; see {self.log.name}")
        self.wait_ready()

    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        """The command port answers once it printed "ready"."""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close()


async def call(port: int, body: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(json.dumps(body).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed")
        answer: dict[str, Any] = json.loads(line)
        return answer
    finally:
        writer.close()


class Harness:
    SERVER: type[Server] = Server

    def __init__(self, url: str, workdir: Path, seed: int) -> None:
        self.url = url
        self.snapshot = workdir / "engine.snapshot"
        self.rng = random.Random(seed)
        self.outcomes: list[Outcome] = []
        self.auctions: list[int] = []
        self.retried: list[Outcome] = []

    def _request(self) -> Outcome:
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            who = rng.choice(RECYCLERS)
            cmd = {
                "type": "place_bid", "bid_id": 0, "market": M, "owner": who,
                "org": who.upper(), "price_fen_per_t": 990_000 + 1_000 * rng.randint(0, 30),
                "qty_kg": rng.choice((300, 800, 2000)),
            }  # fmt: skip
        elif r < 0.75 or not self.auctions:
            who = rng.choice(STORES)
            cmd = {
                "type": "sell_lot", "lot_id": 0, "market": M, "owner": who, "org": who.upper(),
                "weight_kg": rng.choice((100, 300, 600)),
                "floor_price_fen_per_t": 985_000 + 1_000 * rng.randint(0, 20),
                "if_unsold": rng.choice(("rest", "refuse")),
            }  # fmt: skip
        else:
            who = rng.choice(RECYCLERS)
            cmd = {
                "type": "auction_bid", "lot_id": rng.choice(self.auctions), "bidder": who,
                "org": who.upper(), "max_price_fen_per_t": 1_000_000 + 1_000 * rng.randint(0, 400),
            }  # fmt: skip
        out = Outcome(who, uuid.uuid4().hex, cmd)
        self.outcomes.append(out)
        return out

    async def _send(self, port: int, out: Outcome) -> bool:
        """True if answered; False if the answer was lost (server gone)."""
        try:
            answer = await self.request(port, out)
        except (TimeoutError, ConnectionError, OSError, json.JSONDecodeError):
            out.lost += 1
            return False
        out.answers.append(answer)
        return True

    async def request(self, port: int, out: Outcome) -> dict[str, Any]:
        """One request on the command port; HTTP harnesses override this."""
        return await call(
            port, {"principal": out.principal, "key": out.key, "command": out.command}
        )

    async def _client(self, port: int, stop: asyncio.Event, lost: list[Outcome]) -> None:
        while not stop.is_set():
            out = self._request()
            if not await self._send(port, out):
                lost.append(out)
                return

    async def setup(self, port: int) -> None:
        for who in RECYCLERS:
            await call(port, {"principal": "admin", "key": f"fund-{who}", "command": {
                "type": "set_buying_power", "bidder": who, "limit_fen": 10**11}})  # fmt: skip
        for i in range(3):
            answer = await call(port, {"principal": "s9", "key": f"auction-{i}", "command": {
                "type": "start_auction", "lot_id": 0, "market": M, "owner": "s9", "org": "S9",
                "weight_kg": 500, "start_price_fen_per_t": 990_000,
                "duration_s": 86_400}})  # fmt: skip
            assert answer["ok"], answer
            self.auctions.append(answer["events"][0]["lot_id"])

    def run(self, kills: int, fault: str | None = None, clients: int = 16) -> None:
        subprocess.run(
            [sys.executable, "-m", "auction", "db", "upgrade", "--database-url", self.url],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.prepare()
        server = self.SERVER(self.url, self.snapshot)
        asyncio.run(self.setup(server.port))
        for round_ in range(kills):
            env = {"AUCTION_FAULTS": fault.format(n=self.rng.randint(3, 30))} if fault else None
            if env:
                server.stop()
                server = self.SERVER(self.url, self.snapshot, env)
            lost: list[Outcome] = []

            async def load(server: Server = server, lost: list[Outcome] = lost) -> None:
                port = server.port
                stop = asyncio.Event()
                tasks = [
                    asyncio.create_task(self._client(port, stop, lost)) for _ in range(clients)
                ]
                if fault:
                    await asyncio.wait(tasks, timeout=60)  # until the fault point kills it
                else:
                    await asyncio.sleep(self.rng.uniform(0.3, 1.2))
                    server.kill()  # kill -9 at a random moment under load
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run(load())
            server.kill()
            server = self.SERVER(self.url, self.snapshot)
            # every request whose answer was lost is retried with the same key
            for out in lost:
                assert asyncio.run(self._retry(server.port, out)), f"round {round_}: retry failed"
            self.retried.extend(lost)
        self.final_state = asyncio.run(self.state(server.port))
        server.stop()

    def prepare(self) -> None:
        """Anything needed before the first start (accounts, for HTTP)."""

    async def state(self, port: int) -> dict[str, Any]:
        return await call(port, {"query": "state"})

    async def _retry(self, port: int, out: Outcome) -> bool:
        for _ in range(20):
            if await self._send(port, out):
                answer = out.answers[-1]
                if answer.get("code") == "idempotency_in_flight":
                    await asyncio.sleep(0.05)
                    continue
                return True
            await asyncio.sleep(0.1)
        return False

    def check(self) -> dict[str, int]:
        return asyncio.run(self._check())

    async def _check(self) -> dict[str, int]:
        db = make_engine(self.url)
        try:
            async with db.connect() as conn:
                rows = (
                    await conn.execute(
                        text("select seq, principal, idem_key from journal order by seq")
                    )
                ).all()
                twice = "select lot_id, count(*) from {} group by lot_id having count(*) > 1"
                double = (await conn.execute(text(twice.format("trades")))).all()
                awards = (await conn.execute(text(twice.format("awards")))).all()
            seqs = [r[0] for r in rows]
            assert seqs == list(range(1, len(seqs) + 1)), "journal sequence has gaps"
            by_key: dict[tuple[str, str], list[int]] = {}
            for seq, principal, key in rows:
                if key is not None:
                    by_key.setdefault((principal, key), []).append(seq)
            assert all(len(v) == 1 for v in by_key.values()), "a command was journaled twice"
            acked = 0
            for out in self.outcomes:
                oks = [a for a in out.answers if a.get("ok")]
                firsts = {a["seq"] for a in oks}
                assert len(firsts) <= 1, f"{out.key}: answered with different seqs {firsts}"
                for a in oks:
                    if a["seq"] is not None:
                        acked += 1
                        assert by_key.get((out.principal, out.key)) == [a["seq"]], (
                            f"{out.key}: acknowledged at {a['seq']} but journaled at "
                            f"{by_key.get((out.principal, out.key))}"
                        )
            for out in self.retried:
                assert out.answers, f"{out.key}: never resolved"
            assert not double, f"lots traded twice: {double}"
            assert not awards, f"lots awarded twice: {awards}"
            # a fresh replay of the journal alone equals the restarted server's state
            engine = Engine()
            async for chunk in Journal(db).rows():
                for _, at_us, command in chunk:
                    engine.apply(decode_command(command), from_us(at_us))
            assert engine.state_hash() == self.final_state["state_hash"]
            assert self.final_state["seq"] == len(seqs)
            replays = sum(1 for o in self.retried for a in o.answers if a.get("replay"))
            return {"journaled": len(seqs), "acknowledged": acked, "retried": len(self.retried),
                    "replays": replays}  # fmt: skip
        finally:
            await db.dispose()
