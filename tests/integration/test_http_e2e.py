"""End to end over real HTTP: ``auction serve`` in a subprocess on a free port.

A one-click sale trades against the best standing bid that can take it; an auction with
two proxy bidders closes on the clock and awards the right recycler at the right price;
an offer is countered and the counter accepted.  Auctions here use a catalogue whose
minimum duration is one second (``AUCTION_CATALOGUE``), so the close comes quickly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from tests.integration.server import Service, environment, make_accounts, running

M = "ebike:330522"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[Service]:
    catalogue = json.loads(resources.files("auction").joinpath("data/catalogue.json").read_text())
    catalogue["sale_rules"]["default"].update(min_duration_s=1, soft_close_s=1, max_extension_s=2)
    (tmp_path / "catalogue.json").write_text(json.dumps(catalogue))
    env = environment(tmp_path, AUCTION_CATALOGUE=str(tmp_path / "catalogue.json"))
    with running(env, make_accounts(env), tmp_path / "serve.log") as svc:
        yield svc


def test_a_day_at_the_market_over_http(http: Service) -> None:
    for who in ("ra", "rb"):
        assert (
            http.call("POST", "/v1/admin/buying-power", "adm", {"bidder": who, "limit_fen": 10**9})[
                0
            ]
            == 200
        )
    # standing bids: rb pays more but holds only 1 t
    assert (
        http.call(
            "POST", "/v1/bids", "ra", {"market": M, "price_fen_per_t": 1_000_000, "qty_kg": 2_000}
        )[0]
        == 201
    )
    assert (
        http.call(
            "POST", "/v1/bids", "rb", {"market": M, "price_fen_per_t": 1_010_000, "qty_kg": 1_000}
        )[0]
        == 201
    )

    # one-click: 800 kg goes to rb's better bid at rb's price
    status, sold = http.call(
        "POST", "/v1/lots", "s1", {"mode": "one_click", "market": M, "weight_kg": 800}
    )
    assert status == 201, sold
    trade = next(e for e in sold["events"] if e["type"] == "traded")
    assert (trade["buyer"], trade["price_fen_per_t"], trade["weight_kg"]) == ("rb", 1_010_000, 800)
    assert trade["amount_fen"] == 808_000

    # competitive sale: two proxies, the clock closes it
    status, started = http.call("POST", "/v1/lots", "s1", {
        "mode": "auction", "market": M, "weight_kg": 1_500, "start_price_fen_per_t": 990_000,
        "duration_s": 3})  # fmt: skip
    assert status == 201, started
    lot = started["id"]
    assert (
        http.call("POST", f"/v1/lots/{lot}/bids", "ra", {"max_price_fen_per_t": 1_050_000})[0]
        == 200
    )
    status, answer = http.call(
        "POST", f"/v1/lots/{lot}/bids", "rb", {"max_price_fen_per_t": 1_020_000}
    )
    assert status == 200 and answer["events"][0]["leading"] is False
    time.sleep(3.5)
    status, shown = http.call("GET", f"/v1/lots/{lot}", "s1")
    assert status == 200 and shown["state"] == "awarded", shown
    status, awards = http.call("GET", "/v1/awards", "ra")
    award = next(a for a in awards["items"] if a["lot_id"] == lot)
    # the runner-up's 1,020,000 plus one ¥50/t increment, within ra's maximum
    assert (award["buyer"], award["price_fen_per_t"], award["via"]) == ("ra", 1_025_000, "auction")
    assert award["amount_fen"] == 1_537_500

    # negotiated sale: an offer, a counter, the counter accepted
    status, listed = http.call(
        "POST", "/v1/lots", "s2", {"mode": "offers", "market": M, "weight_kg": 600}
    )
    assert status == 201
    lot2 = listed["id"]
    status, offered = http.call("POST", f"/v1/lots/{lot2}/offers", "ra", {
        "price_fen_per_t": 1_000_000, "expires_at": "2099-01-01T00:00:00Z"})  # fmt: skip
    assert status == 201, offered
    offer = offered["id"]
    assert (
        http.call("POST", f"/v1/offers/{offer}/counter", "s2", {"price_fen_per_t": 1_015_000})[0]
        == 200
    )
    status, accepted = http.call("POST", f"/v1/offers/{offer}/accept-counter", "ra")
    assert status == 200, accepted
    award2 = next(e for e in accepted["events"] if e["type"] == "awarded")
    assert (award2["buyer"], award2["price_fen_per_t"], award2["via"]) == (
        "ra",
        1_015_000,
        "counter",
    )
    status, trades = http.call("GET", "/v1/trades", "s1")
    assert [t["lot_id"] for t in trades["items"]] == [sold["id"]]
