"""What each channel shows, folded from its messages: the snapshot a new subscriber gets.

Every process that serves subscribers folds the same sequenced messages, so a snapshot
taken anywhere at ``seq`` N is the same.  A message of type ``snapshot`` replaces the
state; an ``update`` is folded in:

- ``book:M``: ``{"bids": [[price, qty_kg, orders], ...], "asks": [...]}``, best first;
  an update lists the levels that changed, ``qty_kg`` 0 for a level gone.
- ``trades:M``: ``{"trades": [...]}``, the last ``TRADES_KEPT`` (oldest first).
- ``board``, ``stats:M``, ``auction:L``: keyed values; an update's dict values are
  merged one level deep (a market's row, a quote's slot), other values replace.
- ``private:P``: ``{"buying_power": ..., "recent": [...]}``, the last ``RECENT_KEPT``
  notices; an update is one notice.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from feeds.protocol import kind_of

TRADES_KEPT: Final = 50
RECENT_KEPT: Final = 20
ROOMS_KEPT: Final = 20_000


class _Book:
    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, tuple[int, int]] = {}
        self.asks: dict[int, tuple[int, int]] = {}

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "snapshot":
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, data.get("bids", ())), (self.asks, data.get("asks", ()))):
            for price, qty, orders in levels:
                if qty:
                    side[price] = (qty, orders)
                else:
                    side.pop(price, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "bids": [[p, *self.bids[p]] for p in sorted(self.bids, reverse=True)],
            "asks": [[p, *self.asks[p]] for p in sorted(self.asks)],
        }


class _Trades:
    __slots__ = ("trades",)

    def __init__(self) -> None:
        self.trades: deque[Any] = deque(maxlen=TRADES_KEPT)

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "snapshot":
            self.trades.clear()
        self.trades.extend(data.get("trades", ()))

    def snapshot(self) -> dict[str, Any]:
        return {"trades": list(self.trades)}


class _Keyed:
    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "snapshot":
            self.values = {}
        merge(self.values, data)

    def snapshot(self) -> dict[str, Any]:
        return {k: dict(v) if isinstance(v, dict) else v for k, v in self.values.items()}


class _Private:
    __slots__ = ("buying_power", "recent")

    def __init__(self) -> None:
        self.buying_power: Any = None
        self.recent: deque[Any] = deque(maxlen=RECENT_KEPT)

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "snapshot":
            self.buying_power = data.get("buying_power")
            self.recent = deque(data.get("recent", ()), maxlen=RECENT_KEPT)
            return
        if data.get("event") == "buying_power":
            self.buying_power = {k: v for k, v in data.items() if k != "event"}
        self.recent.append(data)

    def snapshot(self) -> dict[str, Any]:
        return {"buying_power": self.buying_power, "recent": list(self.recent)}


State = _Book | _Trades | _Keyed | _Private
_KINDS: dict[str, type[State]] = {
    "book": _Book,
    "trades": _Trades,
    "board": _Keyed,
    "stats": _Keyed,
    "auction": _Keyed,
    "private": _Private,
}


def merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    """Fold an update into keyed values: dicts one level deep, the rest replaced."""
    for key, value in data.items():
        if key == "event":
            continue
        current = into.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            current.update(value)
        elif isinstance(value, dict):
            into[key] = dict(value)
        else:
            into[key] = value


class Folds:
    """Every channel's state and the ``seq`` it is at."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[int, State]] = {}
        self._rooms: deque[str] = deque()  # auction rooms, oldest first

    def apply(self, channel: str, seq: int, kind: str, data: dict[str, Any]) -> None:
        entry = self.states.get(channel)
        if entry is None:
            state = _KINDS[kind_of(channel)]()
            if channel.startswith("auction:"):
                self._rooms.append(channel)
                if len(self._rooms) > ROOMS_KEPT:
                    self.states.pop(self._rooms.popleft(), None)
        else:
            state = entry[1]
        state.apply(kind, data)
        self.states[channel] = (seq, state)

    def seq(self, channel: str) -> int:
        entry = self.states.get(channel)
        return entry[0] if entry else 0

    def snapshot(self, channel: str) -> tuple[int, dict[str, Any]] | None:
        entry = self.states.get(channel)
        return None if entry is None else (entry[0], entry[1].snapshot())

    def export(self) -> dict[str, tuple[int, dict[str, Any]]]:
        return {ch: (seq, state.snapshot()) for ch, (seq, state) in self.states.items()}

    @classmethod
    def load(cls, exported: dict[str, Any]) -> Folds:
        folds = cls()
        for channel, (seq, data) in exported.items():
            folds.apply(channel, seq, "snapshot", data)
        return folds
