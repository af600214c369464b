"""The async shell around the pure engine: one writer, a bounded queue, timers.

``Runner`` owns an ``Engine``; nothing else touches it.  Commands arrive through
``submit`` into a bounded queue and are applied one at a time in arrival order, each
at the clock's ``now`` (never earlier than the previous one, even if the wall clock
steps back).  Between commands the runner waits for whichever comes first, the next
command or the engine's next deadline, through the injected clock, and fires due
deadlines with ``ExpireDue``: auction closes, soft-close extensions (a close that moved
is just a later deadline), acceptance lapses and expiries happen on time even when no
one is trading.  The engine itself never sleeps.

The journal (group commit before replying) and batching come with issue 4; this is the
single-writer and timer skeleton they plug into.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from auction.clock import Clock
from auction.engine import Engine
from auction.errors import ClientError
from auction.messages import AnyCommand, AnyEvent, ExpireDue

Publish = Callable[[list[AnyEvent]], None]

_Item = tuple[AnyCommand, "asyncio.Future[list[AnyEvent]]"]


class Overloaded(ClientError):
    def __init__(self) -> None:
        super().__init__("overloaded", "the engine's queue is full; try again shortly")


class Runner:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        max_queue: int = 10_000,
        publish: Publish | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_queue)
        self._publish = publish
        self._last: datetime | None = None

    async def submit(self, command: AnyCommand) -> list[AnyEvent]:
        """Queue ``command``; returns its events once applied.  ``Overloaded`` if full."""
        future: asyncio.Future[list[AnyEvent]] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((command, future))
        except asyncio.QueueFull:
            raise Overloaded() from None
        return await future

    def _now(self) -> datetime:
        now = self.clock.now()
        if self._last is not None and now < self._last:
            now = self._last
        self._last = now
        return now

    def _apply(self, command: AnyCommand) -> list[AnyEvent]:
        events = self.engine.apply(command, self._now())
        if events and self._publish is not None:
            self._publish(events)
        return events

    async def run(self) -> None:
        """Apply commands and fire deadlines until cancelled."""
        while True:
            item = await self._next_item()
            if item is None:
                self._apply(ExpireDue())
                continue
            command, future = item
            try:
                events = self._apply(command)
            except Exception as err:  # a broken invariant: tell the caller, stop the writer
                if not future.done():
                    future.set_exception(err)
                raise
            if not future.done():
                future.set_result(events)

    async def _next_item(self) -> _Item | None:
        """The next command, or None when a deadline is due first."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        deadline = self.engine.next_deadline()
        if deadline is None:
            return await self._queue.get()
        getter = asyncio.ensure_future(self._queue.get())
        sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
        try:
            await asyncio.wait({getter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None
