"""A bare Starlette app for the same-run baseline of ``bench_http``: one msgspec JSON POST
and one JSON GET, no auth, no database.  ``uvicorn loadtests.bare_app:app``."""

from __future__ import annotations

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class Bid(msgspec.Struct, forbid_unknown_fields=True):
    market: str
    price_fen_per_t: int
    qty_kg: int


_decoder = msgspec.json.Decoder(Bid)
_encoder = msgspec.json.Encoder()


async def post(request: Request) -> Response:
    bid = _decoder.decode(await request.body())
    return Response(
        _encoder.encode({"ok": True, "qty_kg": bid.qty_kg}), media_type="application/json"
    )


async def get(request: Request) -> Response:
    return Response(
        _encoder.encode({"ok": True, "levels": [[1000000, 2000, 1]]}), media_type="application/json"
    )


app = Starlette(
    routes=[Route("/bid", post, methods=["POST"]), Route("/book", get, methods=["GET"])]
)
