"""The command port: JSON lines over TCP on loopback, straight into the runner.

For operators' tools and crash tests, before and beside the HTTP API.  One request per
line::

    {"principal": "ra", "key": "k-1", "command": {"type": "place_bid", ...}}

answered, in order, by one line::

    {"ok": true, "seq": 17, "replay": false, "events": [...]}
    {"ok": false, "status": 409, "code": "idempotency_in_flight", "detail": "..."}

``{"query": "state"}`` answers the journal position and the engine's state hash.
Requests on one connection are answered in the order they came; use several
connections for concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import msgspec

from auction.errors import CODES, ClientError
from auction.messages import AnyCommand
from auction.runner import Runner


class Request(msgspec.Struct, forbid_unknown_fields=True):
    command: AnyCommand | None = None
    principal: str | None = None
    key: str | None = None
    query: Literal["state"] | None = None


_decoder = msgspec.json.Decoder(Request)
_encoder = msgspec.json.Encoder()
MAX_LINE = 64 * 1024


def _error(code: str, detail: str) -> bytes:
    status = CODES.get(code, (400, ""))[0]
    return _encoder.encode({"ok": False, "status": status, "code": code, "detail": detail})


async def _handle(runner: Runner, line: bytes) -> bytes:
    try:
        req = _decoder.decode(line)
    except msgspec.ValidationError as err:
        return _error("invalid_value", str(err))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as err:
        return _error("malformed_json", str(err))
    if req.query == "state":
        return _encoder.encode(
            {"ok": True, "seq": runner._seq, "state_hash": runner.engine.state_hash()}
        )
    if req.command is None:
        return _error("invalid_value", "a request needs a command or a query")
    try:
        answer = await runner.submit(req.command, principal=req.principal, key=req.key)
    except ClientError as err:
        return _error(err.code, err.detail)
    return _encoder.encode(
        {"ok": True, "seq": answer.seq, "replay": answer.replay, "events": answer.events}
    )


async def serve(runner: Runner, host: str, port: int) -> asyncio.Server:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    writer.write(_error("malformed_json", "line too long") + b"\n")
                    return
                writer.write(await _handle(runner, line) + b"\n")
                await writer.drain()
        except ConnectionError:
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    return await asyncio.start_server(client, host, port, limit=MAX_LINE)
