"""Every error becomes ``application/problem+json`` with a stable ``code``, here only.

The status of a code is ``auction.errors.CODES``; decode errors of every kind are
client errors (never a 500), told apart by what msgspec says.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.responses import Response

from auction.errors import CODES, ClientError
from auction.messages import Rejected
from web.http import Reply

_encoder = msgspec.json.Encoder()

HTTP_CODES: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "Missing, unknown, expired or revoked token"),
    "forbidden_role": (403, "Your role may not do this"),
    "not_found": (404, "No such resource"),
    "method_not_allowed": (405, "Method not allowed"),
    "payload_too_large": (413, "The body is too large"),
    "unsupported_media_type": (415, "Send application/json"),
    "idempotency_key_missing": (400, "State-changing requests need an Idempotency-Key header"),
    "idempotency_key_invalid": (400, "Idempotency-Key must be 1-255 of A-Z a-z 0-9 _ -"),
    "rate_limited": (429, "Too many requests"),
    "invalid_query": (422, "A query parameter is out of range"),
    "missing_field": (422, "A required field is missing"),
}


def status_of(code: str) -> int:
    if code in HTTP_CODES:
        return HTTP_CODES[code][0]
    return CODES.get(code, (400, ""))[0]


def problem(code: str, detail: str, **extra: Any) -> Response:
    status = status_of(code)
    title = HTTP_CODES.get(code, CODES.get(code, (status, code)))[1]
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "code": code}
    body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return Reply(_encoder.encode(body), status, "application/problem+json", headers)


def refusal(refused: ClientError | Rejected) -> Response:
    """The engine's refusal (raised, or answered as an event), with the bounds it names."""
    return problem(refused.code, refused.detail, field=refused.field, **(refused.limits or {}))


_AT = re.compile(r" - at `\$(.*)`$")
_UNKNOWN = re.compile(r"Object contains unknown field `([^`]*)`")
_MISSING = re.compile(r"Object missing required field `([^`]*)`")
_WRONG_UNIT = re.compile(r"(yuan|_t$|_g$|_ton|per_kg|cny|rmb|usd|jin)", re.IGNORECASE)


def _path(message: str) -> str | None:
    m = _AT.search(message)
    if not m:
        return None
    return m.group(1).lstrip(".") or None


def validation_problem(err: msgspec.ValidationError) -> Response:
    """msgspec's validation message, as a stable code and the field it is about."""
    message = str(err)
    where = _path(message)
    if m := _UNKNOWN.search(message):
        name = m.group(1)
        field = f"{where}.{name}" if where else name
        if _WRONG_UNIT.search(name):
            return problem(
                "wrong_unit",
                f"`{name}` is not a field: prices are fen per tonne (`*_fen_per_t`) and "
                "weights whole kilograms (`*_kg`)",
                field=field,
            )
        return problem(
            "unknown_field",
            f"`{name}` is not a field of this request (identity comes from your token)",
            field=field,
        )
    if m := _MISSING.search(message):
        name = m.group(1)
        return problem(
            "missing_field", f"`{name}` is required", field=f"{where}.{name}" if where else name
        )
    detail = _AT.sub("", message)
    if detail.startswith("Expected `") and "`, got `" in detail:
        return problem("invalid_type", detail, field=where)
    return problem("invalid_value", detail, field=where)
