"""``Engine.sell_quote``, what the store page shows before a one-click sale, is the price
the sale then trades at: on seeded random books with organisations, minimum lots and
partly filled bids, the quote equals the first fill of the real ``SellLot``, or there is
no buyer exactly when there is no quote."""

from __future__ import annotations

import copy
import random

import pytest

from auction.engine import Engine
from auction.messages import Rejected, SetBuyingPower, Traded
from auction.types import OrgId, PrincipalId
from tests.unit.test_engine import T0, M, bid, lot

ORGS = ["RA", "RB", "RC", "S1"]


@pytest.mark.parametrize("seed", range(40))
def test_the_quote_is_the_price_the_sale_trades_at(seed: int) -> None:
    rnd = random.Random(seed)
    engine = Engine()
    for org in ORGS:
        engine.apply(SetBuyingPower(bidder=PrincipalId(org.lower()), limit_fen=10**12), T0)
    next_id = 1
    for _ in range(rnd.randint(0, 12)):
        org = rnd.choice(ORGS)
        price = rnd.choice([990_000, 1_000_000, 1_005_000, 1_010_000])
        qty = rnd.choice([100, 300, 500, 1000, 5000])
        min_lot = min(qty, rnd.choice([0, 0, 200, 600]))
        events = engine.apply(bid(next_id, org.lower(), price, qty, min_lot, org=org), T0)
        assert not isinstance(events[-1], Rejected), events
        next_id += 1
    for _ in range(rnd.randint(0, 3)):  # partly fill some bids with lots of other stores
        engine.apply(lot(next_id, "s9", rnd.choice([100, 200]), partial=True, org="S9"), T0)
        next_id += 1
    for _ in range(20):
        weight = rnd.choice([50, 100, 250, 400, 600, 1000, 3000, 6000])
        org = rnd.choice(ORGS)
        quote = engine.sell_quote(M, weight, OrgId(org))
        trial = copy.deepcopy(engine)
        events = trial.apply(lot(next_id, org.lower() + "-store", weight, org=org), T0)
        fills = [e for e in events if isinstance(e, Traded)]
        if quote is None:
            assert isinstance(events[-1], Rejected) and events[-1].code == "no_buyer", events
        else:
            assert [(f.price_fen_per_t, f.weight_kg) for f in fills] == [(quote, weight)]
        assert engine.state_hash() != trial.state_hash() or quote is None
