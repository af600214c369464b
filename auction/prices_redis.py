"""The Redis backend of the price state (redis-py asyncio, hiredis).

Atomic updates are the Lua scripts in ``auction/lua``, registered at start-up (redis-py
loads them again by itself after a Redis restart).  Keys, under one prefix:

- ``<p>:day``: the current Asia/Shanghai day; missing means the store is empty;
- ``<p>:m:<day>``: the markets with prints that day; ``<p>:s:<day>:<market>`` their
  aggregates (hash) and ``…:b`` their buyers (set);
- ``<p>:q`` / ``<p>:qpos``: each price slot's latest quote (JSON) and its position;
- ``<p>:settle``: each market's latest settlement (JSON).

Every failure to reach Redis comes out as ``ConnectionError``: the price service marks
its state stale and rebuilds; trading never waits for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from auction.prices import Aggregate, Print, Quote, Settlement, Snapshot, honour_cancellation

T = TypeVar("T")
_quote_decoder = msgspec.json.Decoder(Quote)
_settlement_decoder = msgspec.json.Decoder(Settlement)


def _script(name: str) -> str:
    return resources.files("auction").joinpath(f"lua/{name}.lua").read_text()


class RedisPrices:
    def __init__(self, url: str, prefix: str = "auction:px", timeout_s: float = 0.5) -> None:
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.prefix = prefix
        self._prints = self.client.register_script(_script("prints"))
        self._quotes = self.client.register_script(_script("quotes"))
        self._start_day = self.client.register_script(_script("start_day"))
        self._read = self.client.register_script(_script("read"))

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except (RedisError, OSError) as err:
            honour_cancellation()  # a timeout may be our own cancellation, swallowed
            raise ConnectionError(f"redis: {err}") from err

    async def close(self) -> None:
        await self.client.aclose()

    async def day(self) -> str | None:
        raw = await self._call(lambda: self.client.get(f"{self.prefix}:day"))
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def start_day(self, day: str, *, create: bool = False) -> bool:
        args = [day, "create" if create else ""]
        done = await self._call(lambda: self._start_day(keys=[self.prefix], args=args))
        return int(done) >= 0

    async def add_prints(self, prints: list[Print]) -> bool:
        if not prints:
            return True
        args: list[Any] = []
        for p in prints:
            args += [p.pos, p.day, p.market, p.price_fen_per_t, p.weight_kg,
                     p.price_fen_per_t * p.weight_kg, p.buyer]  # fmt: skip
        done = await self._call(lambda: self._prints(keys=[self.prefix], args=args))
        return int(done) >= 0

    async def add_quotes(self, quotes: list[Quote]) -> bool:
        if not quotes:
            return True
        args: list[Any] = []
        for q in quotes:
            args += [q.slot, q.pos, msgspec.json.encode(q)]
        done = await self._call(lambda: self._quotes(keys=[self.prefix], args=args))
        return int(done) >= 0

    async def set_settlements(self, settlements: dict[str, Settlement]) -> None:
        if settlements:
            mapping: dict[Any, Any] = {m: msgspec.json.encode(s) for m, s in settlements.items()}
            await self._call(lambda: self.client.hset(f"{self.prefix}:settle", mapping=mapping))

    async def read(self) -> Snapshot:
        day, markets, quotes, settlements = await self._call(lambda: self._read(keys=[self.prefix]))
        aggs = {}
        for row in markets:
            f = dict(zip(row[::2], row[1::2], strict=True))
            aggs[f[b"market"].decode()] = Aggregate(
                open=int(f[b"open"]),
                high=int(f[b"high"]),
                low=int(f[b"low"]),
                last=int(f[b"last"]),
                volume_kg=int(f[b"volume"]),
                trades=int(f[b"trades"]),
                notional=int(f[b"notional"]),
                buyers=int(f[b"buyers"]),
                pos=int(f[b"pos"]),
            )
        held = [_quote_decoder.decode(v) for v in quotes[1::2]]
        settled = {
            k.decode(): _settlement_decoder.decode(v)
            for k, v in zip(settlements[::2], settlements[1::2], strict=True)
        }
        return (day.decode() if day else None), aggs, held, settled

    async def clear(self) -> None:
        async def wipe() -> None:
            keys = [k async for k in self.client.scan_iter(match=f"{self.prefix}:*", count=1000)]
            if keys:
                await self.client.delete(*keys)

        await self._call(wipe)
