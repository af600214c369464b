"""Identifiers and small value types shared by the whole engine.

Ids are plain ints or strs at run time (``NewType`` costs nothing) but keep mypy from
mixing an order id with a trade id, or a principal with an organisation.
"""

from __future__ import annotations

from typing import Literal, NewType

OrderId = NewType("OrderId", int)
"""A standing bid or a sell-lot; unique across the engine, assigned by the caller."""

TradeId = NewType("TradeId", int)
"""Assigned by the engine from its own counter, so replays give the same ids."""

PrincipalId = NewType("PrincipalId", str)
OrgId = NewType("OrgId", str)
Category = NewType("Category", str)
RegionCode = NewType("RegionCode", str)
MarketId = NewType("MarketId", str)
"""``"<category>:<region>"``, e.g. ``"ebike:330522"``."""

Side = Literal["buy", "sell"]


def market_id(category: str, region: str) -> MarketId:
    return MarketId(f"{category}:{region}")


def split_market_id(market: str) -> tuple[Category, RegionCode]:
    category, sep, region = market.partition(":")
    if not sep:
        raise ValueError(f"market id {market!r} is not '<category>:<region>'")
    return Category(category), RegionCode(region)
