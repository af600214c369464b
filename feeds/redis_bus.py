"""The feed through Redis, for any number of web processes (``AUCTION_REDIS_URL``).

One stream, ``auction:feed``.  The engine process's ``RedisPublisher`` appends, in the
sequencer's order, an entry per batch of sequenced messages (``b``) and, at start and
then at most every ``checkpoint_s`` while something changes, a checkpoint of every
channel's state (``c``), whose id it keeps in ``auction:feed:checkpoint``.  Every
process that serves subscribers runs a ``RedisSubscriber``: it loads the latest
checkpoint into its hub, then follows the stream from there.  So all of them fold the
same messages with the same ``seq`` and give the same snapshots.

A subscriber that finds a message out of sequence (it fell behind the stream's trim, or
Redis lost the stream) or loses Redis starts again from the latest checkpoint and closes
its connections with 4009, so their clients resubscribe from a snapshot; a checkpoint
of a new epoch (the engine restarted) does the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from auction.prices import honour_cancellation
from feeds.hub import Hub, Item
from feeds.state import Folds

log = logging.getLogger("auction.feeds")

STREAM = "auction:feed"
CHECKPOINT = "auction:feed:checkpoint"

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.decode
_json = msgspec.json.Decoder()


class _Batch(msgspec.Struct, array_like=True):
    epoch: str
    items: list[tuple[str, int, str, bytes]]


class _Checkpoint(msgspec.Struct, array_like=True):
    epoch: str
    states: dict[str, tuple[int, dict[str, Any]]]


class RedisPublisher:
    """The sequencer's bus: the stream, in order, from one task."""

    def __init__(
        self,
        url: str,
        *,
        maxlen: int = 100_000,
        checkpoint_s: float = 1.0,
        max_pending: int = 100_000,
    ) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.maxlen = maxlen
        self.checkpoint_s = checkpoint_s
        self.epoch = ""
        self.folds = Folds()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(max_pending)
        self._changed = False
        self.dropped = 0

    def reset(self, epoch: str, exported: dict[str, Any]) -> None:
        self.epoch = epoch
        self.folds = Folds.load(exported)
        self._changed = True
        self._queue.put_nowait(None)  # a checkpoint first

    def send(self, items: list[Item]) -> None:
        for channel, seq, kind, data, _ in items:
            self.folds.apply(channel, seq, kind, data)
        self._changed = True
        entry = _encode(_Batch(self.epoch, [(c, s, k, p) for c, s, k, _, p in items]))
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            # Redis is away for long: drop, and checkpoint when it is back (subscribers
            # see the gap, and start again from that checkpoint)
            self.dropped += 1

    async def run(self) -> None:
        last_checkpoint = 0.0
        while True:
            honour_cancellation()
            entries = [await self._queue.get()]
            while not self._queue.empty() and len(entries) < 500:
                entries.append(self._queue.get_nowait())
            batches = [e for e in entries if e is not None]
            checkpoint = None in entries or (
                self._changed and time.monotonic() - last_checkpoint >= self.checkpoint_s
            )
            while True:
                try:
                    await self._write(batches, checkpoint)
                    break
                except (RedisError, OSError) as err:
                    honour_cancellation()
                    log.warning("feed stream unavailable, retrying: %s", err)
                    batches, checkpoint = [], True  # what went missing: a checkpoint covers it
                    await asyncio.sleep(0.5)
            if checkpoint:
                last_checkpoint = time.monotonic()

    async def _write(self, batches: list[bytes], checkpoint: bool) -> None:
        pipe = self.client.pipeline(transaction=False)
        for entry in batches:
            pipe.xadd(STREAM, {"b": entry}, maxlen=self.maxlen, approximate=True)
        if checkpoint:
            state = _encode(_Checkpoint(self.epoch, self.folds.export()))
            self._changed = False  # what is sent from now on is for the next one
            pipe.xadd(STREAM, {"c": state}, maxlen=self.maxlen, approximate=True)
        ids = await pipe.execute()
        if checkpoint:
            await self.client.set(CHECKPOINT, ids[-1])

    async def close(self) -> None:
        await self.client.aclose()


class RedisSubscriber:
    """Feed one hub from the stream."""

    def __init__(self, url: str, hub: Hub, *, block_ms: int = 1000) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=block_ms / 1000 + 2.0)
        self.hub = hub
        self.block_ms = block_ms
        self.restarts = 0

    async def run(self) -> None:
        last: bytes | None = None
        while True:
            honour_cancellation()
            try:
                if last is None:
                    last = await self._bootstrap()
                    if last is None:
                        await asyncio.sleep(0.2)  # no checkpoint yet: the engine is starting
                        continue
                last = await self._follow(last)
            except (RedisError, OSError) as err:
                honour_cancellation()
                log.warning("feed stream unavailable, starting again: %s", err)
                last = None
                await asyncio.sleep(0.5)

    async def _bootstrap(self) -> bytes | None:
        cid: Any = await self.client.get(CHECKPOINT)
        if cid is None:
            return None
        entries: Any = await self.client.xrange(STREAM, cid, cid)
        if not entries:
            return None
        _, fields = entries[0]
        # after the first start, what we had may have gaps: every client resyncs
        self._load(_decode(fields[b"c"], type=_Checkpoint), force=self.restarts > 0)
        self.restarts += 1
        return bytes(cid)

    def _load(self, cp: _Checkpoint, *, force: bool) -> None:
        self.hub.reset(cp.epoch, dict(cp.states), force=force)

    async def _follow(self, last: bytes) -> bytes | None:
        """Deliver entries after ``last``; the id to go on from, or None to start again."""
        answer: Any = await self.client.xread({STREAM: last}, count=500, block=self.block_ms)
        for _, entries in answer or ():
            for entry_id, fields in entries:
                if b"c" in fields:
                    cp = _decode(fields[b"c"], type=_Checkpoint)
                    if cp.epoch != self.hub.epoch:
                        self._load(cp, force=False)
                elif b"b" in fields:
                    batch = _decode(fields[b"b"], type=_Batch)
                    if batch.epoch != self.hub.epoch:
                        continue  # an old epoch's tail
                    items: list[Item] = []
                    folds = self.hub.folds
                    at: dict[str, int] = {}
                    for channel, seq, kind, payload in batch.items:
                        current = at.get(channel)
                        if current is None:
                            current = folds.seq(channel)
                        if seq <= current:
                            continue  # already in the checkpoint we started from
                        if kind != "snapshot" and seq != current + 1:
                            log.warning("feed gap on %s: %d after %d", channel, seq, current)
                            return None
                        at[channel] = seq
                        items.append((channel, seq, kind, _json.decode(payload)["data"], payload))
                    self.hub.deliver(items)
                last = entry_id
        return last

    async def close(self) -> None:
        await self.client.aclose()
