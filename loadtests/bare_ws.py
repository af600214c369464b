"""The peer for ``bench_feeds``: a bare ``websockets`` server whose ``/publish`` clients'
messages go to every other connection with ``websockets.broadcast()``.

    python -m loadtests.bare_ws PORT
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main(port: int) -> None:
    screens: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/publish":
            async for message in ws:
                broadcast(screens, message)
            return
        screens.add(ws)
        try:
            await ws.wait_closed()
        finally:
            screens.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(int(sys.argv[1])))
