"""Injected time.  The engine never reads a clock: its shells pass ``now`` in.

``LiveClock`` is what the service uses; ``ManualClock`` is what tests and replays use.
Both hand out aware UTC datetimes only, and both can be waited on (``sleep_until``), so
that the runner's timers fire through whichever clock it was given: a test moves a
``ManualClock`` and the runner wakes exactly then, with no real sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Protocol

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
"""The trade's calendar.  China has kept UTC+8 without daylight saving since 1991, so a
fixed offset is exact and needs no time-zone database on the machine."""


def shanghai_day(at: datetime) -> date:
    """The Asia/Shanghai calendar day of an aware instant."""
    return at.astimezone(SHANGHAI).date()


def shanghai_midnight(day: date) -> datetime:
    """The instant (UTC) the Asia/Shanghai ``day`` begins."""
    return datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""
        ...


class LiveClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        while (delay := (when - self.now()).total_seconds()) > 0:
            await asyncio.sleep(delay)


class ManualClock:
    """A clock that moves only when told to; never backwards."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start
        self._moved = asyncio.Condition()
        self._waker: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= when)

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time does not go backwards")
        return self._move(self._now + delta)

    def set(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        if when < self._now:
            raise ValueError("time does not go backwards")
        return self._move(when)

    def _move(self, when: datetime) -> datetime:
        self._now = when
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return when  # nobody can be waiting outside a loop
        self._waker = loop.create_task(self._notify())
        return when

    async def _notify(self) -> None:
        async with self._moved:
            self._moved.notify_all()
