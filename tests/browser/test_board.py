"""The quote board at /: every demo market, a trade made through the API within 1 s,
stale when the feed stops and live again when it returns."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, demo_service, unlabelled
from tests.integration.server import Service

expect = pytest.importorskip("playwright.sync_api").expect

DAILY = {  # web/demo.py's daily quotes, as the board writes them
    "ebike:330522": "¥10,100/t",
    "ebike:330502": "¥10,050/t",
    "auto_black:330523": "¥10,300/t",
    "auto_white:330522": "¥10,000/t",
}


def row(page: Any, market: str) -> Any:
    return page.locator(f'#markets tr[data-market="{market}"]')


def test_board_shows_every_demo_market_and_a_trade_within_a_second(
    service: Service, open_page: Callable[..., Any], shots: Path
) -> None:
    page = open_page(service.base + "/")
    expect(page.locator("#feed")).to_have_attribute("data-state", "live")
    for market, daily in DAILY.items():
        expect(row(page, market).locator('[data-field="daily"]')).to_have_text(daily)
    # the smelter prices move with the demo's simulator: the page shows what the API has
    for attempt in range(3):
        _, board = service.call("GET", "/v1/prices", "store-wuxing")
        lead = next(
            q for q in board["quotes"] if q["kind"] == "end_of_chain" and q["key"] == "lead"
        )
        yuan = lead["price_fen_per_t"] / 100
        text = f"¥{yuan:,.0f}/t" if lead["price_fen_per_t"] % 100 == 0 else f"¥{yuan:,.2f}/t"
        try:
            expect(page.locator("#chain [data-field=lead]")).to_have_text(text, timeout=1000)
            break
        except AssertionError:
            if attempt == 2:
                raise
    expect(page.locator("#upstream tbody tr")).to_have_count(2)
    expect(page.locator("#stale")).to_be_hidden()

    # a store sells 200 kg in 吴兴区 with one click: recycler-tianneng's bid at ¥10,050/t
    last = row(page, "ebike:330502").locator('[data-field="last"]')
    expect(last).to_have_text("—")
    status, answer = service.call(
        "POST", "/v1/lots", "store-wuxing",
        {"mode": "one_click", "market": "ebike:330502", "weight_kg": 200},
    )  # fmt: skip
    sent = time.monotonic()
    assert status == 201, answer
    assert any(e["type"] == "traded" for e in answer["events"])
    expect(last).to_have_text("¥10,050/t", timeout=1000)
    seen = time.monotonic() - sent
    assert seen < 1.0, seen
    expect(row(page, "ebike:330502").locator('[data-field="volume"]')).to_contain_text("0.20 t")

    # text alternatives: the sparkline says the day in words
    spark = row(page, "ebike:330502").locator("svg")
    expect(spark).to_have_attribute("role", "img")
    expect(spark).to_have_attribute("aria-label", re.compile("¥10,050/t"))  # the tape's tick
    assert unlabelled(page) == []
    page.screenshot(path=shots / "board-desktop.png", full_page=True)

    phone = open_page(service.base + "/", viewport=PHONE)
    expect(row(phone, "ebike:330502").locator('[data-field="last"]')).to_have_text("¥10,050/t")
    phone.screenshot(path=shots / "board-phone.png", full_page=True)
    assert (shots / "board-desktop.png").stat().st_size > 10_000


def test_board_selects_markets_and_colours_by_query(
    service: Service, open_page: Callable[..., Any]
) -> None:
    page = open_page(service.base + "/?category=ebike&region=330522&colors=green-up")
    expect(row(page, "ebike:330522")).to_have_count(1)
    expect(page.locator("#markets tbody tr")).to_have_count(1)
    assert "green-up" in (page.locator("body").get_attribute("class") or "")


@pytest.fixture
def own_service(tmp_path: Path) -> Iterator[Service]:
    yield from demo_service(tmp_path)


def test_board_shows_stale_when_the_feed_stops_and_recovers(
    own_service: Service, open_page: Callable[..., Any]
) -> None:
    page = open_page(own_service.base + "/", viewport=DESKTOP)
    badge = page.locator("#feed")
    expect(badge).to_have_attribute("data-state", "live")
    expect(page.locator("#stale")).to_be_hidden()

    os.kill(own_service.proc.pid, signal.SIGSTOP)  # the service stops sending: no heartbeats
    try:
        expect(badge).to_have_attribute("data-state", "stale", timeout=6000)
        expect(page.locator("#stale")).to_be_visible()
        expect(page.locator("#stale")).to_contain_text("Stale")
        assert "is-stale" in (page.locator("body").get_attribute("class") or "")
    finally:
        os.kill(own_service.proc.pid, signal.SIGCONT)
    expect(badge).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#stale")).to_be_hidden()

    # and it is live for real: a new trade shows
    status, _ = own_service.call(
        "POST", "/v1/lots", "store-wuxing",
        {"mode": "one_click", "market": "ebike:330502", "weight_kg": 300},
    )  # fmt: skip
    assert status == 201
    expect(row(page, "ebike:330502").locator('[data-field="last"]')).to_have_text(
        "¥10,050/t", timeout=2000
    )
