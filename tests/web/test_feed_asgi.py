"""``/v1/ws`` under a server whose ``send`` is not uvicorn's (Starlette's TestClient):
the hub's fallback path, a bounded queue and a writer task, delivers the same protocol."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from auction.errors import CODES, ClientError
from feeds.endpoint import Tickets
from tests.integration.crash import free_port
from tests.web.conftest import Service

M = "ebike:330522"


def test_the_fallback_path_delivers_snapshots_and_updates_in_order(service: Service) -> None:
    headers = {"Authorization": f"Bearer {service.tokens['ra']}"}
    with service.client.websocket_connect("/v1/ws", headers=headers) as ws:
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json({"op": "subscribe", "channel": f"book:{M}"})
        assert ws.receive_json()["type"] == "subscribed"
        hub = service.client.app.state.ctx.hub  # type: ignore[attr-defined]
        assert [conn.fast for conn in hub.conns] == [False]  # the fallback, not uvicorn's
        snap = ws.receive_json()
        assert (snap["type"], snap["data"]) == ("snapshot", {"bids": [], "asks": []})
        funds = {"bidder": "ra", "limit_fen": 10**10}
        assert service.post("adm", "/v1/admin/buying-power", funds).status_code == 200
        for i, price in enumerate((1_000_000, 1_001_000)):
            body = {"market": M, "price_fen_per_t": price, "qty_kg": 500}
            assert service.post("ra", "/v1/bids", body).status_code == 201
            update = ws.receive_json()
            assert (update["type"], update["seq"]) == ("update", snap["seq"] + i + 1)
            assert update["data"]["bids"] == [[price, 500, 1]]
        ws.send_text("not json")
        assert ws.receive_json()["code"] == "malformed"


def test_tickets_answer_503_not_500_when_their_store_is_away() -> None:
    async def go() -> None:
        away = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
        tickets = Tickets(away)
        for attempt in (tickets.issue("ra"), tickets.redeem("t_whatever")):
            with pytest.raises(ClientError) as refused:
                await attempt
            assert refused.value.code == "tickets_unavailable"
            assert CODES["tickets_unavailable"][0] == 503
        await away.aclose()

    asyncio.run(go())
