"""``create_app``: the Starlette application and its lifespan.

Start: open the journal (migrate SQLite, check durability), rebuild the engine, start
the writer.  Stop, in order: stop accepting (uvicorn), drain the runner's queue and its
commits, stop the writer, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auction.accounts import Accounts
from auction.clock import Clock, LiveClock
from auction.service import close_runner, open_runner
from auction.settings import Settings
from web.api import ENDPOINTS, Context, RateLimiter, route_handler
from web.errors import problem
from web.openapi import build


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        resp = problem("method_not_allowed", "see /openapi.json for what each path takes")
        allow = (exc.headers or {}).get("Allow")
        if allow:
            resp.headers["Allow"] = allow  # RFC 9110: a 405 says what is allowed
        return resp
    return problem("not_found", f"nothing at {request.url.path[:100]}")


async def _crash(request: Request, exc: Exception) -> Response:  # never a bare 500 page
    return Response(
        b'{"type":"about:blank","title":"Internal error","status":500,"code":"internal",'
        b'"detail":"the engine hit an internal error; it has been logged"}',
        status_code=500,
        media_type="application/problem+json",
    )


def _routes() -> list[Route]:
    """One Starlette route per path, dispatching on the method, so that a 405 names every
    method the path takes (``Allow``).  The route's name lists its endpoints' names."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    names: dict[str, list[str]] = {}
    for ep in ENDPOINTS:
        by_path.setdefault(ep.path, {})[ep.method] = route_handler(ep)
        names.setdefault(ep.path, []).append(ep.name)

    def dispatcher(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Any:
        async def dispatch(request: Request) -> Response:
            return await handlers[request.method](request)

        return dispatch

    return [
        Route(path, dispatcher(handlers), methods=list(handlers), name=",".join(names[path]))
        for path, handlers in by_path.items()
    ]


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    on_ready: Callable[[Context], Awaitable[None]] | None = None,
) -> Starlette:
    settings = settings or Settings.from_env()
    clock = clock or LiveClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        runner, db = await open_runner(settings, clock)
        writer = asyncio.create_task(runner.run())
        limiter = RateLimiter(settings.rate_per_principal, 2 * settings.rate_per_principal)
        app.state.ctx = Context(runner, Accounts(db), clock, limiter)
        app.state.writer = writer
        if on_ready is not None:
            await on_ready(app.state.ctx)
        try:
            yield {}
        finally:
            await close_runner(runner, writer, db)

    routes = _routes()
    routes.append(Route("/openapi.json", openapi, methods=["GET"], name="openapi"))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.state.openapi = msgspec.json.encode(build())
    return app
