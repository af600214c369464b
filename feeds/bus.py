"""Between the sequencer and the hubs: in this process, or through Redis for many."""

from __future__ import annotations

from typing import Any

from feeds.hub import Hub, Item


class LocalBus:
    """The sequencer and the one hub share a process: messages go straight across."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def reset(self, epoch: str, exported: dict[str, Any]) -> None:
        self.hub.reset(epoch, exported)

    def send(self, items: list[Item]) -> None:
        self.hub.deliver(items)
