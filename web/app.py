"""``create_app``: the Starlette application and its lifespan.

Start: open the journal (migrate SQLite, check durability), rebuild the engine, start
the writer.  Stop, in order: stop accepting (uvicorn), drain the runner's queue and its
commits, stop the writer, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import msgspec
import redis.asyncio as aioredis
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from auction.accounts import Accounts, TokenCache
from auction.clock import Clock, LiveClock
from auction.db import make_engine
from auction.prices import MemoryPrices, PriceStore
from auction.prices_redis import RedisPrices
from auction.pricing import PriceService
from auction.service import close_runner, open_runner, settle_heap
from auction.settings import Settings
from feeds.bus import LocalBus
from feeds.endpoint import FeedEndpoint, Tickets
from feeds.hub import Hub
from feeds.protocol import CLOSE_GOING_AWAY
from feeds.redis_bus import RedisPublisher, RedisSubscriber
from feeds.sequencer import Sequencer
from feeds.sources import Follower, engine_publisher
from web.api import ENDPOINTS, Context, RateLimiter, route_handler
from web.errors import problem
from web.http import CRASH_BODY, AuctionApp, MethodHandler, PathApp, PathTable, Reply
from web.openapi import build
from web.pages import page_routes


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _not_allowed((exc.headers or {}).get("Allow", ""))
    return problem("not_found", f"nothing at {request.url.path[:100]}")


async def _crash(request: Request, exc: Exception) -> Response:  # never a bare 500 page
    return Reply(CRASH_BODY, 500, "application/problem+json")


def _not_allowed(allow: str) -> Response:
    resp = problem("method_not_allowed", "see /openapi.json for what each path takes")
    if allow:
        resp.headers["Allow"] = allow  # RFC 9110: a 405 says what is allowed
    return resp


def _routes(table: PathTable) -> list[Route]:
    """One route per path, its endpoint the ``PathApp`` that dispatches on the method (so
    that a 405 names every method the path takes).  The route's name lists its
    endpoints' names; ``table`` gets the same apps for the fast path."""
    by_path: dict[str, dict[str, MethodHandler]] = {}
    names: dict[str, list[str]] = {}
    for ep in ENDPOINTS:
        by_path.setdefault(ep.path, {})[ep.method] = route_handler(ep)
        names.setdefault(ep.path, []).append(ep.name)
    routes = []
    for path, handlers in by_path.items():
        app = PathApp(handlers, _not_allowed)
        table.add(path, app)
        routes.append(Route(path, app, methods=list(app.handlers), name=",".join(names[path])))
    return routes


def make_hub(settings: Settings) -> Hub:
    return Hub(
        max_buffer=settings.ws_max_buffer,
        heartbeat_s=settings.ws_heartbeat_s,
        conflate_s=settings.ws_conflate_s,
    )


async def stop_feeds(hub: Hub, tasks: list[asyncio.Task[None]]) -> None:
    """Close every websocket (clients reconnect elsewhere), then stop the background
    tasks; a task that failed with anything but its cancellation raises here."""
    hub.close_all(CLOSE_GOING_AWAY, "the service is stopping")
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    on_ready: Callable[[Context], Awaitable[None]] | None = None,
) -> AuctionApp:
    settings = settings or Settings.from_env()
    clock = clock or LiveClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: AuctionApp) -> AsyncIterator[dict[str, Any]]:
        runner, db = await open_runner(settings, clock)
        store: PriceStore = (
            RedisPrices(settings.redis_url) if settings.redis_url else MemoryPrices()
        )
        prices = PriceService(store, db, clock, runner.engine._catalogue.settlement)
        runner.subscribe(prices.on_commit)
        hub = make_hub(settings)
        feed_tasks: list[Coroutine[Any, Any, None]] = [hub.run()]
        closers: list[Callable[[], Awaitable[None]]] = []
        if settings.redis_url:
            publisher = RedisPublisher(settings.redis_url)
            follower = RedisSubscriber(settings.redis_url, hub)
            sequencer = Sequencer(runner.engine, publisher, tape_s=settings.ws_conflate_s)
            feed_tasks += [publisher.run(), follower.run()]
            redis = aioredis.Redis.from_url(settings.redis_url)
            tickets = Tickets(redis)
            closers += [publisher.close, follower.close, redis.aclose]
        else:
            sequencer = Sequencer(runner.engine, LocalBus(hub), tape_s=settings.ws_conflate_s)
            tickets = Tickets()
        sequencer.start()
        runner.watch(sequencer.capture, sequencer.committed)
        prices.on_change.append(sequencer.board_changed)
        accounts = Accounts(db)
        limiter = RateLimiter(settings.rate_per_principal, 2 * settings.rate_per_principal)
        ctx = Context(runner, accounts, clock, limiter, prices, tickets=tickets, hub=hub)
        app.feed = FeedEndpoint(
            hub,
            ctx.authenticate,
            accounts.principal,
            tickets,
            origins=frozenset(settings.ws_origins),
            catalogue=runner.engine._catalogue,
        )
        tasks = [
            asyncio.create_task(prices.run()),
            asyncio.create_task(sequencer.run_board(prices)),
            *(asyncio.create_task(t) for t in feed_tasks),
        ]
        if settings.price_feed_url:
            keys = frozenset({"lead", *(c.code for c in runner.engine._catalogue.categories)})
            follower_task = Follower(
                "end_of_chain",
                settings.price_feed_url,
                keys,
                engine_publisher(runner.submit, "end_of_chain", "feed-end-of-chain"),
                on_status=lambda st: sequencer.set_source(
                    "end_of_chain", {"stale": st.stale, "last_seq": st.last_seq}
                ),
            ).run()
            tasks.append(asyncio.create_task(follower_task))
        writer = asyncio.create_task(runner.run())
        app.state.ctx = ctx
        app.state.writer = writer
        if on_ready is not None:
            await on_ready(app.state.ctx)
        settle_heap()
        try:
            yield {}
        finally:
            await stop_feeds(hub, tasks)
            if isinstance(store, RedisPrices):
                await store.close()
            for close in closers:
                await close()
            await close_runner(runner, writer, db)

    table = PathTable()
    routes: list[BaseRoute] = [*_routes(table)]
    routes.append(Route("/openapi.json", openapi, methods=["GET"], name="openapi"))
    routes.extend(page_routes())
    app = AuctionApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.table = table
    app.state.openapi = msgspec.json.encode(build())
    return app


def create_feeds_app(settings: Settings) -> AuctionApp:
    """A web process that only serves ``/v1/ws``, from the feed in Redis: add as many as
    the screens need.  It reads the accounts database to check tokens; tickets come from
    the main service through Redis."""
    assert settings.redis_url

    @contextlib.asynccontextmanager
    async def lifespan(app: AuctionApp) -> AsyncIterator[dict[str, Any]]:
        db = make_engine(settings.database_url)
        accounts = Accounts(db)
        redis = aioredis.Redis.from_url(settings.redis_url or "")
        hub = make_hub(settings)
        follower = RedisSubscriber(settings.redis_url or "", hub)
        tasks = [asyncio.create_task(follower.run()), asyncio.create_task(hub.run())]
        app.feed = FeedEndpoint(
            hub,
            TokenCache(accounts, LiveClock()).authenticate,
            accounts.principal,
            Tickets(redis),
            origins=frozenset(settings.ws_origins),
        )
        app.state.hub = hub
        await asyncio.wait_for(hub.ready.wait(), 30)
        settle_heap()
        try:
            yield {}
        finally:
            await stop_feeds(hub, tasks)
            await follower.close()
            await redis.aclose()
            await db.dispose()

    async def healthz(request: Request) -> Response:
        hub: Hub = request.app.state.hub
        body = {"ok": True, "epoch": hub.epoch, "connections": hub.stats.connections}
        return Response(msgspec.json.encode(body), media_type="application/json")

    app = AuctionApp(
        routes=[Route("/healthz", healthz, methods=["GET"], name="healthz")],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.table = PathTable()
    return app
