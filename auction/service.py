"""Start-up of the engine side: database, durability check, migrations, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys

from sqlalchemy.ext.asyncio import AsyncEngine

from auction.clock import Clock, LiveClock
from auction.cmdport import serve
from auction.db import check_durability, is_sqlite, make_engine
from auction.errors import AuctionError
from auction.journal import Journal
from auction.migrate import current, head, upgrade
from auction.runner import Runner
from auction.settings import Settings


class NotMigrated(AuctionError):
    pass


async def open_runner(settings: Settings, clock: Clock | None = None) -> tuple[Runner, AsyncEngine]:
    """A recovered runner on the configured journal (not yet running)."""
    db = make_engine(settings.database_url)
    await check_durability(db, allow_unsafe=settings.allow_unsafe_durability)
    if is_sqlite(settings.database_url):
        await upgrade(db)
    elif await current(db) != head():
        await db.dispose()
        raise NotMigrated(
            f"the database is at revision {await current(db)!r}, not {head()!r}: "
            "run `auction db upgrade` first"
        )
    runner = await Runner.open(
        Journal(db),
        clock or LiveClock(),
        max_queue=settings.max_queue,
        max_batch=settings.max_batch,
        snapshot_path=settings.snapshot_path,
        snapshot_every=settings.snapshot_every,
    )
    return runner, db


async def close_runner(
    runner: Runner, writer: asyncio.Task[None], db: AsyncEngine, *, drain_s: float = 30.0
) -> None:
    """The shutdown order once nothing new is accepted: drain what is queued (if the writer
    still runs, and not forever), stop the writer, close the journal and the database."""
    if not writer.done():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(runner.drain(), drain_s)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    if runner.journal is not None:
        runner.journal.close()
    await db.dispose()


def settle_heap() -> None:
    """Once start-up is done (engine rebuilt, demo seeded): collect, then move every
    object alive into the collector's permanent generation.  Without it each full
    collection walks the ~90 k objects of the loaded modules and the rebuilt state again:
    50-60 ms pauses on this machine, every few seconds under load, which were the p99 of
    a bid over HTTP (69 ms; 23 ms after, ``loadtests/bench_http``)."""
    gc.collect()
    gc.freeze()


async def run_engine(settings: Settings, host: str, port: int) -> None:
    """The runner with its command port, until SIGTERM / SIGINT."""
    runner, db = await open_runner(settings)
    server = await serve(runner, host, port)
    bound = server.sockets[0].getsockname()
    writer = asyncio.create_task(runner.run())
    settle_heap()
    print(f"ready {bound[0]}:{bound[1]} seq={runner._seq}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    done, _ = await asyncio.wait(
        {writer, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    server.close()  # stop accepting, then drain, stop, close
    await server.wait_closed()
    await close_runner(runner, writer, db)
    if writer in done and writer.exception() is not None:
        print(f"auction: the writer stopped: {writer.exception()!r}", file=sys.stderr)
        raise SystemExit(1)
