"""The hub: subscriptions, snapshots, the resume buffer and fan-out that never waits.

``deliver`` takes sequenced messages (from the sequencer in this process, or from Redis)
in order.  Each is folded into its channel's state (``Folds``, the snapshot a new
subscriber gets), kept in the resume buffer, and sent:

- **lossless channels** (book, trades, auction rooms, private): the frame is built once
  and written to every subscriber's transport in one pass, with no task or queue per
  subscriber.  A connection's queue is its transport's write buffer, bounded by
  ``max_buffer`` bytes; a message that would pass the bound closes the connection with
  4008 (slow consumer) instead, and the client resubscribes.
- **conflated channels** (``board``, ``stats:M``): updates are merged per key and sent
  at most once per tick of ``conflate_s`` (at once if the channel has sent nothing this
  tick, else at the start of the next).  A subscriber whose buffer is above
  ``low_water`` skips frames; once it drains it gets one snapshot with the latest of
  everything.  One that stays behind ``behind_close_s`` is closed as a slow consumer.

A connection writes frames straight to uvicorn's transport when it can (``Conn.fast``);
under any other ASGI server it falls back to a bounded queue and a writer task.  Frames
for one connection within one turn of the event loop go out in one write: a screen's
``board`` frame and its market's ``trades`` tape fall on the same tick (the sequencer
flushes the tape on it too), so a thousand screens cost a thousand writes a tick, not
two thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from feeds.protocol import (
    CLOSE_POLICY,
    CLOSE_RESET,
    CLOSE_SLOW_CONSUMER,
    CONFLATED_KINDS,
    control,
    kind_of,
    message,
    now_ms,
    text_frame,
    tick_of,
    tick_start,
)
from feeds.state import Folds, merge

log = logging.getLogger("auction.feeds")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Item = tuple[str, int, str, dict[str, Any], bytes]
"""``(channel, seq, type, data, payload)``: one sequenced message, encoded once."""


@dataclass
class FeedStats:
    connections: int = 0
    opened: int = 0
    closed_slow: int = 0
    closed_policy: int = 0
    frames: int = 0
    skipped: int = 0
    messages: int = 0
    resets: int = 0
    resumed: int = 0
    snapshots: int = 0


class Conn:
    """One websocket connection as the hub sees it."""

    __slots__ = (
        "_abort",
        "_asgi_queue",
        "_asgi_ready",
        "_asgi_size",
        "_out",
        "_out_size",
        "behind",
        "behind_since",
        "close_code",
        "closed",
        "fast",
        "hub",
        "opened_at",
        "principal",
        "proto",
        "role",
        "send",
        "subs",
        "transport",
        "writer",
    )

    def __init__(self, hub: Hub, send: Send, principal: str, role: str) -> None:
        self.hub = hub
        self.send = send
        self.principal = principal
        self.role = role
        self.subs: set[str] = set()
        self.behind: set[str] = set()
        self.behind_since = 0.0
        self.closed = False
        self.close_code = 0
        self.opened_at = time.monotonic()
        self._abort: asyncio.TimerHandle | None = None
        self.writer: asyncio.Task[None] | None = None
        # uvicorn's sans-I/O websocket protocol: frames go straight to its transport
        proto = getattr(send, "__self__", None)
        transport = getattr(proto, "transport", None)
        self.fast = (
            transport is not None
            and hasattr(proto, "conn")
            and hasattr(proto, "close_sent")
            and hasattr(transport, "get_write_buffer_size")
        )
        self.proto: Any = proto if self.fast else None
        self.transport: Any = transport if self.fast else None
        self._out: list[bytes] = []  # frames for the transport at the end of this turn
        self._out_size = 0
        self._asgi_queue: deque[bytes] = deque()
        self._asgi_size = 0
        self._asgi_ready = asyncio.Event()
        if not self.fast:
            self.writer = asyncio.ensure_future(self._asgi_writer())

    def buffered(self) -> int:
        if self.fast:
            return int(self.transport.get_write_buffer_size()) + self._out_size
        return self._asgi_size

    def push(self, frame: bytes, payload: bytes) -> bool:
        """Queue one message; False (and the connection closed) if over the bound."""
        if self.closed:
            return False
        if self.buffered() + len(frame) > self.hub.max_buffer:
            self.hub.stats.closed_slow += 1
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: resubscribe for a snapshot")
            return False
        if self.fast:
            if self.proto.close_sent or self.transport.is_closing():
                return False
            if not self._out:
                self.hub.cork(self)
            self._out.append(frame)
            self._out_size += len(frame)
        else:
            self._asgi_queue.append(payload)
            self._asgi_size += len(payload)
            self._asgi_ready.set()
        return True

    def push_payload(self, payload: bytes) -> bool:
        return self.push(text_frame(payload), payload)

    def uncork(self) -> None:
        """Write the frames pushed this turn, in one write."""
        out, self._out, self._out_size = self._out, [], 0
        if out and not self.proto.close_sent and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def _asgi_writer(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                await self._asgi_ready.wait()
                self._asgi_ready.clear()
                while self._asgi_queue:
                    payload = self._asgi_queue.popleft()
                    self._asgi_size -= len(payload)
                    await self.send({"type": "websocket.send", "text": payload.decode()})
                if self.closed:
                    await self.send(
                        {"type": "websocket.close", "code": self.close_code, "reason": ""}
                    )
                    return

    def close(self, code: int, reason: str) -> None:
        """Stop serving this connection at once and start the closing handshake; a peer
        that does not read is cut off after ``abort_after_s``."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.hub.detach(self)
        if self.fast:
            self.uncork()  # what was pushed goes before the close frame
            proto, transport = self.proto, self.transport
            if not proto.close_sent and not transport.is_closing():
                proto.conn.send_close(code, reason)
                transport.write(b"".join(proto.conn.data_to_send()))
                proto.close_sent = True
            # uvicorn closes the transport when the peer echoes the close, or when the
            # handler ends; a peer that never reads is cut off after ``abort_after_s``
            loop = asyncio.get_running_loop()
            self._abort = loop.call_later(self.hub.abort_after_s, transport.abort)
            if getattr(proto, "close_timer", 0) is None:
                proto.close_timer = self._abort
        else:
            self._asgi_queue.clear()
            self._asgi_size = 0
            self._asgi_ready.set()

    def gone(self) -> None:
        """The peer went away (or the handler ended)."""
        if not self.closed:
            self.closed = True
            self.hub.detach(self)
        self._out.clear()
        self._out_size = 0
        if self._abort is not None:
            self._abort.cancel()
        if self.writer is not None:
            self.writer.cancel()


class Ring:
    """The resume buffer: the lossless messages of every channel from the last
    ``max_age_s`` seconds, up to ``max_bytes`` in all (the oldest go first).  A client
    back within that window gets what it missed; later, a snapshot.  The age bound keeps
    the buffer's memory level at a steady rate instead of filling to ``max_bytes`` over
    however long that takes; each entry counts its payload and ``ENTRY_BYTES`` besides."""

    ENTRY_BYTES = 128  # the tuple, the bytes object's header, the time, the deque slots

    def __init__(
        self,
        max_bytes: int,
        max_age_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.size = 0
        self.by_channel: dict[str, deque[tuple[int, bytes, float]]] = {}
        """Only channels with something held: a lot's room leaves once its last goes."""
        self._order: deque[str] = deque()  # the channel of each entry, oldest first
        self._clock = clock

    def add(self, channel: str, seq: int, payload: bytes) -> None:
        now = self._clock()
        kept = self.by_channel.get(channel)
        if kept is None:
            kept = self.by_channel[channel] = deque()
        kept.append((seq, payload, now))
        self._order.append(channel)
        self.size += len(payload) + self.ENTRY_BYTES
        too_old = now - self.max_age_s
        order, by_channel = self._order, self.by_channel
        while order:
            oldest = by_channel[order[0]]
            if self.size <= self.max_bytes and oldest[0][2] >= too_old:
                break
            _, gone, _ = oldest.popleft()
            self.size -= len(gone) + self.ENTRY_BYTES
            if not oldest:
                del by_channel[order[0]]
            order.popleft()

    def since(self, channel: str, seq: int, current: int) -> list[bytes] | None:
        """The messages after ``seq`` up to ``current``, or None if some are gone."""
        if seq == current:
            return []
        kept = self.by_channel.get(channel)
        if not kept or seq > current or kept[0][0] > seq + 1:
            return None
        return [payload for s, payload, _ in kept if s > seq]

    def clear(self) -> None:
        self.by_channel.clear()
        self._order.clear()
        self.size = 0


@dataclass
class Hub:
    max_buffer: int = 512 * 1024
    low_water: int = 64 * 1024
    conflate_s: float = 0.05
    heartbeat_s: float = 15.0
    idle_close_s: float = 5.0
    behind_close_s: float = 5.0
    abort_after_s: float = 2.0
    ring_bytes: int = 32 * 1024 * 1024
    ring_s: float = 60.0
    epoch: str = ""
    folds: Folds = field(default_factory=Folds)
    stats: FeedStats = field(default_factory=FeedStats)

    def __post_init__(self) -> None:
        self.subs: dict[str, dict[Conn, None]] = {}
        self.conns: dict[Conn, None] = {}
        self.ring = Ring(self.ring_bytes, self.ring_s)
        self._pending: dict[str, tuple[int, dict[str, Any]]] = {}
        self._flush_at: dict[str, asyncio.TimerHandle | asyncio.Handle] = {}
        self._last_tick: dict[str, int] = {}  # of each conflated channel's last frame
        self._corked: list[Conn] = []
        self._uncork_at: asyncio.Handle | None = None
        self.ready = asyncio.Event()

    # -- input ------------------------------------------------------------------------

    def reset(self, epoch: str, exported: dict[str, Any], *, force: bool = False) -> None:
        """Start from a checkpoint; a new epoch (or ``force``: what came before may have
        gaps) closes every connection with 4009, so that its client resyncs."""
        changed = force or (bool(self.epoch) and epoch != self.epoch)
        self.epoch = epoch
        self.folds = Folds.load(exported)
        self.ring.clear()
        self._pending.clear()
        for handle in self._flush_at.values():
            handle.cancel()
        self._flush_at.clear()
        self.ready.set()
        if changed:
            self.stats.resets += 1
            for conn in list(self.conns):
                conn.close(CLOSE_RESET, "the feed restarted: resubscribe")

    def deliver(self, items: Iterable[Item]) -> None:
        for channel, seq, kind, data, payload in items:
            self.stats.messages += 1
            self.folds.apply(channel, seq, kind, data)
            if kind_of(channel) in CONFLATED_KINDS:
                self._conflate(channel, seq, kind, data)
                continue
            self.ring.add(channel, seq, payload)
            subscribers = self.subs.get(channel)
            if subscribers:
                frame = text_frame(payload)
                for conn in list(subscribers):
                    if conn.push(frame, payload):
                        self.stats.frames += 1

    # -- conflation ---------------------------------------------------------------------

    def _conflate(self, channel: str, seq: int, kind: str, data: dict[str, Any]) -> None:
        if kind == "snapshot":
            self._pending.pop(channel, None)
            handle = self._flush_at.pop(channel, None)
            if handle is not None:
                handle.cancel()
            for conn in list(self.subs.get(channel, ())):
                self._send_snapshot(conn, channel)
            return
        pending = self._pending.get(channel)
        if pending is None:
            merged: dict[str, Any] = {}
            merge(merged, data)
            self._pending[channel] = (seq, merged)
        else:
            merge(pending[1], data)
            self._pending[channel] = (seq, pending[1])
        if channel not in self._flush_at:
            loop = asyncio.get_running_loop()
            now = tick_of(loop.time(), self.conflate_s)
            last = self._last_tick.get(channel, now - 1)
            if last < now:
                self._flush_at[channel] = loop.call_soon(self._flush, channel, now)
            else:
                due = tick_start(last + 1, self.conflate_s)
                self._flush_at[channel] = loop.call_at(due, self._flush, channel, last + 1)

    def _flush(self, channel: str, tick: int) -> None:
        self._flush_at.pop(channel, None)
        pending = self._pending.pop(channel, None)
        self._last_tick[channel] = tick
        subscribers = self.subs.get(channel)
        if pending is None or not subscribers:
            return
        payload = message(channel, pending[0], "update", pending[1], now_ms())
        frame = text_frame(payload)
        low = self.low_water
        for conn in list(subscribers):
            if conn.buffered() > low:
                if not conn.behind:
                    conn.behind_since = time.monotonic()
                conn.behind.add(channel)
                self.stats.skipped += 1
            elif channel in conn.behind:
                conn.behind.discard(channel)
                self._send_snapshot(conn, channel)
            elif conn.push(frame, payload):
                self.stats.frames += 1

    # -- writing ------------------------------------------------------------------------

    def cork(self, conn: Conn) -> None:
        """``conn`` has frames to write at the end of this turn of the event loop."""
        self._corked.append(conn)
        if self._uncork_at is None:
            self._uncork_at = asyncio.get_running_loop().call_soon(self._uncork)

    def _uncork(self) -> None:
        self._uncork_at = None
        corked, self._corked = self._corked, []
        for conn in corked:
            conn.uncork()

    # -- subscribers --------------------------------------------------------------------

    def attach(self, conn: Conn) -> None:
        self.conns[conn] = None
        self.stats.connections = len(self.conns)
        self.stats.opened += 1

    def detach(self, conn: Conn) -> None:
        for channel in conn.subs:
            subscribers = self.subs.get(channel)
            if subscribers is not None:
                subscribers.pop(conn, None)
                if not subscribers:
                    del self.subs[channel]
        conn.subs.clear()
        self.conns.pop(conn, None)
        self.stats.connections = len(self.conns)

    def subscribe(self, conn: Conn, channel: str, since: int | None) -> int:
        """Add ``conn`` to ``channel`` and send what it needs first: the messages after
        ``since`` when they are all still here, else a snapshot.  Returns the seq."""
        conn.subs.add(channel)
        self.subs.setdefault(channel, {})[conn] = None
        current = self.folds.seq(channel)
        if since is not None and kind_of(channel) not in CONFLATED_KINDS:
            missed = self.ring.since(channel, since, current)
            if missed is not None:
                self.stats.resumed += 1
                for payload in missed:
                    conn.push_payload(payload)
                return current
        self._send_snapshot(conn, channel)
        return current

    def unsubscribe(self, conn: Conn, channel: str) -> None:
        conn.subs.discard(channel)
        conn.behind.discard(channel)
        subscribers = self.subs.get(channel)
        if subscribers is not None:
            subscribers.pop(conn, None)
            if not subscribers:
                del self.subs[channel]

    def _send_snapshot(self, conn: Conn, channel: str) -> None:
        snap = self.folds.snapshot(channel)
        seq, data = snap if snap is not None else (0, empty(channel))
        self.stats.snapshots += 1
        conn.push_payload(message(channel, seq, "snapshot", data, now_ms()))

    # -- housekeeping -------------------------------------------------------------------

    async def run(self) -> None:
        """Heartbeats, and closing connections that never subscribed or stay behind."""
        next_beat = time.monotonic() + self.heartbeat_s
        while True:
            await asyncio.sleep(min(1.0, self.heartbeat_s))
            now = time.monotonic()
            beat = now >= next_beat
            beat_payload = control("heartbeat") if beat else b""
            frame = text_frame(beat_payload)
            if beat:
                next_beat = now + self.heartbeat_s
            for conn in list(self.conns):
                if not conn.subs and now - conn.opened_at > self.idle_close_s:
                    self.stats.closed_policy += 1
                    conn.close(CLOSE_POLICY, "no subscription")
                elif conn.behind and now - conn.behind_since > self.behind_close_s:
                    if conn.buffered() > self.low_water:
                        self.stats.closed_slow += 1
                        conn.close(CLOSE_SLOW_CONSUMER, "slow consumer: resubscribe")
                    else:  # drained meanwhile: catch up at once
                        for channel in list(conn.behind):
                            self._send_snapshot(conn, channel)
                        conn.behind.clear()
                elif beat:
                    conn.push(frame, beat_payload)

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.conns):
            conn.close(code, reason)


def empty(channel: str) -> dict[str, Any]:
    kind = kind_of(channel)
    if kind == "book":
        return {"bids": [], "asks": []}
    if kind == "trades":
        return {"trades": []}
    if kind == "private":
        return {"buying_power": None, "recent": []}
    return {}
