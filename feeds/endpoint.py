"""``/v1/ws``: the handshake (Origin, credentials, connection limits) and a connection's
messages (subscribe, unsubscribe, resume, ping), with their limits (BAD_INPUTS.md).

Credentials: ``Authorization: Bearer <token>``, or ``?ticket=`` for browsers (which
cannot set headers on a websocket): a single-use ticket valid ``TICKET_TTL_S``, from
``POST /v1/ws/tickets``.  Without credentials a connection may read the public channels
(``board``, ``stats:M``, ``book:M``, ``trades:M``); auction rooms need a principal,
``private`` is the principal's own.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from auction.accounts import Principal
from auction.catalogue import Catalogue, default_catalogue, valid_region
from auction.errors import CODES, ClientError
from feeds.hub import Conn, Hub
from feeds.protocol import (
    CHANNEL_RE,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    MAX_CHANNEL,
    PUBLIC_KINDS,
    Ping,
    Resume,
    Subscribe,
    Unsubscribe,
    control,
    decode_op,
    error,
    kind_of,
    market_of,
    private_channel,
)

TICKET_TTL_S = 30.0


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 4096
    rate_per_s: float = 20.0
    burst: float = 40.0
    max_subscriptions: int = 200
    max_errors: int = 10
    connections_per_principal: int = 20
    connections_per_service: int = 20_000
    """Quote-board service principals drive many screens each."""
    connections_per_anonymous_ip: int = 200
    socket_send_buffer: int = 64 * 1024
    """The kernel's send buffer per connection, fixed rather than auto-tuned (up to 4 MiB
    on Linux): it bounds kernel memory per screen, and a screen that stops reading fills
    its queue, and is closed, in seconds rather than minutes."""


class Tickets:
    """Single-use handshake tickets; in Redis when there is one, so any web process can
    redeem what another issued."""

    def __init__(self, redis: Any = None) -> None:
        self.redis = redis
        self._local: dict[str, tuple[str, float]] = {}

    async def issue(self, principal: str) -> str:
        ticket = "t_" + secrets.token_urlsafe(24)
        digest = hashlib.sha256(ticket.encode()).hexdigest()
        if self.redis is not None:
            try:
                await self.redis.set(f"auction:ticket:{digest}", principal, ex=int(TICKET_TTL_S))
            except (RedisError, OSError) as err:
                raise ClientError("tickets_unavailable", "the ticket store is away") from err
        else:
            now = time.monotonic()
            if len(self._local) > 10_000:
                self._local = {k: v for k, v in self._local.items() if v[1] > now}
            self._local[digest] = (principal, now + TICKET_TTL_S)
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        if not ticket or len(ticket) > 100:
            return None
        digest = hashlib.sha256(ticket.encode()).hexdigest()
        if self.redis is not None:
            try:
                value = await self.redis.getdel(f"auction:ticket:{digest}")
            except (RedisError, OSError) as err:
                raise ClientError("tickets_unavailable", "the ticket store is away") from err
            return value.decode() if isinstance(value, bytes) else value
        entry = self._local.pop(digest, None)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]


class _ResumeToken(msgspec.Struct, array_like=True):
    epoch: str
    channels: list[str]


_token_encoder = msgspec.msgpack.Encoder()
_token_decoder = msgspec.msgpack.Decoder(_ResumeToken)


def resume_token(epoch: str, channels: list[str]) -> str:
    raw = _token_encoder.encode(_ResumeToken(epoch, sorted(channels)))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_resume_token(token: str) -> _ResumeToken | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return _token_decoder.decode(raw)
    except (ValueError, msgspec.DecodeError):
        return None


def _problem(status: int, code: str, detail: str) -> bytes:
    return msgspec.json.encode(
        {"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail}
    )


@dataclass
class FeedEndpoint:
    hub: Hub
    authenticate: Callable[[str], Awaitable[Principal | None]]
    resolve: Callable[[str], Awaitable[Principal | None]]
    """A ticket's principal id to the principal."""
    tickets: Tickets
    limits: Limits = field(default_factory=Limits)
    origins: frozenset[str] = frozenset()
    """Origins allowed besides the service's own (``scheme://host[:port]``)."""
    counts: dict[str, int] = field(default_factory=dict)
    catalogue: Catalogue = field(default_factory=default_catalogue)

    def catalogue_has(self, market: str) -> bool:
        category, _, region = market.partition(":")
        return self.catalogue.has_category(category) and valid_region(region)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin, headers.get("host", "")):
            await _refuse(scope, send, 403, "origin_not_allowed", f"origin {origin[:80]!r}")
            return
        principal: Principal | None = None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if token:
            principal = await self.authenticate(token) if scheme.lower() == "bearer" else None
            if principal is None:
                await _refuse(scope, send, 401, "unauthenticated", "the token is not valid")
                return
        elif "ticket" in query:
            try:
                who = await self.tickets.redeem(query["ticket"])
            except ClientError as err:
                await _refuse(scope, send, CODES[err.code][0], err.code, err.detail)
                return
            principal = await self.resolve(who) if who else None
            if principal is None:
                await _refuse(scope, send, 401, "unauthenticated", "the ticket is not valid")
                return
        if principal is not None:
            key = principal.id
            cap = (
                self.limits.connections_per_service
                if principal.role == "service"
                else self.limits.connections_per_principal
            )
        else:
            key = "ip:" + str((scope.get("client") or ("?",))[0])
            cap = self.limits.connections_per_anonymous_ip
        if self.counts.get(key, 0) >= cap:
            await _refuse(scope, send, 429, "too_many_connections", f"at most {cap} connections")
            return
        await send({"type": "websocket.accept"})
        self.counts[key] = self.counts.get(key, 0) + 1
        conn = Conn(
            self.hub, send, principal.id if principal else "", principal.role if principal else ""
        )
        self.hub.attach(conn)
        if conn.fast:
            sock = conn.transport.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.socket_send_buffer)
        try:
            conn.push_payload(
                control(
                    "welcome",
                    epoch=self.hub.epoch,
                    principal=principal.id if principal else None,
                    heartbeat_s=self.hub.heartbeat_s,
                    resume=resume_token(self.hub.epoch, []),
                )
            )
            await self._serve(conn, principal, receive)
        finally:
            conn.gone()
            left = self.counts.get(key, 1) - 1
            if left:
                self.counts[key] = left
            else:
                self.counts.pop(key, None)

    def _origin_ok(self, origin: str, host: str) -> bool:
        if origin in self.origins:
            return True
        return urlsplit(origin).netloc == host  # the page came from this service

    async def _serve(self, conn: Conn, principal: Principal | None, receive: Receive) -> None:
        limits = self.limits
        tokens, last = limits.burst, time.monotonic()
        errors = 0
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect" or conn.closed:
                return
            text, data = msg.get("text"), msg.get("bytes")
            size = len(data) if data is not None else len(text.encode()) if text else 0
            if size > limits.max_message_bytes:
                conn.close(CLOSE_TOO_BIG, f"messages are at most {limits.max_message_bytes} bytes")
                return
            now = time.monotonic()
            tokens = min(limits.burst, tokens + (now - last) * limits.rate_per_s)
            last = now
            if tokens < 1:
                self.hub.stats.closed_policy += 1
                conn.close(CLOSE_POLICY, f"at most {limits.rate_per_s:g} messages/s")
                return
            tokens -= 1
            problem = await self._handle(conn, principal, text)
            if problem is not None:
                errors += 1
                conn.push_payload(problem)
                if errors > limits.max_errors:
                    self.hub.stats.closed_policy += 1
                    conn.close(CLOSE_POLICY, "too many bad messages")
                    return

    async def _handle(
        self, conn: Conn, principal: Principal | None, text: str | None
    ) -> bytes | None:
        """Do one client message; an error message to send back, or None."""
        if text is None:
            return error("binary_not_supported", "send JSON text frames")
        try:
            op = decode_op(text)
        except msgspec.DecodeError as err:
            return error("malformed", str(err)[:200])
        if isinstance(op, Ping):
            conn.push_payload(control("pong", id=op.id))
            return None
        if isinstance(op, Unsubscribe):
            channel = self._channel(op.channel, principal)
            conn.hub.unsubscribe(conn, channel)
            conn.push_payload(control("unsubscribed", channel=channel, resume=self._token(conn)))
            return None
        if isinstance(op, Subscribe):
            return self._subscribe(conn, principal, op.channel, op.since)
        assert isinstance(op, Resume)
        saved = read_resume_token(op.token)
        if saved is None:
            return error("bad_resume_token", "the resume token is not one this service gave")
        same_epoch = saved.epoch == self.hub.epoch
        for channel in saved.channels:
            since = op.last.get(channel) if same_epoch else None
            problem = self._subscribe(conn, principal, channel, since)
            if problem is not None:
                conn.push_payload(problem)
        return None

    def _channel(self, name: str, principal: Principal | None) -> str:
        """``private`` is the principal's own ``private:<id>``, the name its messages
        carry."""
        if name == "private" and principal is not None:
            return private_channel(principal.id)
        return name

    def _subscribe(
        self, conn: Conn, principal: Principal | None, name: str, since: int | None
    ) -> bytes | None:
        if len(name) > MAX_CHANNEL or not CHANNEL_RE.match(name):
            return error(
                "unknown_channel", f"no channel {name[:MAX_CHANNEL]!r}", channel=name[:MAX_CHANNEL]
            )
        kind = kind_of(name)
        if kind not in PUBLIC_KINDS and principal is None:  # a room, or private
            return error("unauthenticated", f"{name} needs credentials", channel=name)
        channel = self._channel(name, principal)
        if kind == "private" and principal and channel != private_channel(principal.id):
            return error("unknown_channel", "only your own private channel", channel=name)
        if kind == "auction":
            room = self.hub.folds.snapshot(channel)
            region = str((room[1] if room else {}).get("market", ":")).partition(":")[2]
            if room is None or (principal is not None and principal.role == "regulator"
                                and not principal.sees_region(region)):  # fmt: skip
                return error("unknown_channel", f"no auction room {name!r}", channel=name)
        if kind in ("stats", "book", "trades") and not self.catalogue_has(market_of(name)):
            return error("unknown_channel", f"no market in {name!r}", channel=name)
        if channel in conn.subs:
            return error("already_subscribed", f"already subscribed to {name}", channel=name)
        if len(conn.subs) >= self.limits.max_subscriptions:
            return error(
                "too_many_subscriptions", f"at most {self.limits.max_subscriptions}", channel=name
            )
        conn.push_payload(
            control(
                "subscribed",
                channel=channel,
                seq=self.hub.folds.seq(channel),
                resume=resume_token(self.hub.epoch, [*conn.subs, channel]),
            )
        )
        self.hub.subscribe(conn, channel, since)
        return None

    def _token(self, conn: Conn) -> str:
        return resume_token(self.hub.epoch, list(conn.subs))


async def _refuse(scope: Scope, send: Send, status: int, code: str, detail: str) -> None:
    """Refuse at the handshake: an HTTP answer with problem+json where the server can
    send one, else a plain close (which servers answer with 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/problem+json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": _problem(status, code, detail)})
    else:
        await send({"type": "websocket.close", "code": CLOSE_POLICY})
