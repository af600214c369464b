"""The catalogue of categories and battery models, kept as data (``data/catalogue.json``).

Block weights are spec-sheet defaults in tenths of a kilogram, so that an estimate of a
lot's weight stays in integers until it is rounded once to whole kilograms.
"""

from __future__ import annotations

import functools
from importlib import resources

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


class Catalogue(msgspec.Struct, frozen=True):
    categories: list[CategoryInfo]
    battery_models: list[BatteryModel]
    blocks_per_set: dict[str, int]

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
    raw = resources.files("auction").joinpath("data/catalogue.json").read_bytes()
    return msgspec.json.decode(raw, type=Catalogue)


@functools.cache
def default_catalogue() -> Catalogue:
    return _load()


def valid_region(code: str) -> bool:
    """A GB/T 2260 administrative division code: six digits, province part 11..82."""
    return len(code) == 6 and code.isascii() and code.isdigit() and 11 <= int(code[:2]) <= 82
