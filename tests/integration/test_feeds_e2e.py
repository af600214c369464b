"""A session over a real server: subscribe, snapshot, a trade on every channel it
touches with consecutive seqs, then a dropped connection resumed without a gap."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.integration.server import Service, environment, make_accounts, running
from tests.integration.wsclient import Feed

M = "ebike:330522"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    env = environment(tmp_path)
    tokens = make_accounts(env)
    with running(env, tokens, tmp_path / "serve.log") as svc:
        for who in ("ra", "rb"):
            status, _ = svc.call(
                "POST", "/v1/admin/buying-power", "adm", {"bidder": who, "limit_fen": 10**10}
            )
            assert status == 200
        yield svc


async def post(svc: Service, path: str, who: str, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = await asyncio.to_thread(svc.call, "POST", path, who, body)
    assert status in (200, 201), answer
    return answer  # type: ignore[no-any-return]


def test_a_trade_reaches_every_channel_in_order_and_a_resume_misses_nothing(
    service: Service,
) -> None:
    async def session() -> None:
        svc = service
        ra = await Feed.open(svc.ws, svc.auth("ra"))
        s1 = await Feed.open(svc.ws, svc.auth("s1"))
        assert ra.welcome["principal"] == "ra"
        for channel in (f"book:{M}", f"trades:{M}", "board", "private"):
            await ra.subscribe(channel)
        await s1.subscribe("private")
        snap = await ra.until(f"book:{M}", lambda m: m["type"] == "snapshot")
        assert snap["data"] == {"bids": [], "asks": []}
        await ra.until("private:ra", lambda m: m["type"] == "snapshot")

        await post(
            svc, "/v1/bids", "ra", {"market": M, "price_fen_per_t": 1_000_000, "qty_kg": 2_000}
        )
        book = await ra.until(f"book:{M}", lambda m: m["type"] == "update")
        assert book["data"]["bids"] == [[1_000_000, 2_000, 1]]
        placed = await ra.until("private:ra", lambda m: m["data"].get("event") == "bid_placed")
        assert placed["data"]["price_fen_per_t"] == 1_000_000

        sold = await post(
            svc, "/v1/lots", "s1", {"mode": "one_click", "market": M, "weight_kg": 800}
        )
        trade = next(e for e in sold["events"] if e["type"] == "traded")
        book = await ra.until(f"book:{M}", lambda m: m["type"] == "update")
        assert book["data"]["bids"] == [[1_000_000, 1_200, 1]]
        tape = await ra.until(f"trades:{M}", lambda m: m["type"] == "update")
        assert tape["data"]["trades"][0]["trade_id"] == trade["trade_id"]
        assert tape["data"]["trades"][0]["weight_kg"] == 800
        mine = await ra.until("private:ra", lambda m: m["data"].get("event") == "traded")
        assert (mine["data"]["role"], mine["data"]["trade_id"]) == ("buyer", trade["trade_id"])
        theirs = await s1.until("private:s1", lambda m: m["data"].get("event") == "traded")
        assert (theirs["data"]["role"], theirs["data"]["trade_id"]) == ("seller", trade["trade_id"])
        row = await ra.until(
            "board", lambda m: (m["data"].get("markets") or {}).get(M, {}).get("trades") == 1
        )
        assert row["data"]["markets"][M]["last_fen_per_t"] == 1_000_000

        # consecutive seqs on every lossless channel (Feed raises on a gap), starting
        # right after each snapshot
        for channel in (f"book:{M}", f"trades:{M}"):
            seqs = [m["seq"] for m in ra.messages if m["channel"] == channel]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (channel, seqs)

        # drop the connection; trading goes on; resume misses nothing
        last = dict(ra.seq)
        token = ra.resume
        await ra.close()
        await post(svc, "/v1/lots", "s1", {"mode": "one_click", "market": M, "weight_kg": 500})
        await post(
            svc, "/v1/bids", "ra", {"market": M, "price_fen_per_t": 990_000, "qty_kg": 1_000}
        )
        again = await Feed.open(svc.ws, svc.auth("ra"))
        again.seq = dict(last)
        await again.send({"op": "resume", "token": token, "last": last})
        tape = await again.until(f"trades:{M}")
        assert tape["type"] == "update" and tape["seq"] == last[f"trades:{M}"] + 1
        assert tape["data"]["trades"][0]["weight_kg"] == 500
        books = [await again.until(f"book:{M}") for _ in range(2)]
        assert [b["type"] for b in books] == ["update", "update"]
        assert [b["seq"] for b in books] == [last[f"book:{M}"] + 1, last[f"book:{M}"] + 2]
        assert books[-1]["data"]["bids"] == [[990_000, 1_000, 1]]
        notes = [await again.until("private:ra") for _ in range(2)]
        assert [n["seq"] for n in notes] == [last["private:ra"] + 1, last["private:ra"] + 2]
        assert notes[0]["data"]["event"] == "traded"
        await again.close()
        await s1.close()

    asyncio.run(session())


def test_handshake_and_channel_rules(service: Service) -> None:
    async def session() -> None:
        svc = service
        with pytest.raises(InvalidStatus) as refused:
            await Feed.open(svc.ws, {"Authorization": "Bearer nope"})
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            await Feed.open(svc.ws, {**svc.auth("ra"), "Origin": "https://evil.example"})
        assert refused.value.response.status_code == 403

        anon = await Feed.open(svc.ws)
        await anon.subscribe("board")
        await anon.send({"op": "subscribe", "channel": "private"})
        assert (await anon.next_control("error"))["code"] == "unauthenticated"
        await anon.send({"op": "subscribe", "channel": "private:ra"})
        assert (await anon.next_control("error"))["code"] == "unauthenticated"
        await anon.send({"op": "subscribe", "channel": "book:nonsense:1"})
        assert (await anon.next_control("error"))["code"] == "unknown_channel"
        await anon.send({"op": "dance"})
        assert (await anon.next_control("error"))["code"] == "malformed"
        await anon.ws.send(b"\x00\x01")
        assert (await anon.next_control("error"))["code"] == "binary_not_supported"
        await anon.close()

        # a browser: a ticket from the API, then the handshake with it, once
        status, ticket = await asyncio.to_thread(svc.call, "POST", "/v1/ws/tickets", "rb", {})
        assert status == 201, ticket
        url = f"{svc.ws}?ticket={ticket['ticket']}"
        rb = await Feed.open(url, {"Origin": svc.base})
        assert rb.welcome["principal"] == "rb"
        await rb.subscribe("private")
        await rb.send({"op": "subscribe", "channel": "private:ra"})
        assert (await rb.next_control("error"))["code"] == "unknown_channel"
        with pytest.raises(InvalidStatus) as refused:
            await Feed.open(url)
        assert refused.value.response.status_code == 401
        await rb.close()

    asyncio.run(session())
