"""Planted mistakes the model-based test must catch (a small mutation test, run in CI).

Each mutant changes one line of the real source (the text is replaced, recompiled and
patched in for the test only), then the model-based stream of ``test_sales_model`` runs
over a few seeds: the mutant is killed when one of them fails.  The unmutated code
passes the same seeds first, so a broken harness cannot "kill" everything.
"""

from __future__ import annotations

import inspect
import textwrap
from types import ModuleType

import pytest

from auction import auctions, buying_power, engine, sales
from tests.property.test_sales_model import run_stream

SEEDS = range(1, 41)

MUTANTS = {
    "an equal bid accepted as leading": (
        auctions, "Auction", "place",
        "if max_price > leader.max_price:",
        "if max_price >= leader.max_price:",
    ),
    "close one millisecond late": (
        engine, "Engine", "_fire_deadlines",
        "while heap and heap[0][0] <= now:",
        "while heap and heap[0][0] + timedelta(milliseconds=1) <= now:",
    ),
    "a rejected bid extending the close": (
        sales, "Sales", "_auction_bid",
        "self._check_auction_bid(auction, c.bidder, c.max_price_fen_per_t)",
        "if auction.extend_for_leader_change(now):\n"
        "        self._deadline(auction.closes_at, auction.lot_id, 'close')\n"
        "    self._check_auction_bid(auction, c.bidder, c.max_price_fen_per_t)",
    ),
    "an award to a cancelled (withdrawn, rejected, expired) offer": (
        sales, "Sales", "_open_offer",
        'if offer.status not in ("made", "countered") or lot.state != "taking_offers":',
        'if lot.state != "taking_offers":',
    ),
    "buying power released twice": (
        buying_power, "BuyingPower", "release",
        "old = self._holds.pop(key, None)",
        "old = self._holds.get(key)",
    ),
}  # fmt: skip


def plant(monkeypatch: pytest.MonkeyPatch, module: ModuleType, cls: str, method: str,
          old: str, new: str) -> None:  # fmt: skip
    owner = getattr(module, cls)
    source = textwrap.dedent(inspect.getsource(getattr(owner, method)))
    assert source.count(old) == 1, f"{cls}.{method} no longer contains {old!r}"
    namespace = dict(vars(module))
    namespace["timedelta"] = __import__("datetime").timedelta
    code = compile("from __future__ import annotations\n" + source.replace(old, new),
                   f"<mutant of {module.__name__}.{cls}.{method}>", "exec")  # fmt: skip
    exec(code, namespace)
    monkeypatch.setattr(owner, method, namespace[method])


def killed(seeds: range) -> int | None:
    """The first seed whose stream fails, or None."""
    for seed in seeds:
        try:
            run_stream(seed, steps=200)
        except Exception:
            return seed
    return None


def test_the_real_code_survives_the_same_seeds() -> None:
    assert killed(SEEDS) is None


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_killed(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    plant(monkeypatch, *MUTANTS[name])
    assert killed(SEEDS) is not None, f"the suite did not notice: {name}"
