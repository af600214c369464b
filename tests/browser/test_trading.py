"""The store and recycler pages: a one-click sale and a whole auction, through the pages
only, checked against the API."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PHONE, sign_in, tab_to, unlabelled
from tests.integration.server import Service

expect = pytest.importorskip("playwright.sync_api").expect


def best_bid(service: Service, market: str) -> tuple[int, int]:
    status, book = service.call("GET", f"/v1/markets/{market}/book?depth=1", "store-changxing")
    assert status == 200 and book["bids"], book
    return book["bids"][0]["price_fen_per_t"], book["bids"][0]["qty_kg"]


def test_one_click_sale_through_the_store_page_with_the_keyboard_only(
    service: Service, open_page: Callable[..., Any]
) -> None:
    price, _ = best_bid(service, "ebike:330522")
    shown = f"¥{price // 100:,}/t"
    page = open_page(service.base + "/store")
    tab_to(page, "#token")
    page.keyboard.type(service.tokens["store-changxing"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#app:not([hidden])")

    # 10 sets of 48 V 6-DZM-20: 10 × 4 × 6.8 kg = 272 kg, from the model table
    tab_to(page, "#model")
    page.keyboard.press("ArrowDown")  # 6-DZM-12 -> 6-DZM-20
    tab_to(page, "#count")
    page.keyboard.press("Control+A")
    page.keyboard.type("10")
    expect(page.locator("#weight")).to_have_value("272")
    expect(page.locator("#fetch")).to_contain_text(shown)  # what it would fetch right now
    expect(page.locator("#fetch")).to_contain_text(f"¥{price * 272 / 100_000:,.2f}")

    tab_to(page, "#sell-go")
    page.keyboard.press("Enter")
    expect(page.locator("#sell-say")).to_contain_text(f"Sold: {shown}")
    message = page.locator("#sell-say").inner_text()
    lot = int(re.search(r"lot (\d+)", message).group(1))  # type: ignore[union-attr]

    # the API agrees: one trade of this lot, whole, at the best standing bid's price
    status, trades = service.call("GET", "/v1/trades?limit=200", "store-changxing")
    assert status == 200
    mine = [t for t in trades["items"] if t["lot_id"] == lot]
    assert [(t["price_fen_per_t"], t["weight_kg"]) for t in mine] == [(price, 272)]
    sold = page.locator(f'#lots tr[data-lot="{lot}"] [data-field="sold"]')
    expect(sold).to_contain_text(shown)
    assert unlabelled(page) == []


def test_an_auction_through_the_pages(
    service: Service, open_page: Callable[..., Any], shots: Path
) -> None:
    market = "ebike:330502"  # no standing bid there joins auctions: only the two pages bid
    store = open_page(service.base + "/store")
    sign_in(store, service.tokens["store-wuxing"])
    store.select_option("#model", "6-DZM-20")
    store.fill("#count", "20")  # 20 sets × 4 × 6.8 kg = 544 kg
    store.fill("#region", "330502")
    store.check('input[name=mode][value="auction"]')
    store.fill("#start", "10000")
    store.fill("#minutes", "0.25")  # 15 s; the soft close is 6 s here (conftest)
    store.click("#sell-go")
    expect(store.locator("#sell-say")).to_contain_text("is in auction")
    lot = int(re.search(r"Lot (\d+)", store.locator("#sell-say").inner_text()).group(1))  # type: ignore[union-attr]
    room = store.locator("#room")
    expect(room).to_contain_text(f"Lot {lot}")

    pages = {}
    for who in ("recycler-tianneng", "recycler-huanbao"):
        page = open_page(f"{service.base}/recycler?market={market}")
        sign_in(page, service.tokens[who])
        page.click(f'#auctions button[data-lot="{lot}"]')
        expect(page.locator('#room [data-field="min-next"]')).to_have_text("¥10,000/t")
        pages[who] = page
    a, b = pages["recycler-tianneng"], pages["recycler-huanbao"]

    # A: a proxy maximum of ¥10,200/t; the price stays at the start
    a.fill("#max", "10200")
    a.press("#max", "Enter")
    expect(a.locator("#bid-say")).to_contain_text("You are leading")
    expect(store.locator('#room [data-field="visible"]')).to_have_text("¥10,000/t")
    closes_before = store.locator('#room [data-field="closes-at"]').get_attribute("datetime")

    # B waits for the last 6 s (the soft close) and bids a maximum of ¥10,400/t
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = b.locator('#room [data-field="countdown"]').inner_text()
        m, s = left.split(":")
        if int(m) * 60 + int(s) <= 4:
            break
        time.sleep(0.2)
    b.fill("#max", "10400")
    b.press("#max", "Enter")
    expect(b.locator("#bid-say")).to_contain_text("You are leading")
    # A is told at once; everyone sees the new price and the extended close
    expect(a.locator("#bid-say")).to_contain_text("outbid")
    expect(a.locator('#notices li[data-event="outbid"]').first).to_contain_text(
        "outbid by paddle 2"
    )
    for page in (a, b, store):
        expect(page.locator('#room [data-field="visible"]')).to_have_text("¥10,250/t")
        expect(page.locator("#room")).to_contain_text("extended by 6 s")
    closes_after = store.locator('#room [data-field="closes-at"]').get_attribute("datetime")
    assert closes_before and closes_after and closes_after > closes_before
    b.screenshot(path=shots / "room-desktop.png", full_page=True)
    store.screenshot(path=shots / "store-desktop.png", full_page=True)
    assert unlabelled(b) == []
    assert unlabelled(store) == []

    # the close: B wins at ¥10,250/t and is told; the store sees the price
    expect(b.locator("#bid-say")).to_contain_text("You won this lot at ¥10,250/t", timeout=20_000)
    expect(b.locator('#notices li[data-event="won"]')).to_have_count(1)
    expect(store.locator('#room [data-field="result"]')).to_contain_text("¥10,250/t")
    sold = store.locator(f'#lots tr[data-lot="{lot}"] [data-field="sold"]')
    expect(sold).to_contain_text("¥10,250/t")
    expect(sold).to_contain_text("¥5,576.00")  # 10,250 × 0.544 t
    status, view = service.call("GET", f"/v1/lots/{lot}", "store-wuxing")
    assert status == 200 and view["state"] == "awarded", view
    status, awards = service.call("GET", "/v1/awards", "recycler-huanbao")
    assert [(x["lot_id"], x["price_fen_per_t"]) for x in awards["items"] if x["lot_id"] == lot] == [
        (lot, 1_025_000)
    ]

    for name, page in (("store", store), ("room", b)):
        page.set_viewport_size(PHONE)
        page.screenshot(path=shots / f"{name}-phone.png", full_page=True)
