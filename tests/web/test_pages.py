"""The screens' routes and the two reads made for them: the catalogue and the one-click
quote (a store sees what a sale would fetch; nothing changes)."""

from __future__ import annotations

from tests.web.conftest import Service
from tests.web.test_api import M, code, place_bid, post_lot


def test_pages_are_served_with_a_strict_policy(service: Service) -> None:
    for path, marker in (("/", "board.js"), ("/store", "store.js"), ("/recycler", "recycler.js")):
        resp = service.client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["content-type"] == "text/html; charset=utf-8"
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert f'src="/static/{marker}"' in resp.text
        assert '<html lang="zh-CN">' in resp.text
        assert "<!--#include" not in resp.text and 'id="feed"' in resp.text
    for asset in ("common.js", "charts.js", "room.js", "app.css"):
        assert service.client.get(f"/static/{asset}").status_code == 200
    missing = service.client.get("/static/nope.js")
    assert missing.status_code == 404


def test_the_catalogue_is_public(service: Service) -> None:
    resp = service.client.get("/v1/catalogue")
    assert resp.status_code == 200
    body = resp.json()
    assert {"ebike", "auto_black"} <= {c["code"] for c in body["categories"]}
    assert body["blocks_per_set"]["48V"] == 4
    assert any(m["model"] == "6-DZM-20" and m["block_kg_x10"] == 68 for m in body["battery_models"])


def test_the_one_click_quote_is_what_the_sale_fetches(service: Service) -> None:
    path = f"/v1/markets/{M}/sell-quote?weight_kg="
    empty = service.get("s1", path + "300").json()
    assert empty == {"market": M, "weight_kg": 300, "price_fen_per_t": None, "amount_fen": None}
    place_bid(service, "ra", 1_001_000, 200)  # too small to take 300 kg whole
    place_bid(service, "rb", 999_000, 1000)
    place_bid(service, "rs", 1_009_000, 5000)  # store s1's own organisation: never its buyer
    quote = service.get("s1", path + "300").json()
    assert (quote["price_fen_per_t"], quote["amount_fen"]) == (
        999_000,
        299_700,
    )  # ¥9,990/t × 0.3 t = ¥2,997
    assert service.get("s2", path + "300").json()["price_fen_per_t"] == 1_009_000
    sale = post_lot(service, "s1", mode="one_click", weight_kg=300)
    assert sale.status_code == 201, sale.text
    fills = [e for e in sale.json()["events"] if e["type"] == "traded"]
    assert [(f["price_fen_per_t"], f["weight_kg"]) for f in fills] == [(999_000, 300)]


def test_a_bad_one_click_quote_is_refused(service: Service) -> None:
    for query in ("", "?weight_kg=0", "?weight_kg=-5", "?weight_kg=1.5", "?weight_kg=abc",
                  "?weight_kg=99999999999999999999", "?weight_kg=١٢"):  # fmt: skip
        resp = service.get("s1", f"/v1/markets/{M}/sell-quote{query}")
        assert resp.status_code == 422 and code(resp) == "invalid_value", query
    resp = service.get("s1", "/v1/markets/nope/sell-quote?weight_kg=5")
    assert resp.status_code == 422 and code(resp) == "unknown_market"
    assert code(service.get("ra", f"/v1/markets/{M}/sell-quote?weight_kg=5")) == "forbidden_role"


def test_the_owner_sees_the_open_offers_unnamed(service: Service) -> None:
    lot = post_lot(service, "s1", mode="offers", expires_at="2099-01-01T00:00:00Z")
    assert lot.status_code == 201, lot.text
    lot_id = lot.json()["id"]
    offer = service.post(
        "ra", f"/v1/lots/{lot_id}/offers",
        {"price_fen_per_t": 1_002_000, "expires_at": "2099-01-01T00:00:00Z"},
    )  # fmt: skip
    assert offer.status_code == 201, offer.text
    view = service.get("s1", f"/v1/lots/{lot_id}").json()
    assert [(o["offer_id"], o["price_fen_per_t"], o["status"]) for o in view["offers"]] == [
        (offer.json()["id"], 1_002_000, "made")
    ]
    assert "bidder" not in view["offers"][0]
    assert "offers" not in service.get("ra", f"/v1/lots/{lot_id}").json()


def test_the_engine_state_for_admins(service: Service) -> None:
    place_bid(service, "ra", 1_000_000, 1000)
    full = service.get("adm", "/v1/admin/state").json()
    assert full["seq"] >= 1 and len(full["state_hash"]) == 64
    assert full["resting"] == 1 and full["lots"] == 0
    cheap = service.get("adm", "/v1/admin/state?hash=false").json()
    assert "state_hash" not in cheap and cheap["seq"] == full["seq"]
    assert code(service.get("ra", "/v1/admin/state")) == "forbidden_role"
    for bad in ("maybe", "", "False", "1"):
        resp = service.get("adm", f"/v1/admin/state?hash={bad}")
        assert resp.status_code == 422 and code(resp) == "invalid_value", bad
