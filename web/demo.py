"""``auction serve --demo``: a realistic market around Huzhou (湖州) for a newcomer to explore.

Stores in 长兴县 (330522), 吴兴区 (330502) and 安吉县 (330523), three licensed recyclers with
buying power and standing bids, a few open auctions and a lot taking offers, a regulator
for the whole of 湖州市 (3305), an admin.  Run it again on the same database and the
accounts are reused, with fresh tokens.
"""

from __future__ import annotations

from datetime import timedelta

from auction.accounts import Accounts
from auction.errors import ClientError
from auction.messages import (
    AnyCommand,
    InviteOffers,
    PlaceBid,
    PublishPrice,
    SellLot,
    SetBuyingPower,
    StartAuction,
)
from auction.types import MarketId, OrderId, OrgId, PrincipalId
from web.api import Context

PEOPLE = [
    ("store-changxing", "STORE-CX", "store", ()),
    ("store-wuxing", "STORE-WX", "store", ()),
    ("store-anji", "STORE-AJ", "store", ()),
    ("recycler-tianneng", "TIANNENG", "recycler", ()),
    ("recycler-chaowei", "CHAOWEI", "recycler", ()),
    ("recycler-huanbao", "HUANBAO", "recycler", ()),
    ("regulator-huzhou", "HUZHOU-EPB", "regulator", ("3305",)),
    ("admin", "PLATFORM", "admin", ()),
    ("prices-platform", "PLATFORM", "service", ()),
]

# 每日报价 per market, 回收行情 (smelters, lead ingot, VAT included), 上游报价 by recyclers:
# fen per tonne, at the levels of ../shared/DOMAIN.md (2025)
DAILY = {
    "ebike:330522": 1_010_000,
    "ebike:330502": 1_005_000,
    "auto_black:330523": 1_030_000,
    "auto_white:330522": 1_000_000,
}
END_OF_CHAIN = {
    "ebike": 1_012_500,
    "auto_white": 1_002_500,
    "auto_black": 1_032_500,
    "lead": 1_650_000,
}
UPSTREAM = [
    ("recycler-tianneng", "ebike:330522", 1_015_000),
    ("recycler-chaowei", "ebike:330522", 1_012_000),
]

BIDS = [
    ("recycler-tianneng", "ebike:330522", 1_012_500, 20_000, True),
    ("recycler-tianneng", "ebike:330502", 1_005_000, 10_000, False),
    ("recycler-chaowei", "ebike:330522", 1_010_000, 30_000, True),
    ("recycler-chaowei", "auto_black:330523", 1_030_000, 15_000, True),
    ("recycler-huanbao", "ebike:330522", 1_000_000, 50_000, False),
    ("recycler-huanbao", "auto_white:330522", 1_002_500, 8_000, True),
]


async def seed(ctx: Context) -> dict[str, str]:
    """Create (or reuse) the demo accounts and market; returns principal -> token."""
    accounts: Accounts = ctx.accounts
    now = ctx.clock.now()
    tokens: dict[str, str] = {}
    orgs = {pid: org for pid, org, _, _ in PEOPLE}
    for pid, org, role, regions in PEOPLE:
        try:
            await accounts.create_principal(pid, org, role, now, regions=regions)
        except ClientError as err:
            if err.code != "duplicate_id":
                raise
        tokens[pid] = await accounts.issue_token(pid, now, now + timedelta(days=30))
    commands: list[tuple[str, AnyCommand]] = []
    board = PrincipalId("prices-platform")
    for market, price in DAILY.items():
        commands.append(
            ("prices-platform",
             PublishPrice(kind="daily", key=market, publisher=board, price_fen_per_t=price))
        )  # fmt: skip
    for key, price in END_OF_CHAIN.items():
        commands.append(
            ("prices-platform",
             PublishPrice(kind="end_of_chain", key=key, publisher=board, price_fen_per_t=price,
                          vat_included=True))
        )  # fmt: skip
    for pid, market, price in UPSTREAM:
        commands.append(
            (pid, PublishPrice(kind="upstream", key=market, publisher=PrincipalId(pid),
                               price_fen_per_t=price))
        )  # fmt: skip
    for pid, _, role, _ in PEOPLE:
        if role == "recycler":
            commands.append(
                ("admin", SetBuyingPower(bidder=PrincipalId(pid), limit_fen=50_000_000))
            )
    for pid, market, price, qty, join in BIDS:
        commands.append(
            (
                pid,
                PlaceBid(
                    bid_id=OrderId(0),
                    market=MarketId(market),
                    owner=PrincipalId(pid),
                    org=OrgId(orgs[pid]),
                    price_fen_per_t=price,
                    qty_kg=qty,
                    min_lot_kg=100,
                    join_auctions=join,
                ),
            )
        )
    for pid, market, kg, start, minutes in [
        ("store-changxing", "ebike:330522", 1_200, 1_000_000, 30),
        ("store-wuxing", "ebike:330502", 800, 990_000, 45),
        ("store-anji", "auto_black:330523", 2_000, 1_010_000, 60),
    ]:
        commands.append(
            (
                pid,
                StartAuction(
                    lot_id=OrderId(0),
                    market=MarketId(market),
                    owner=PrincipalId(pid),
                    org=OrgId(orgs[pid]),
                    weight_kg=kg,
                    start_price_fen_per_t=start,
                    duration_s=minutes * 60,
                ),
            )
        )
    for pid, kg in (("store-anji", 600), ("store-changxing", 300)):  # sold at once: trades
        commands.append(
            (pid, SellLot(lot_id=OrderId(0), market=MarketId("ebike:330522"),
                          owner=PrincipalId(pid), org=OrgId(orgs[pid]), weight_kg=kg))
        )  # fmt: skip
    commands.append(
        (
            "store-wuxing",
            InviteOffers(
                lot_id=OrderId(0),
                market=MarketId("ebike:330502"),
                owner=PrincipalId("store-wuxing"),
                org=OrgId("STORE-WX"),
                weight_kg=500,
                expires_at=now + timedelta(hours=6),
            ),
        )
    )
    for who, command in commands:
        await ctx.runner.submit(command, principal=who)
    return tokens
