"""The API in-process: policies on every route, roles, owners, and every HTTP row of
../shared/BAD_INPUTS.md.  No request may answer 500."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.web.conftest import PEOPLE, Service
from web.api import ENDPOINTS
from web.pages import PAGES
from web.wire import (
    AmendBidBody,
    AuctionBidBody,
    BuyingPowerBody,
    CounterBody,
    Empty,
    OfferBody,
    PlaceBidBody,
    PostLotBody,
    PublishPriceBody,
)

M = "ebike:330522"
VALID_BODY: dict[Any, dict[str, Any]] = {
    PlaceBidBody: {"market": M, "price_fen_per_t": 1_000_000, "qty_kg": 1000},
    AmendBidBody: {"qty_kg": 10},
    PostLotBody: {"mode": "one_click", "market": M, "weight_kg": 100},
    AuctionBidBody: {"max_price_fen_per_t": 1_000_000},
    OfferBody: {"price_fen_per_t": 1_000_000, "expires_at": "2099-01-01T00:00:00Z"},
    CounterBody: {"price_fen_per_t": 1_000_000},
    BuyingPowerBody: {"bidder": "ra", "limit_fen": 10**9},
    PublishPriceBody: {"kind": "upstream", "key": M, "price_fen_per_t": 1_000_000},
    Empty: {},
}


def fill(path: str, ident: str = "999999") -> str:
    return re.sub(r"{(\w+)_id}", ident, path).replace("{market}", M)


def code(resp: Any) -> str:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    return str(resp.json()["code"])


def place_bid(svc: Service, who: str = "ra", price: int = 1_000_000, qty: int = 2000) -> int:
    resp = svc.post(who, "/v1/bids", {"market": M, "price_fen_per_t": price, "qty_kg": qty})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def post_lot(svc: Service, who: str = "s1", **body: Any) -> Any:
    return svc.post(who, "/v1/lots", {"market": M, "weight_kg": 500, **body})


# -- policies ----------------------------------------------------------------------------


def test_every_route_has_a_policy(service: Service) -> None:
    declared = {ep.name: ep for ep in ENDPOINTS}
    public = {"openapi", "static", *(f"page:{n.removesuffix('.html')}" for n in PAGES.values())}
    seen = set()
    for route in service.client.app.routes:  # type: ignore[attr-defined]
        for name in route.name.split(","):  # pages and their files are public, on purpose
            assert name in public or name in declared, f"{route.path} has no policy entry"
            if name not in public:
                ep = declared[name]
                assert ep.public or ep.roles, f"{route.path} allows nobody by accident"
                assert ep.method in route.methods
                seen.add(name)
    assert seen == set(declared)


def test_every_route_with_every_role(service: Service) -> None:
    """Missing objects everywhere: 403 for a role the policy leaves out, otherwise a
    clear answer (never 500, never a 2xx on something that does not exist)."""
    for ep in ENDPOINTS:
        if ep.public:
            continue
        path = fill(ep.path)
        for who in PEOPLE:
            if ep.method == "GET":
                resp = service.get(who, path)
            else:
                resp = service.post(who, path, VALID_BODY[ep.body])
            role = PEOPLE[who][1]
            assert resp.status_code != 500, (ep.name, who, resp.text)
            if role not in ep.roles:
                assert resp.status_code == 403 and code(resp) == "forbidden_role", (ep.name, who)
            elif "{" in ep.path and "_id}" in ep.path:
                assert resp.status_code == 404, (ep.name, who, resp.status_code, resp.text)
        # no token, an unknown one, an expired one, a revoked one: 401
        for token in (None, "nope", service.tokens["expired"], service.tokens["revoked"]):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            headers["Idempotency-Key"] = "x"
            call = service.client.get if ep.method == "GET" else service.client.post
            resp = call(path, headers=headers)
            assert resp.status_code == 401 and code(resp) == "unauthorized", (ep.name, token)


def test_another_principals_objects_answer_404(service: Service) -> None:
    bid = place_bid(service, "ra")
    assert code(service.post("rb", f"/v1/bids/{bid}/cancel")) == "bid_not_found"
    assert code(service.post("rb", f"/v1/bids/{bid}/amend", {"qty_kg": 5})) == "bid_not_found"
    assert service.post("ra", f"/v1/bids/{bid}/amend", {"qty_kg": 5}).status_code == 200
    lot = post_lot(service, "s1", mode="auction", start_price_fen_per_t=990_000, duration_s=600)
    lot_id = lot.json()["id"]
    assert code(service.post("s2", f"/v1/lots/{lot_id}/cancel")) == "lot_not_found"
    assert code(service.get("s2", f"/v1/lots/{lot_id}")) == "lot_not_found"
    assert service.get("s1", f"/v1/lots/{lot_id}").status_code == 200
    assert service.get("ra", f"/v1/lots/{lot_id}").status_code == 200  # on sale: visible
    assert service.get("reg", f"/v1/lots/{lot_id}").status_code == 200  # in 3305
    assert code(service.get("reg2", f"/v1/lots/{lot_id}")) == "lot_not_found"
    mine = service.get("rb", "/v1/bids").json()["items"]
    assert all(b["owner"] == "rb" for b in mine)


def test_self_dealing_and_roles_that_may_not_bid(service: Service) -> None:
    lot_id = post_lot(service, "s1", mode="auction", start_price_fen_per_t=990_000,
                      duration_s=600).json()["id"]  # fmt: skip
    resp = service.post("rs", f"/v1/lots/{lot_id}/bids", {"max_price_fen_per_t": 1_000_000})
    assert resp.status_code == 403 and code(resp) == "self_dealing_forbidden"
    for who in ("s1", "tr", "reg", "adm", "svc"):
        resp = service.post(who, "/v1/bids", VALID_BODY[PlaceBidBody])
        assert resp.status_code == 403 and code(resp) == "forbidden_role", who


# -- bodies and types ----------------------------------------------------------------------

U = "unknown_field"
P = "price_fen_per_t"
BAD_BODIES = [
    ({"market": M, "price_fen_per_t": -5, "qty_kg": 100}, 422, "invalid_value", P),
    ({"market": M, "price_fen_per_t": 0, "qty_kg": 100}, 422, "invalid_value", P),
    ({"market": M, "price_fen_per_t": 10**15, "qty_kg": 1}, 422, "invalid_value", P),
    ({"market": M, "price_fen_per_t": 1, "qty_kg": 10**12}, 422, "invalid_value", "qty_kg"),
    ({"market": M, "price_fen_per_t": 123.45, "qty_kg": 1}, 422, "invalid_type", P),
    ({"market": M, "price_fen_per_t": 123.0, "qty_kg": 100}, 422, "invalid_type", P),
    ({"market": M, "price_fen_per_t": 1e3, "qty_kg": 100}, 422, "invalid_type", P),
    ({"market": M, "price_fen_per_t": "12300", "qty_kg": 1}, 422, "invalid_type", P),
    ({"market": M, "price_fen_per_t": True, "qty_kg": 100}, 422, "invalid_type", P),
    ({"market": M, "price_fen_per_t": 1, "qty_kg": 1, "bidder_id": "x"}, 422, U, "bidder_id"),
    ({"market": M, "price_fen_per_t": 1, "qty_kg": 1, "status": "won"}, 422, U, "status"),
    ({"market": M, "price_fen_per_t": 1, "qty_kg": 1, "seq": 1}, 422, "unknown_field", "seq"),
    ({"market": M, "price_yuan_per_t": 10_000, "qty_kg": 1}, 422, "wrong_unit", "price_yuan_per_t"),
    ({"market": M, "price_fen_per_t": 1_000_000, "qty_t": 2}, 422, "wrong_unit", "qty_t"),
    ({"market": "ebike:33", "price_fen_per_t": 1, "qty_kg": 1}, 422, "invalid_value", "market"),
    ({"price_fen_per_t": 1, "qty_kg": 1}, 422, "missing_field", "market"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "want", "field"), BAD_BODIES)
def test_bad_bodies(service: Service, body: Any, status: int, want: str, field: str) -> None:
    before = service.get("ra", "/v1/bids").json()["items"]
    resp = service.post("ra", "/v1/bids", body)
    assert resp.status_code == status, resp.text
    assert code(resp) == want and resp.json().get("field") == field
    assert service.get("ra", "/v1/bids").json()["items"] == before  # nothing changed


@pytest.mark.parametrize(
    "raw",
    [b'{"market": "x", "price_fen_per_t": NaN}', b'{"price_fen_per_t": Infinity}',
     b'{"market": "ebike:330522"} trailing', b'{}{}', b"", b'{"market": "\xff\xfe"}',
     b"[" * 5000 + b"]" * 5000, b'{"a": ' * 3000],
)  # fmt: skip
def test_malformed_json_is_400(service: Service, raw: bytes) -> None:
    resp = service.post("ra", "/v1/bids", content=raw)
    assert resp.status_code in (400, 413), resp.text
    assert code(resp) in ("malformed_json", "payload_too_large")


def test_content_type_size_and_idempotency_headers(service: Service) -> None:
    body = b'{"market": "ebike:330522", "price_fen_per_t": 1000000, "qty_kg": 100}'
    resp = service.post("ra", "/v1/bids", content=body, headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415
    headers = service.headers("ra")
    del headers["Content-Type"]
    assert service.client.post("/v1/bids", content=body, headers=headers).status_code == 415
    big = b'{"market": "' + b"x" * 20_000 + b'"}'
    assert service.post("ra", "/v1/bids", content=big).status_code == 413
    headers = service.headers("ra", key=False)
    resp = service.client.post("/v1/bids", content=body, headers=headers)
    assert resp.status_code == 400 and code(resp) == "idempotency_key_missing"
    for key in ("x" * 256, "bad key", "ключ".encode(), ""):
        bad_key: dict[str, Any] = service.headers("ra", key=False) | {"Idempotency-Key": key}
        resp = service.client.post("/v1/bids", content=body, headers=bad_key)
        assert resp.status_code == 400 and code(resp) == "idempotency_key_invalid", key


def test_idempotency_over_http(service: Service) -> None:
    compact = b'{"market":"ebike:330522","price_fen_per_t":1000000,"qty_kg":100}'
    spaced = b'{ "qty_kg" : 100,\n  "market": "ebike:330522", "price_fen_per_t": 1000000 }'
    h = service.headers("ra") | {"Idempotency-Key": "same"}
    first = service.client.post("/v1/bids", content=compact, headers=h)
    again = service.client.post("/v1/bids", content=spaced, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replay") == "true"
    assert again.json()["seq"] == first.json()["seq"] and again.json()["replay"] is True
    other = b'{"market":"ebike:330522","price_fen_per_t":1000000,"qty_kg":200}'
    resp = service.client.post("/v1/bids", content=other, headers=h)
    assert resp.status_code == 422 and code(resp) == "idempotency_key_reused"
    hb = service.headers("rb") | {"Idempotency-Key": "same"}  # another principal: its own
    theirs = service.client.post("/v1/bids", content=compact, headers=hb)
    assert theirs.status_code == 201 and theirs.json()["replay"] is False


def test_list_queries_are_bounded(service: Service) -> None:
    for query in ("limit=100000", "limit=0", "offset=-1", "limit=abc"):
        resp = service.get("ra", f"/v1/bids?{query}")
        assert resp.status_code == 422, query


@pytest.mark.parametrize("path", ["/v1/lots?state=a%00b", "/v1/bids?state=%00", "/v1/trades?x=%00"])
def test_a_nul_in_a_query_is_refused(service: Service, path: str) -> None:
    """PostgreSQL cannot hold the character at all: refused before any database sees it."""
    resp = service.get("ra", path)
    assert resp.status_code == 422 and code(resp) == "invalid_value", resp.text


@pytest.mark.parametrize(
    ("who", "path", "field"),
    [
        ("ra", "/v1/lots?limit={}", "limit"),
        ("ra", "/v1/trades?offset={}", "offset"),
        ("ra", f"/v1/markets/{M}/book?depth={{}}", "depth"),
        ("s1", f"/v1/markets/{M}/sell-quote?weight_kg={{}}", "weight_kg"),
    ],
)
@pytest.mark.parametrize("raw", ["%205", "%2B5", "1_0", "%D9%A5", "5.0", "", "0x10", "9" * 12])
def test_whole_number_parameters_are_ascii_digits_in_range(
    service: Service, who: str, path: str, field: str, raw: str
) -> None:
    """ " 5", "+5", "1_0" and an Arabic-Indic five are whole numbers to Python's int, not
    to the API; every such parameter is refused alike and names itself."""
    resp = service.get(who, path.format(raw))
    assert resp.status_code == 422 and code(resp) == "invalid_value", resp.text
    assert resp.json()["field"] == field


@pytest.mark.parametrize("ident", ["0x10", "1" * 40, "..%2F..%2Fetc", "1;DROP TABLE lots", "-1"])
def test_malformed_ids_are_not_found(service: Service, ident: str) -> None:
    resp = service.get("ra", f"/v1/lots/{ident}")
    assert resp.status_code == 404, resp.text


# -- rules of the market -------------------------------------------------------------------


def test_auction_rules_over_http(service: Service) -> None:
    lot_id = post_lot(service, "s1", mode="auction", start_price_fen_per_t=990_000,
                      duration_s=600, reserve_fen_per_t=1_200_000).json()["id"]  # fmt: skip
    ok = service.post("ra", f"/v1/lots/{lot_id}/bids", {"max_price_fen_per_t": 1_000_000})
    assert ok.status_code == 200
    accepted = ok.json()["events"][0]
    assert accepted["leading"] is True and accepted["reserve_met"] is False  # not revealed
    low = service.post("rb", f"/v1/lots/{lot_id}/bids", {"max_price_fen_per_t": 990_500})
    assert low.status_code == 422 and code(low) == "below_increment"
    assert "991000" in low.json()["detail"] and low.json()["min_next_bid_fen_per_t"] == 991_000
    service.post("adm", "/v1/admin/buying-power", {"bidder": "rb", "limit_fen": 10_000})
    rich = service.post("rb", f"/v1/lots/{lot_id}/bids", {"max_price_fen_per_t": 1_010_000})
    assert rich.status_code == 422 and code(rich) == "insufficient_buying_power"
    cancelled = post_lot(service, "s1", mode="auction", start_price_fen_per_t=990_000,
                         duration_s=600).json()["id"]  # fmt: skip
    assert service.post("s1", f"/v1/lots/{cancelled}/cancel").status_code == 200
    closed = service.post("ra", f"/v1/lots/{cancelled}/bids", {"max_price_fen_per_t": 1_000_000})
    assert closed.status_code == 409 and code(closed) == "lot_not_open"


def test_rate_limit(service: Service) -> None:
    from web.api import RateLimiter

    service.client.app.state.ctx.limiter = RateLimiter(rate=0.5, burst=3)  # type: ignore[attr-defined]
    answers = [service.get("ra", "/v1/markets") for _ in range(5)]
    assert [a.status_code for a in answers][:3] == [200, 200, 200]
    assert answers[-1].status_code == 429 and int(answers[-1].headers["Retry-After"]) >= 1
    assert service.get("rb", "/v1/markets").status_code == 200  # per principal


def test_health_openapi_and_unknown_paths(service: Service) -> None:
    assert service.client.get("/healthz").json()["journal"] == "reachable"
    spec = service.client.get("/openapi.json").json()
    assert (
        spec["components"]["schemas"]["PlaceBidBody"]["properties"]["price_fen_per_t"]["maximum"]
        == 10_000_000_000
    )
    assert "/v1/lots/{lot_id}/bids" in spec["paths"]
    resp = service.client.get("/nowhere")
    assert resp.status_code == 404 and code(resp) == "not_found"
    resp = service.client.delete("/v1/bids")
    assert resp.status_code == 405 and code(resp) == "method_not_allowed"
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_market_books(service: Service) -> None:
    place_bid(service, "ra", price=1_000_000, qty=500)
    book = service.get("ra", f"/v1/markets/{M}/book?depth=5").json()
    assert book["bids"] == [{"price_fen_per_t": 1_000_000, "qty_kg": 500, "orders": 1}]
    quiet = service.get("ra", "/v1/markets/auto_white:330523/book")
    assert quiet.status_code == 200 and quiet.json()["bids"] == []  # known, nobody trades yet
    unknown = service.get("ra", "/v1/markets/lithium:330522/book")
    assert unknown.status_code == 422 and code(unknown) == "unknown_market"
    assert code(service.get("ra", f"/v1/markets/{M}/book?depth=500")) == "invalid_value"


def test_a_new_lot_says_where_it_can_be_read(service: Service) -> None:
    resp = post_lot(service, "s1", mode="offers")
    assert resp.status_code == 201
    assert resp.headers["Location"] == f"/v1/lots/{resp.json()['id']}"
    assert service.get("s1", resp.headers["Location"]).json()["lot_id"] == resp.json()["id"]
    links = service.client.get("/openapi.json").json()["paths"]["/v1/lots"]["post"]
    assert links["responses"]["201"]["links"]["get_lot"]["parameters"] == {
        "lot_id": "$response.body#/id"
    }


def test_an_amendment_changes_something(service: Service) -> None:
    bid = place_bid(service, "ra")
    empty = service.post("ra", f"/v1/bids/{bid}/amend", {})
    assert empty.status_code == 422 and code(empty) == "invalid_value"
    null = service.post("ra", f"/v1/bids/{bid}/amend", {"qty_kg": None})
    assert null.status_code == 422 and code(null) == "invalid_type"
    spec = service.client.get("/openapi.json").json()["components"]["schemas"]["AmendBidBody"]
    assert spec["minProperties"] == 1


def _board(service: Service, who: str, until: Any) -> Any:
    for _ in range(200):
        board = service.get(who, "/v1/prices").json()
        if until(board):
            return board
        time.sleep(0.01)
    raise AssertionError(board)


def test_prices_published_bands_enforced_statistics_live(service: Service) -> None:
    daily = {"kind": "daily", "key": M, "price_fen_per_t": 1_000_000}
    assert service.post("svc", "/v1/prices", daily).status_code == 200
    assert service.post("adm", "/v1/prices", {**daily, "kind": "end_of_chain", "key": "lead",
                                               "price_fen_per_t": 1_650_000, "vat_included": True}
                        ).status_code == 200  # fmt: skip
    own = service.post("ra", "/v1/prices", {**daily, "kind": "upstream"})
    assert own.status_code == 200
    assert code(service.post("ra", "/v1/prices", daily)) == "forbidden_role"
    assert code(service.post("s1", "/v1/prices", daily)) == "forbidden_role"
    far = service.post("ra", "/v1/bids", {"market": M, "price_fen_per_t": 2_000_000, "qty_kg": 10})
    assert far.status_code == 422 and code(far) == "price_out_of_band"
    assert "800000-1200000" in far.json()["detail"] and far.json()["field"] == "price_fen_per_t"
    assert (far.json()["band_low_fen_per_t"], far.json()["band_high_fen_per_t"]) == (
        800_000,
        1_200_000,
    )
    place_bid(service, "ra", price=1_000_000, qty=500)
    place_bid(service, "rb", price=1_100_000, qty=500)
    sold = post_lot(service, "s1", mode="one_click", weight_kg=800, allow_partial=True)
    assert sold.status_code == 201, sold.text
    board = _board(service, "reg", lambda b: b["markets"] and b["markets"][0]["trades"] == 2)
    (stats,) = board["markets"]
    assert (stats["open_fen_per_t"], stats["last_fen_per_t"]) == (1_100_000, 1_000_000)
    assert stats["volume_kg"] == 800 and stats["buyers"] == 2
    assert stats["vwap_fen_per_t"] == (1_100_000 * 500 + 1_000_000 * 300) // 800 + 0
    kinds = {(q["kind"], q["key"], q["publisher"]) for q in board["quotes"]}
    assert kinds == {("daily", M, "svc"), ("end_of_chain", "lead", "adm"), ("upstream", M, "ra")}
    (index,) = board["indices"]
    assert index["lead_ratio"] == round(index["index_fen_per_t"] / 1_650_000, 4)
    one = service.get("s1", f"/v1/markets/{M}/prices").json()
    assert one["stats"] == stats and len(one["quotes"]) == 3 and one["stale"] is False
    history = service.get("reg", f"/v1/prices/history?market={M}&from=2000-01-01&to=2000-12-31")
    assert history.status_code == 200 and history.json()["days"] == []
    bad = service.get("reg", f"/v1/prices/history?market={M}&from=2000-13-01")
    assert bad.status_code == 422 and code(bad) == "invalid_query"
