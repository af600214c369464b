"""The upstream price feed follower against a faulty upstream on loopback.

The fake upstream walks a few prices and sends each change with a sequence number, but
drops 1%, duplicates 1%, swaps neighbours, slips in NaN / negative / 10x prices, stalls
once for longer than the follower's patience, and sends its position in heartbeats.
The follower must publish only true values, each key's in the upstream's order, none
twice in a row, go stale and recover, and end on the upstream's state."""

from __future__ import annotations

import asyncio
import itertools
import json
import random

from websockets.asyncio.server import ServerConnection, serve

from feeds.sources import Follower, SourceStatus

KEYS = ("lead", "ebike", "auto_black")
UPDATES = 1500


class FakeUpstream:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.truth = {"lead": 1_680_000, "ebike": 1_010_000, "auto_black": 1_030_000}
        self.history = {k: [v] for k, v in self.truth.items()}
        self.seq = 0
        self.conns: set[ServerConnection] = set()
        self.bogus = 0
        self.done = asyncio.Event()

    def snapshot(self) -> str:
        prices = {k: v / 100 for k, v in self.truth.items()}
        return json.dumps({"type": "snapshot", "seq": self.seq, "prices": prices})

    async def handler(self, ws: ServerConnection) -> None:
        self.conns.add(ws)
        try:
            async for raw in ws:
                if json.loads(raw).get("op") == "snapshot":
                    await ws.send(self.snapshot())
        finally:
            self.conns.discard(ws)

    async def broadcast(self, text: str) -> None:
        for ws in list(self.conns):
            try:
                await ws.send(text)
            except Exception:
                self.conns.discard(ws)

    async def run(self) -> None:
        held: str | None = None  # a message kept back to be sent after the next one
        for i in range(UPDATES):
            if i == UPDATES // 2:
                await asyncio.sleep(2.5)  # the stall: longer than the follower waits
            await asyncio.sleep(0.002)
            self.seq += 1
            key = self.rng.choice(KEYS)
            roll = self.rng.random()
            if roll < 0.03:  # a bad value: consumes a seq, changes nothing
                self.bogus += 1
                bad = self.rng.choice([float("nan"), -5.0, 0.0, self.truth[key] / 100 * 10])
                text = json.dumps(
                    {"type": "price", "seq": self.seq, "key": key, "price_yuan_per_t": bad}
                )
            else:
                self.truth[key] += self.rng.choice([-1, 1]) * self.rng.randint(1, 15) * 100
                self.history[key].append(self.truth[key])
                text = json.dumps(
                    {
                        "type": "price",
                        "seq": self.seq,
                        "key": key,
                        "price_yuan_per_t": self.truth[key] / 100,
                    }
                )
            roll = self.rng.random()
            if roll < 0.01:
                continue  # dropped
            if roll < 0.02:
                await self.broadcast(text)  # and again below: a duplicate
            if held is None and roll < 0.04:
                held = text  # reordered: goes out after the next one
                continue
            await self.broadcast(text)
            if held is not None:
                await self.broadcast(held)
                held = None
            if i % 50 == 0:
                await self.broadcast(json.dumps({"type": "heartbeat", "seq": self.seq}))
        for _ in range(10):  # heartbeats after the last change: a lost tail is noticed
            await asyncio.sleep(0.1)
            await self.broadcast(json.dumps({"type": "heartbeat", "seq": self.seq}))
        self.done.set()


def is_ordered_subsequence(published: list[int], history: list[int]) -> bool:
    at = 0
    for value in published:
        try:
            at = history.index(value, at) + 1
        except ValueError:
            return False
    return True


def test_a_faulty_upstream_publishes_only_true_values_in_order_and_converges() -> None:
    async def session() -> tuple[FakeUpstream, Follower, list[tuple[str, int]], list[bool]]:
        upstream = FakeUpstream(seed=11)
        published: list[tuple[str, int]] = []
        stale_seen: list[bool] = []

        async def publish(key: str, fen: int) -> bool:
            published.append((key, fen))
            return True

        def on_status(status: SourceStatus) -> None:
            stale_seen.append(status.stale)

        async with serve(upstream.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1] if server.sockets else 0
            follower = Follower(
                "smelters", f"ws://127.0.0.1:{port}", frozenset(KEYS), publish,
                on_status=on_status, stale_after_s=1.0, backoff_s=(0.05, 0.5),
                rng=random.Random(3),
            )  # fmt: skip
            task = asyncio.create_task(follower.run())
            producer = asyncio.create_task(upstream.run())
            for _ in range(600):  # the whole run takes ~7 s
                if upstream.done.is_set():
                    break
                await asyncio.sleep(0.1)
            for _ in range(50):  # let it settle on the final state
                if follower.last == upstream.truth and not follower.status.stale:
                    break
                await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, producer, return_exceptions=True)
        return upstream, follower, published, stale_seen

    upstream, follower, published, stale_seen = asyncio.run(session())
    status = follower.status
    print(status, len(published))
    # nothing invalid: every value published is one the upstream really had ...
    for key in KEYS:
        mine = [fen for k, fen in published if k == key]
        # ... in the upstream's order, never the same value twice in a row
        assert is_ordered_subsequence(mine, upstream.history[key]), key
        assert all(a != b for a, b in itertools.pairwise(mine)), key
    assert status.rejected >= 1 and status.held >= 1, status  # NaN/negative, and the 10x
    assert status.duplicates >= 1 and status.gaps >= 1, status
    assert status.reconnects >= 1, status  # the stall
    assert True in stale_seen and stale_seen[-1] is False  # went stale, recovered
    assert follower.last == upstream.truth  # ends on the upstream's state
