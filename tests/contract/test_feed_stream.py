"""The feed stream on a real Redis: the publisher checkpoints as it goes (not only at
start), and a subscriber that comes late, starting from the latest checkpoint and
following the stream, ends with the same channel states as the publisher."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from feeds.hub import Hub, Item
from feeds.protocol import message
from feeds.redis_bus import STREAM, RedisPublisher, RedisSubscriber
from tests.conftest import redis_url

CHANNEL = "trades:ebike:330522"


def item(seq: int) -> Item:
    data: dict[str, Any] = {"trades": [{"trade_id": seq, "price_fen_per_t": 1_000_000 + seq}]}
    return (CHANNEL, seq, "update", data, message(CHANNEL, seq, "update", data, 0))


def test_checkpoints_as_it_goes_and_a_late_subscriber_catches_up() -> None:
    url = redis_url()

    async def session() -> None:
        publisher = RedisPublisher(url, checkpoint_s=0.1)
        writer = asyncio.create_task(publisher.run())
        publisher.reset("epoch-1", {})
        for seq in range(1, 41):
            publisher.send([item(seq)])
            await asyncio.sleep(0.02)
        client = aioredis.Redis.from_url(url)
        for _ in range(100):
            entries: Any = await client.xrange(STREAM)
            if entries and b"b" in entries[-1][1] and len(entries) >= 41:
                break
            await asyncio.sleep(0.05)
        checkpoints = [e for e in entries if b"c" in e[1]]
        assert len(checkpoints) >= 3, len(checkpoints)  # not only the first one

        hub = Hub()
        follower = RedisSubscriber(url, hub, block_ms=100)
        reader = asyncio.create_task(follower.run())
        for _ in range(100):
            if hub.folds.seq(CHANNEL) == 40:
                break
            await asyncio.sleep(0.05)
        assert hub.epoch == "epoch-1"
        assert hub.folds.export() == publisher.folds.export()
        for task in (writer, reader):
            task.cancel()
        await asyncio.gather(writer, reader, return_exceptions=True)
        for closing in (publisher.close(), follower.close(), client.aclose()):
            await closing

    asyncio.run(session())
