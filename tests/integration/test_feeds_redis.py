"""Two server processes sharing Redis deliver the same sequenced stream: the engine's
own ``auction serve`` and a separate ``auction feeds`` process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import redis_url
from tests.integration.server import Service, environment, make_accounts, running
from tests.integration.wsclient import Feed

M = "ebike:330522"
CHANNELS = (f"book:{M}", f"trades:{M}", "private")


async def post(svc: Service, path: str, who: str, body: dict[str, Any]) -> None:
    status, answer = await asyncio.to_thread(svc.call, "POST", path, who, body)
    assert status in (200, 201), answer


def lossless(feed: Feed) -> list[tuple[str, int, str, Any]]:
    return [
        (m["channel"], m["seq"], m["type"], m["data"])
        for m in feed.messages
        if m["type"] == "update" and not m["channel"].startswith(("board", "stats"))
    ]


def test_two_processes_serve_the_same_sequenced_stream(tmp_path: Path) -> None:
    env = environment(tmp_path, AUCTION_REDIS_URL=redis_url())
    tokens = make_accounts(env)
    with (
        running(env, tokens, tmp_path / "serve.log") as main,
        running(env, tokens, tmp_path / "feeds.log", "feeds") as other,
    ):

        async def session() -> None:
            for who in ("ra", "rb"):
                await post(
                    main, "/v1/admin/buying-power", "adm", {"bidder": who, "limit_fen": 10**10}
                )
            feeds = [await Feed.open(svc.ws, svc.auth("ra")) for svc in (main, other)]
            assert feeds[0].welcome["epoch"] == feeds[1].welcome["epoch"]
            for feed in feeds:
                for channel in (*CHANNELS, "board"):
                    await feed.subscribe(channel)
            for i in range(10):
                price = 1_000_000 + 1_000 * i
                await post(
                    main, "/v1/bids", "ra", {"market": M, "price_fen_per_t": price, "qty_kg": 500}
                )
                await post(
                    main, "/v1/lots", "s1", {"mode": "one_click", "market": M, "weight_kg": 300}
                )
            # each side has seen the last trade (10 lots: 10 prints, gathered into tape
            # messages per the screens' tick)
            for feed in feeds:
                prints = [0]

                def all_ten(m: dict[str, Any], prints: list[int] = prints) -> bool:
                    prints[0] += len(m["data"]["trades"]) if m["type"] == "update" else 0
                    return prints[0] == 10

                await feed.until(f"trades:{M}", all_ten, timeout=10)
                await feed.until(
                    "board",
                    lambda m: (m["data"].get("markets") or {}).get(M, {}).get("trades") == 10,
                    timeout=10,
                )
                await asyncio.sleep(0.5)  # the private notices that follow
                while True:
                    try:
                        await feed._read(0.3)
                    except TimeoutError:
                        break
            a, b = (lossless(f) for f in feeds)
            assert len(a) >= 40, a
            assert a == b
            for feed in feeds:
                await feed.close()

        asyncio.run(session())
