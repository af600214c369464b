"""schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.integration.st_hooks``).

- A fresh ``Idempotency-Key`` for every case that sends a valid one, so that two cases
  never share a key by chance (the same key with another body is, rightly, 422).  A
  missing or invalid key, which the negative phases send on purpose, is left as it is.
- No positive case with a float in its body.  JSON Schema counts ``123.0`` as an integer,
  so a generator may offer it as valid data; ../shared/BAD_INPUTS.md says a float where
  an integer is due is 422 ``invalid_type``, and the API has no fractional field.  The
  web tests check that refusal; here it would only be reported as a valid request
  refused.  The same for what JSON Schema cannot say: an ``expires_at`` in the past,
  a ``min_lot_kg`` above the bid's ``qty_kg``, a buy-now price at or below the start
  price or the reserve.
- A valid request refused for the state it meets is a refusal, not a failure, where
  BAD_INPUTS.md gives it 422 rather than 409: a bid below the minimum next bid
  (``below_increment``), beyond the bidder's buying power
  (``insufficient_buying_power``), or outside the band around the market's current daily
  quote (``price_out_of_band``; the demo and the run itself publish quotes).  Any other
  422 to valid data still fails the run.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

_VALID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def _in_the_past(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("expires_at"), str):
        return False
    try:
        when = datetime.fromisoformat(body["expires_at"].replace("z", "Z"))
    except ValueError:
        return False
    return when.tzinfo is not None and when < datetime.now(UTC) + timedelta(minutes=1)


def _above(body: dict[str, Any], low: str, high: str, or_equal: bool = False) -> bool:
    a, b = body.get(low), body.get(high)
    if not isinstance(a, int) or not isinstance(b, int):
        return False
    return a >= b if or_equal else a > b


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    meta = case.meta
    positive = meta is None or meta.generation.mode.name == "POSITIVE"
    body = case.body
    crossed = isinstance(body, dict) and (
        _above(body, "min_lot_kg", "qty_kg")
        or _above(body, "start_price_fen_per_t", "buy_now_fen_per_t", or_equal=True)
        or _above(body, "reserve_fen_per_t", "buy_now_fen_per_t", or_equal=True)
    )
    return not (positive and (_has_float(body) or _in_the_past(body) or crossed))


STATE_REFUSALS = frozenset({"below_increment", "insufficient_buying_power", "price_out_of_band"})


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if getattr(failure, "code", None) != "ST202" or response.status_code != 422:
        return True
    try:
        code = json.loads(response.content).get("code")
    except (ValueError, AttributeError):
        return True
    return code not in STATE_REFUSALS


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers
    if headers and _VALID.match(str(headers.get("Idempotency-Key", ""))):
        headers["Idempotency-Key"] = uuid.uuid4().hex
