"""A test client for ``/v1/ws`` that keeps what a screen keeps: per-channel seq, checked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class GapError(AssertionError):
    pass


class Feed:
    """One connection.  ``messages`` keeps every channel message in order; each update
    must follow the last seq seen on its channel (``GapError`` otherwise)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}
        self.messages: list[dict[str, Any]] = []
        self.inbox: list[dict[str, Any]] = []  # channel messages no ``until`` took yet
        self.controls: list[dict[str, Any]] = []
        self.seq: dict[str, int] = {}
        self.resume = ""
        self.check_gaps = True

    @classmethod
    async def open(cls, url: str, headers: dict[str, str] | None = None) -> Feed:
        ws = await connect(url, additional_headers=headers or {}, max_size=2**24)
        feed = cls(ws)
        feed.welcome = await feed.next_control("welcome")
        feed.resume = feed.welcome["resume"]
        return feed

    async def _read(self, timeout: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout):  # no task per message, as wait_for makes
            raw = await self.ws.recv()
        msg: dict[str, Any] = json.loads(raw)
        channel: str = msg.get("channel", "")
        if msg["type"] not in ("snapshot", "update"):
            self.controls.append(msg)
            if "resume" in msg:
                self.resume = msg["resume"]
            return msg
        self.messages.append(msg)
        self.inbox.append(msg)
        last = self.seq.get(channel)
        if msg["type"] == "snapshot":
            self.seq[channel] = msg["seq"]
        elif last is not None and msg["seq"] <= last:
            pass  # older than the snapshot it followed: already in it
        else:
            conflated = channel == "board" or channel.startswith("stats:")
            if self.check_gaps and not conflated and last is not None and msg["seq"] != last + 1:
                raise GapError(f"{channel}: seq {msg['seq']} after {last}")
            self.seq[channel] = msg["seq"]
        return msg

    async def next_control(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            msg = await self._read(timeout)
            if msg.get("type") == kind:
                return msg

    async def until(self, channel: str, match: Any = None, timeout: float = 5.0) -> dict[str, Any]:
        """The first message on ``channel`` not taken yet for which ``match(msg)`` holds
        (those before it on that channel are taken too), reading as needed."""
        for i, msg in enumerate(self.inbox):
            if msg["channel"] == channel and (match is None or match(msg)):
                before = [m for m in self.inbox[:i] if m["channel"] != channel]
                self.inbox = before + self.inbox[i + 1 :]
                return msg
        self.inbox = [m for m in self.inbox if m["channel"] != channel]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self._read(max(0.01, deadline - loop.time()))
            if msg.get("channel") == channel and msg["type"] in ("snapshot", "update"):
                self.inbox.remove(msg)
                if match is None or match(msg):
                    return msg

    async def send(self, op: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(op))

    async def subscribe(self, channel: str, since: int | None = None) -> dict[str, Any]:
        op: dict[str, Any] = {"op": "subscribe", "channel": channel}
        if since is not None:
            op["since"] = since
        await self.send(op)
        ack = await self.next_control("subscribed")
        assert ack["channel"] == channel or ack["channel"].startswith(channel + ":"), ack
        return ack

    async def close(self) -> None:
        await self.ws.close()
