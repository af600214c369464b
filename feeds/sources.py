"""Ingest of upstream and end-of-chain prices (上游报价, 回收行情) from outside feeds,
and the price simulator the demo runs.

``Follower`` follows one external websocket feed.  The feed's messages (JSON)::

    {"type": "snapshot", "seq": 41, "prices": {"lead": 16850.0, "ebike": 10125.0}}
    {"type": "price", "seq": 42, "key": "lead", "price_yuan_per_t": 16875.0}
    {"type": "heartbeat", "seq": 42}

and the one request it takes: ``{"op": "snapshot"}``.  The follower (BAD_INPUTS.md,
"Upstream price feeds"):

- drops a duplicate or older ``seq``; holds a message that comes early for up to
  ``reorder_window`` messages, waiting for the ones before it; a gap it cannot fill is a
  gap: the source is marked stale and asks for a snapshot;
- rejects and counts NaN, infinite, zero, negative or absurd prices and unknown keys,
  keeping the last good value;
- holds for review (never publishes) a price more than ``band_bp`` away from the last
  published one;
- publishes a key only when its value changed, in the feed's order;
- marks the source stale when the feed is silent ``stale_after_s``, and reconnects with
  jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from auction.messages import PublishPrice, Rejected
from auction.money import MAX_PRICE_FEN_PER_T
from auction.types import PrincipalId

log = logging.getLogger("auction.feeds")

Publish = Callable[[str, int], Awaitable[bool]]
"""Publish ``(key, price_fen_per_t)``; False if the engine refused it."""


@dataclass
class SourceStatus:
    stale: bool = True
    last_seq: int = 0
    published: int = 0
    rejected: int = 0
    held: int = 0
    duplicates: int = 0
    gaps: int = 0
    reconnects: int = 0
    held_values: dict[str, int] = field(default_factory=dict)
    """Prices held for review, by key: the latest of each."""


@dataclass
class Follower:
    name: str
    url: str
    keys: frozenset[str]
    publish: Publish
    on_status: Callable[[SourceStatus], None] = lambda status: None
    band_bp: int = 2000
    stale_after_s: float = 10.0
    reorder_window: int = 8
    backoff_s: tuple[float, float] = (0.2, 10.0)
    rng: random.Random = field(default_factory=random.Random)
    status: SourceStatus = field(default_factory=SourceStatus)
    last: dict[str, int] = field(default_factory=dict)
    """What was published last, by key."""

    def __post_init__(self) -> None:
        self._early: dict[int, dict[str, Any]] = {}

    # -- the connection -----------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                async with connect(self.url, open_timeout=5, max_size=1 << 20) as ws:
                    failures = 0
                    await ws.send('{"op": "snapshot"}')
                    while True:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), self.stale_after_s)
                        except TimeoutError:
                            log.warning(
                                "price feed %s silent for %ss", self.name, self.stale_after_s
                            )
                            self._mark_stale()
                            break  # reconnect
                        if await self.handle(raw) == "resync":
                            await ws.send('{"op": "snapshot"}')
            except (OSError, WebSocketException, TimeoutError) as err:
                log.warning("price feed %s: %r", self.name, err)
            self._mark_stale()
            self.status.reconnects += 1
            failures += 1
            low, high = self.backoff_s
            delay = min(high, low * 2 ** min(failures, 10))
            await asyncio.sleep(self.rng.uniform(delay / 2, delay))  # jitter: no herd

    def _mark_stale(self) -> None:
        self._early.clear()
        if not self.status.stale:
            self.status.stale = True
            self.on_status(self.status)

    # -- messages -----------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> str | None:
        """One message from the feed; ``"resync"`` when a snapshot is needed."""
        try:
            msg = json.loads(raw)  # the standard parser: NaN gets through, to be rejected
            kind = msg["type"]
            seq = msg["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError(seq)
        except (ValueError, KeyError, TypeError):
            self.status.rejected += 1
            return None
        if kind == "snapshot":
            return await self._snapshot(seq, msg.get("prices"))
        if kind == "heartbeat":  # the feed's position: behind it means we missed some
            if seq > max(self.status.last_seq, *self._early, 0) and not self.status.stale:
                self.status.gaps += 1
                self._mark_stale()
                return "resync"
            return None
        if kind != "price":
            self.status.rejected += 1
            return None
        if seq <= self.status.last_seq:
            self.status.duplicates += 1
            return None
        if self.status.stale and self.status.last_seq == 0:
            return None  # nothing to go on from until the snapshot asked for on connect
        if seq > self.status.last_seq + 1:
            self._early[seq] = msg
            if len(self._early) > self.reorder_window:
                self.status.gaps += 1
                self._mark_stale()
                return "resync"
            return None
        await self._one(msg)
        while self.status.last_seq + 1 in self._early:
            await self._one(self._early.pop(self.status.last_seq + 1))
        return None

    async def _one(self, msg: dict[str, Any]) -> None:
        self.status.last_seq = msg["seq"]
        await self._price(msg.get("key"), msg.get("price_yuan_per_t"))
        if self.status.stale and not self._early:
            self.status.stale = False
        self.on_status(self.status)

    async def _snapshot(self, seq: int, prices: Any) -> str | None:
        if not isinstance(prices, dict) or seq < self.status.last_seq:
            self.status.rejected += 1
            return None
        for key in sorted(prices):
            await self._price(key, prices[key])
        self.status.last_seq = seq
        self._early = {s: m for s, m in self._early.items() if s > seq}
        while seq + 1 in self._early:
            seq += 1
            await self._one(self._early.pop(seq))
        self.status.stale = False
        self.on_status(self.status)
        return None

    async def _price(self, key: Any, yuan: Any) -> None:
        fen = _fen(yuan)
        if not isinstance(key, str) or key not in self.keys or fen is None:
            self.status.rejected += 1
            return
        last = self.last.get(key)
        if last == fen:
            return
        if last is not None and abs(fen - last) * 10_000 > last * self.band_bp:
            self.status.held += 1
            self.status.held_values[key] = fen
            return
        if await self.publish(key, fen):
            self.last[key] = fen
            self.status.published += 1
            self.status.held_values.pop(key, None)
        else:
            self.status.rejected += 1


def _fen(yuan: Any) -> int | None:
    if isinstance(yuan, bool) or not isinstance(yuan, (int, float)):
        return None
    if not math.isfinite(yuan) or yuan <= 0:
        return None
    fen = round(yuan * 100)
    return fen if 0 < fen <= MAX_PRICE_FEN_PER_T else None


# -- the simulator ------------------------------------------------------------------------

RATIOS = {
    "ebike": 0.600,
    "auto_white": 0.594,
    "auto_black": 0.612,
    "motorcycle": 0.590,
    "industrial": 0.585,
}
"""Waste battery / lead ingot, per category (DOMAIN.md: about 0.58-0.65; car batteries
± ¥100-300/t around e-bike, black shell above white)."""


@dataclass
class PriceSimulator:
    """A lead price random walk (SMM 1# lead, ¥15,500-17,300/t), and the end-of-chain
    price of each waste-battery category following it at its ratio with a little noise
    of its own.  Prices in fen per tonne, steps in whole yuan."""

    rng: random.Random = field(default_factory=lambda: random.Random(7))
    lead_fen: int = 1_680_000
    low_fen: int = 1_550_000
    high_fen: int = 1_730_000

    def step(self) -> dict[str, int]:
        move = round(self.rng.gauss(0, 40)) * 100  # a few tens of yuan a tick
        self.lead_fen = min(self.high_fen, max(self.low_fen, self.lead_fen + move))
        prices = {"lead": self.lead_fen}
        for category, ratio in RATIOS.items():
            noise = round(self.rng.gauss(0, 15)) * 100
            prices[category] = round(self.lead_fen * ratio / 100) * 100 + noise
        return prices


def engine_publisher(
    submit: Callable[..., Awaitable[Any]], kind: str, publisher: str, *, vat_included: bool = True
) -> Publish:
    """Publish through the runner (journaled, like any published price)."""

    async def publish(key: str, fen: int) -> bool:
        command = PublishPrice(
            kind=kind,  # type: ignore[arg-type]
            key=key,
            publisher=PrincipalId(publisher),
            price_fen_per_t=fen,
            vat_included=vat_included,
        )
        try:
            answer = await submit(command, principal=publisher)
        except Exception as err:  # the journal is away: try again with the next value
            log.warning("publishing %s=%s failed: %r", key, fen, err)
            return False
        return not any(isinstance(e, Rejected) for e in answer.events)

    return publish


async def simulate(publish: Publish, every_s: float, sim: PriceSimulator | None = None) -> None:
    """Publish the simulator's end-of-chain prices every ``every_s``."""
    sim = sim or PriceSimulator()
    while True:
        for key, fen in sim.step().items():
            await publish(key, fen)
        await asyncio.sleep(every_s)
