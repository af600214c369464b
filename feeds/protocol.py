"""The websocket protocol at ``/v1/ws``: channel names, client operations, server frames.

Every server message is one JSON text frame::

    {"channel": "book:ebike:330522", "seq": 42, "time_ms": 1795776960123,
     "type": "update", "data": {...}}

``seq`` counts per channel, from the channel's snapshot; ``time_ms`` is the server's
clock (Unix ms) when the message was made.  Control messages (``welcome``,
``subscribed``, ``unsubscribed``, ``error``, ``heartbeat``) carry ``type`` and no
channel.  A message is encoded once and its frame built once, whatever the number of
subscribers (``text_frame``).
"""

from __future__ import annotations

import math
import re
import struct
import time
from typing import Any, Final, Literal

import msgspec

# -- channels -----------------------------------------------------------------------------

PUBLIC_KINDS: Final = ("board", "stats", "book", "trades")
CONFLATED_KINDS: Final = frozenset({"board", "stats"})
"""Values per key (a market's row, a quote): a frame carries the latest of each, so a
screen that falls behind skips values, never gets stale ones, and needs no resync."""

_MARKET = r"[a-z_]{2,20}:[0-9]{6}"
CHANNEL_RE: Final = re.compile(
    rf"^(?:board|private(?::[A-Za-z0-9_.@-]{{1,40}})?|(?:stats|book|trades):{_MARKET}"
    r"|auction:[0-9]{1,15})$"
)
MAX_CHANNEL: Final = 64


def kind_of(channel: str) -> str:
    return channel.partition(":")[0]


def market_of(channel: str) -> str:
    return channel.partition(":")[2]


def private_channel(principal: str) -> str:
    return f"private:{principal}"


# -- client operations ------------------------------------------------------------------


class Op(msgspec.Struct, tag_field="op", forbid_unknown_fields=True):
    pass


class Subscribe(Op, tag="subscribe"):
    channel: str
    since: int | None = None
    """Resume after this ``seq``: what was missed if still buffered, else a snapshot."""


class Unsubscribe(Op, tag="unsubscribe"):
    channel: str


class Resume(Op, tag="resume"):
    """Reconnect: the token from ``welcome`` / ``subscribed`` names the channels; ``last``
    the last ``seq`` the client saw on each."""

    token: str
    last: dict[str, int] = {}


class Ping(Op, tag="ping"):
    id: int | None = None


ClientOp = Subscribe | Unsubscribe | Resume | Ping
decode_op = msgspec.json.Decoder(ClientOp).decode


# -- server messages ----------------------------------------------------------------------

MessageType = Literal["snapshot", "update"]
_encode = msgspec.json.Encoder().encode


def tick_of(loop_time: float, step: float) -> int:
    """The screens' tick (of ``step`` seconds on the event loop's clock) at ``loop_time``."""
    return math.floor(loop_time / step)


def tick_start(tick: int, step: float) -> float:
    """When ``tick`` begins.  The hub's conflated frames and the sequencer's tape both fire
    at this instant, so a screen's frames of a tick share one write."""
    return tick * step


def now_ms() -> int:
    return int(time.time() * 1000)


def message(channel: str, seq: int, kind: MessageType, data: Any, at_ms: int) -> bytes:
    return _encode({"channel": channel, "seq": seq, "time_ms": at_ms, "type": kind, "data": data})


def control(kind: str, **fields: Any) -> bytes:
    return _encode({"type": kind, "time_ms": now_ms(), **fields})


def error(code: str, detail: str, **fields: Any) -> bytes:
    return control("error", code=code, detail=detail, **fields)


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame (RFC 6455 5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


# -- close codes --------------------------------------------------------------------------

CLOSE_POLICY: Final = 1008  # message rate, repeated bad messages, no subscription in time
CLOSE_TOO_BIG: Final = 1009
CLOSE_GOING_AWAY: Final = 1001
CLOSE_SLOW_CONSUMER: Final = 4008
"""The connection's outbound queue was full: reconnect and resubscribe (a snapshot)."""
CLOSE_RESET: Final = 4009
"""The feed restarted (a new epoch): reconnect and resubscribe."""
