"""The lean HTTP layer under the API routes: a request, a reply and a path table.

Every API request pays for what is here, so it does only what the API needs.  A
``PathApp`` is a plain ASGI app (one per path, the methods it takes), mounted as the
endpoint of a Starlette ``Route`` so that ``app.routes`` lists every route and its policy;
``AuctionApp`` finds the ``PathApp`` for a request with ``PathTable`` (a literal-segment
match, in declaration order, as Starlette's router would) and calls it directly, past
Starlette's regex scan and middleware; everything else (``/openapi.json``, lifespan,
websockets, pages) goes through Starlette as usual.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from auction.errors import ClientError

log = logging.getLogger("auction.web")

CRASH_BODY = (
    b'{"type":"about:blank","title":"Internal error","status":500,"code":"internal",'
    b'"detail":"the engine hit an internal error; it has been logged"}'
)


class Reply(Response):
    """A complete body with its status and headers, sent in two ASGI messages.  A
    Starlette ``Response`` (so exception handlers and tests take it) without the work a
    general response does per instance."""

    def __init__(
        self,
        body: bytes,
        status_code: int = 200,
        media_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        raw = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", media_type.encode()),
        ]
        if headers:
            raw.extend(
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            )
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": self.body})


class ApiRequest:
    """What a handler may read of a request: headers (lower-case names, the first of
    repeated ones), path and query parameters, the body, and the idempotency key once
    the wrapper has checked it."""

    __slots__ = ("_headers", "_query", "_receive", "idempotency_key", "path_params", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self._headers: dict[str, str] | None = None
        self._query: dict[str, str] | None = None
        self.path_params: dict[str, str] = scope.get("path_params", {})
        self.idempotency_key = ""

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(self.scope["headers"])
            }
        return self._headers

    @property
    def query_params(self) -> dict[str, str]:
        if self._query is None:
            raw = self.scope.get("query_string", b"")
            if b"%00" in raw or b"\x00" in raw:  # no value of ours holds NUL; PostgreSQL
                # refuses the character outright, which would be a 500 on a list filter
                raise ClientError("invalid_value", "a query parameter holds a NUL character")
            self._query = (
                dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}
            )
        return self._query

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ConnectionError("the client went away")
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def body(self) -> bytes:
        chunks = [chunk async for chunk in self.stream()]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


MethodHandler = Callable[[Any, ApiRequest], Awaitable[Response]]


class PathApp:
    """The ASGI app of one path: dispatch on the method (HEAD answers as GET, without a
    body); a method the path does not take answers 405 with ``Allow``."""

    def __init__(
        self, handlers: dict[str, MethodHandler], not_allowed: Callable[[str], Response]
    ) -> None:
        self.handlers = dict(handlers)
        if "GET" in handlers:
            self.handlers["HEAD"] = handlers["GET"]
        self.allow = ", ".join(sorted(self.handlers))
        self.not_allowed = not_allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope["method"])
        if handler is None:
            response = self.not_allowed(self.allow)
        else:
            try:
                response = await handler(scope["app"].state.ctx, ApiRequest(scope, receive))
            except ConnectionError:
                return  # the client left mid-body: nobody to answer
            except Exception:  # never a bare 500 page; the cause goes to the log
                log.exception("%s %s", scope["method"], scope["path"])
                response = Reply(CRASH_BODY, 500, "application/problem+json")
        await response(scope, receive, send)


class PathTable:
    """Paths like ``/v1/lots/{lot_id}/bids`` matched segment by segment, in the order
    they were added (the first match wins, as in Starlette); a parameter matches one
    non-empty segment."""

    def __init__(self) -> None:
        self._by_length: dict[
            int, list[tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...], PathApp]]
        ] = {}

    def add(self, template: str, app: PathApp) -> None:
        parts = template.split("/")
        literals = tuple((i, p) for i, p in enumerate(parts) if not p.startswith("{"))
        params = tuple((i, p[1:-1]) for i, p in enumerate(parts) if p.startswith("{"))
        self._by_length.setdefault(len(parts), []).append((literals, params, app))

    def match(self, path: str) -> tuple[PathApp, dict[str, str]] | None:
        parts = path.split("/")
        for literals, params, app in self._by_length.get(len(parts), ()):
            if all(parts[i] == text for i, text in literals) and all(parts[i] for i, _ in params):
                return app, {name: parts[i] for i, name in params}
        return None


class AuctionApp(Starlette):
    """Starlette, with the API's paths answered straight from ``PathTable``."""

    table: PathTable
    feed: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
    """``/v1/ws``, called straight from the server so that its ``send`` is the server's
    own (the hub writes frames to that connection's transport)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hit = self.table.match(scope["path"])
            if hit is not None:
                scope["app"] = self
                scope["path_params"] = hit[1]
                await hit[0](scope, receive, send)
                return
        elif scope["type"] == "websocket" and scope["path"] == "/v1/ws" and self.feed is not None:
            await self.feed(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
