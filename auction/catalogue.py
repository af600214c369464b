"""The catalogue of categories and battery models, kept as data (``data/catalogue.json``).

Block weights are spec-sheet defaults in tenths of a kilogram, so that an estimate of a
lot's weight stays in integers until it is rounded once to whole kilograms.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

import msgspec


class CategoryInfo(msgspec.Struct, frozen=True):
    code: str
    name_zh: str
    name_en: str
    note: str = ""


class BatteryModel(msgspec.Struct, frozen=True):
    model: str
    category: str
    block_kg_x10: int


class SaleRules(msgspec.Struct, frozen=True):
    """How competitive sales run in a category.  Prices in fen per tonne, times in seconds.

    ``ladder`` is ``[[from_price, increment], ...]`` ascending from 0: the increment that
    applies at a price is the one of the last step at or below it.
    """

    ladder: list[tuple[int, int]]
    soft_close_s: int
    max_extension_s: int
    acceptance_window_s: int
    min_duration_s: int
    max_duration_s: int
    band_bp: int = 2000
    """The price band around a market's daily quote, in basis points each way: bids and
    lot prices outside it are refused (``price_out_of_band``); 0 turns the band off."""

    def increment(self, price: int) -> int:
        step = self.ladder[0][1]
        for start, inc in self.ladder:
            if price < start:
                break
            step = inc
        return step


class SaleRulesTable(msgspec.Struct, frozen=True):
    deposit_ratio_bp: int
    default: SaleRules
    per_category: dict[str, dict[str, object]] = {}


class SettlementRule(msgspec.Struct, frozen=True):
    """A day's VWAP becomes its settlement price with at least ``min_trades`` trades from
    at least ``min_buyers`` different buyers; otherwise the last one is carried forward."""

    min_trades: int = 3
    min_buyers: int = 2


class Catalogue(msgspec.Struct, frozen=True):
    categories: list[CategoryInfo]
    battery_models: list[BatteryModel]
    blocks_per_set: dict[str, int]
    sale_rules: SaleRulesTable
    settlement: SettlementRule = SettlementRule()

    def rules(self, category: str) -> SaleRules:
        """The sale rules of ``category``: the defaults with its overrides applied."""
        override = self.sale_rules.per_category.get(category)
        if not override:
            return self.sale_rules.default
        merged = msgspec.structs.asdict(self.sale_rules.default) | override
        return msgspec.convert(merged, SaleRules)

    def has_category(self, code: str) -> bool:
        return any(c.code == code for c in self.categories)

    def model(self, name: str) -> BatteryModel | None:
        for m in self.battery_models:
            if m.model == name:
                return m
        return None

    def estimate_weight_kg(
        self, model: str, *, blocks: int = 0, sets: int = 0, voltage: str = "48V"
    ) -> int:
        """Estimated weight of ``sets`` sets (of ``voltage``) plus ``blocks`` loose blocks,
        rounded half up to a whole kilogram."""
        info = self.model(model)
        if info is None:
            raise KeyError(model)
        per_set = self.blocks_per_set[voltage]
        tenths = info.block_kg_x10 * (blocks + sets * per_set)
        return (tenths + 5) // 10


def _load() -> Catalogue:
    """The shipped catalogue, or the file ``AUCTION_CATALOGUE`` names (tests, regional
    rules).  Replays must use the same catalogue as the run they replay."""
    override = os.environ.get("AUCTION_CATALOGUE")
    if override:
        raw = Path(override).read_bytes()
    else:
        raw = resources.files("auction").joinpath("data/catalogue.json").read_bytes()
    return msgspec.json.decode(raw, type=Catalogue)


@functools.cache
def default_catalogue() -> Catalogue:
    return _load()


def valid_region(code: str) -> bool:
    """A GB/T 2260 administrative division code: six digits, province part 11..82."""
    return len(code) == 6 and code.isascii() and code.isdigit() and 11 <= int(code[:2]) <= 82
