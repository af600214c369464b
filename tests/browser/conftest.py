"""Browser tests: Playwright for Python driving Debian's Chromium against the real service
(``auction serve --demo`` on a free port), with short sale rules so an auction closes in
seconds and 1 s heartbeats so a stopped feed shows as stale in seconds.

Every page a test opens is watched: a console error or an uncaught exception fails the
test.  Screenshots go to ``AUCTION_SCREENSHOTS_DIR`` (``docs/screenshots`` to refresh the
committed ones), else to the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.integration.server import Service, environment, running

sync_api = pytest.importorskip("playwright.sync_api")

DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
TOKEN_LINE = re.compile(r"^\s+(\S+)\s+(auc_\S+)$", re.M)
# rules for e-bike lots in these tests: a 6 s soft close, capped at 12 s of extension
FAST_RULES = {"soft_close_s": 6, "max_extension_s": 12, "min_duration_s": 5}


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("AUCTION_REQUIRE_SERVICES") == "1":
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    return path


def demo_service(tmp: Path, **extra: str) -> Iterator[Service]:
    raw = resources.files("auction").joinpath("data/catalogue.json").read_text()
    catalogue = json.loads(raw)
    catalogue["sale_rules"]["per_category"]["ebike"] = FAST_RULES
    (tmp / "catalogue.json").write_text(json.dumps(catalogue))
    env = environment(
        tmp,
        AUCTION_CATALOGUE=str(tmp / "catalogue.json"),
        AUCTION_WS_HEARTBEAT_S="1",
        **extra,
    )
    log = tmp / "service.log"
    with running(env, {}, log, "serve", "--demo") as svc:
        for _ in range(100):  # the banner is printed once the server is up
            svc.tokens.update(dict(TOKEN_LINE.findall(log.read_text())))
            if "prices-platform" in svc.tokens:
                break
            time.sleep(0.05)
        assert "prices-platform" in svc.tokens, log.read_text()
        yield svc


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from demo_service(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: the sync API runs an event loop on this thread while it is open, and
    later tests need the thread's loop free (``asyncio.run``)."""
    path = chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = os.environ.get("AUCTION_SCREENSHOTS_DIR")
    out = Path(where) if where else tmp_path / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, page: Any, allowed: tuple[str, ...]) -> None:
        self.page = page
        self.errors: list[str] = []
        self.allowed = allowed
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not any(a in msg.text for a in self.allowed):
            self.errors.append(msg.text)


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(url, viewport=DESKTOP, allow=())``: a fresh context and page each."""
    watched: list[Watched] = []
    contexts: list[Any] = []

    def make(url: str, viewport: dict[str, int] = DESKTOP, allow: tuple[str, ...] = ()) -> Any:
        context = browser.new_context(
            viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        watched.append(Watched(page, allow))
        page.goto(url)
        return page

    yield make
    for context in contexts:
        context.close()
    errors = [e for w in watched for e in w.errors]
    assert not errors, f"console errors: {errors}"


def sign_in(page: Any, token: str) -> None:
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_selector('#feed[data-state="live"]')


def tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab until ``selector`` has the focus: it is reachable by keyboard."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(
            "s => document.activeElement && document.activeElement.matches(s)", selector
        ):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def unlabelled(page: Any) -> list[str]:
    """Form controls and charts without a text alternative or accessible name."""
    found: list[str] = page.evaluate(
        """() => {
        const bad = [];
        for (const el of document.querySelectorAll('input, select, button, svg')) {
          if (el.closest('[hidden]')) continue;
          if (el.tagName === 'svg') {
            if (el.getAttribute('role') !== 'img' || !(el.getAttribute('aria-label') || '').trim())
              bad.push('svg ' + el.outerHTML.slice(0, 80));
            continue;
          }
          const named = (el.getAttribute('aria-label') || '').trim()
            || (el.labels && el.labels.length)
            || (el.tagName === 'BUTTON' && el.textContent.trim());
          if (!named) bad.push(el.outerHTML.slice(0, 80));
        }
        return bad;
      }"""
    )
    return found
