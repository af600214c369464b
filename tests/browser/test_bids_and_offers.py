"""Standing bids through the recycler page, refusals shown as sentences, a below-reserve
result decided on the store page, and offers answered both ways."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.integration.server import Service

expect = pytest.importorskip("playwright.sync_api").expect


def open_bids(service: Service, who: str, market: str) -> list[tuple[int, int]]:
    status, page = service.call("GET", "/v1/bids?state=open&limit=200", who)
    assert status == 200
    return [(b["price_fen_per_t"], b["open_kg"]) for b in page["items"] if b["market"] == market]


def test_place_amend_and_cancel_a_standing_bid(
    service: Service, open_page: Callable[..., Any]
) -> None:
    market = "auto_white:330522"
    who = "recycler-chaowei"
    before = open_bids(service, who, market)
    page = open_page(f"{service.base}/recycler?market={market}")
    sign_in(page, service.tokens[who])

    page.fill("#bid-price", "9950.5")
    page.fill("#bid-qty", "4000")
    page.press("#bid-qty", "Enter")
    expect(page.locator("#place-say")).to_contain_text("placed")
    bid = int(re.search(r"Bid (\d+)", page.locator("#place-say").inner_text()).group(1))  # type: ignore[union-attr]
    assert open_bids(service, who, market) == [*before, (995_050, 4000)]
    # the book channel shows it on the ladder
    expect(page.locator("#ladder")).to_contain_text("¥9,950.50/t")

    row = page.locator(f'#bids tr[data-bid="{bid}"]')
    row.get_by_label(re.compile("New price")).fill("9960")
    row.get_by_role("button", name=re.compile("Amend")).click()
    expect(page.locator("#bids-say")).to_contain_text(f"Bid {bid} amended")
    assert (996_000, 4000) in open_bids(service, who, market)

    page.locator(f'#bids tr[data-bid="{bid}"]').get_by_role(
        "button", name=re.compile("Cancel")
    ).click()
    expect(page.locator("#bids-say")).to_contain_text(f"Bid {bid} cancelled")
    expect(page.locator(f'#bids tr[data-bid="{bid}"]')).to_have_count(0)
    assert open_bids(service, who, market) == before


def test_what_one_types_survives_a_reload_of_the_bids_table(
    service: Service, open_page: Callable[..., Any]
) -> None:
    """The table of one's bids is drawn again when a notice comes (a fill, a bid placed
    elsewhere).  A new price being typed into it stays, with the focus, and is the one
    that Amend sends.  Before, the reload put back the old price under the typist's
    hands, and Amend answered "Nothing changed" (seen in the suite on a slow machine)."""
    market = "auto_white:330522"
    who = "recycler-chaowei"
    status, placed = service.call(
        "POST", "/v1/bids", who, {"market": market, "price_fen_per_t": 995_050, "qty_kg": 4000}
    )
    assert status == 201, placed
    bid = placed["id"]
    page = open_page(f"{service.base}/recycler?market={market}")
    sign_in(page, service.tokens[who])
    price = page.locator(f'#bids tr[data-bid="{bid}"]').get_by_label(re.compile("New price"))
    price.fill("9960")
    expect(price).to_be_focused()

    # another bid of the same recycler, placed elsewhere: its notice reloads the table
    status, other = service.call(
        "POST", "/v1/bids", who, {"market": market, "price_fen_per_t": 990_000, "qty_kg": 1000}
    )
    assert status == 201, other
    expect(page.locator(f'#bids tr[data-bid="{other["id"]}"]')).to_have_count(1)
    price = page.locator(f'#bids tr[data-bid="{bid}"]').get_by_label(re.compile("New price"))
    expect(price).to_have_value("9960")
    expect(price).to_be_focused()

    page.locator(f'#bids tr[data-bid="{bid}"]').get_by_role(
        "button", name=re.compile("Amend")
    ).click()
    expect(page.locator("#bids-say")).to_contain_text(f"Bid {bid} amended")
    assert (996_000, 4000) in open_bids(service, who, market)
    for b in (bid, other["id"]):  # the module's other tests share the market
        assert service.call("POST", f"/v1/bids/{b}/cancel", who)[0] == 200


def test_a_refusal_is_a_sentence_and_changes_nothing(
    service: Service, open_page: Callable[..., Any]
) -> None:
    market = "auto_white:330522"  # daily quote ¥10,000/t, band ±20%
    who = "recycler-chaowei"
    before = open_bids(service, who, market)
    # the browser itself logs the refused request; that line is the expected answer
    page = open_page(f"{service.base}/recycler?market={market}", allow=("status of 422",))
    sign_in(page, service.tokens[who])
    page.fill("#bid-price", "20000")
    page.fill("#bid-qty", "1000")
    page.press("#bid-qty", "Enter")
    say = page.locator("#place-say")
    expect(say).to_contain_text("价格超出当日报价允许的浮动范围")
    expect(say).to_contain_text("outside the band around today's quote (¥8,000/t – ¥12,000/t)")
    assert open_bids(service, who, market) == before


def test_a_below_reserve_result_accepted_on_the_store_page(
    service: Service, open_page: Callable[..., Any]
) -> None:
    store = open_page(service.base + "/store")
    sign_in(store, service.tokens["store-anji"])
    store.fill("#weight", "400")
    store.fill("#region", "330502")
    store.check('input[name=mode][value="auction"]')
    store.fill("#start", "9000")
    store.fill("#reserve", "10500")
    store.fill("#minutes", "0.1")  # 6 s
    store.click("#sell-go")
    expect(store.locator("#sell-say")).to_contain_text("is in auction")
    lot = int(re.search(r"Lot (\d+)", store.locator("#sell-say").inner_text()).group(1))  # type: ignore[union-attr]
    status, _ = service.call(
        "POST", f"/v1/lots/{lot}/bids", "recycler-tianneng", {"max_price_fen_per_t": 1_000_000}
    )
    assert status == 200
    expect(store.locator('#room [data-field="visible"]')).to_have_text("¥9,000/t")

    decide = store.locator("#decide")
    expect(decide).to_be_visible(timeout=20_000)  # closed below the reserve
    expect(store.locator("#notices")).to_contain_text("reserve was not met")
    store.get_by_role("button", name=re.compile("Accept the best bid")).click()
    expect(store.locator("#room-say")).to_contain_text("Accepted the best bid")
    expect(store.locator(f'#lots tr[data-lot="{lot}"] [data-field="sold"]')).to_contain_text(
        "¥9,000/t"
    )
    status, view = service.call("GET", f"/v1/lots/{lot}", "store-anji")
    assert status == 200 and view["state"] == "awarded", view


def test_offers_countered_on_the_store_page_and_accepted_on_the_recycler_page(
    service: Service, open_page: Callable[..., Any]
) -> None:
    market = "auto_black:330523"
    store = open_page(service.base + "/store")
    sign_in(store, service.tokens["store-anji"])
    store.select_option("#category", "auto_black")
    store.fill("#weight", "700")
    store.fill("#region", "330523")
    store.check('input[name=mode][value="offers"]')
    store.click("#sell-go")
    expect(store.locator("#sell-say")).to_contain_text("is taking offers")
    lot = int(re.search(r"Lot (\d+)", store.locator("#sell-say").inner_text()).group(1))  # type: ignore[union-attr]

    rec = open_page(f"{service.base}/recycler?market={market}")
    sign_in(rec, service.tokens["recycler-huanbao"])
    row = rec.locator(f'#offer-lots tr[data-lot="{lot}"]')
    row.get_by_label(re.compile("Offer, ¥/t")).fill("10200")
    row.get_by_role("button", name=re.compile("Make offer")).click()
    expect(rec.locator("#offers-say")).to_contain_text("made")

    offer = store.locator("#offers tbody tr[data-offer]")
    expect(offer).to_have_count(1)
    expect(offer).to_contain_text("¥10,200/t")
    offer.get_by_label(re.compile("Counter-offer")).fill("10350")
    offer.get_by_role("button", name=re.compile("Counter")).click()
    expect(store.locator("#offers-say")).to_contain_text("Answered")

    accept = rec.locator(f'#offer-lots tr[data-lot="{lot}"]').get_by_role(
        "button", name=re.compile("Accept the counter")
    )
    accept.click()
    expect(rec.locator("#offers-say")).to_contain_text("Done")
    expect(store.locator(f'#lots tr[data-lot="{lot}"] [data-field="sold"]')).to_contain_text(
        "¥10,350/t"
    )
    status, view = service.call("GET", f"/v1/lots/{lot}", "store-anji")
    assert status == 200 and view["state"] == "awarded", view
