"""Random flows through ``auction replay``'s core against the naive reference model."""

import random

import pytest

from auction.book import BUY, SELL, Book, Fill, Order
from auction.flow import format_flow, generate_flow, parse_flow, replay
from tests.property.seeds import seeds
from tests.reference import reference_replay


def random_flow(rng: random.Random, n: int) -> list[str]:
    """Dense prices so that most orders meet; ids reused and cancels of anything."""
    out = []
    next_id = 1
    for _ in range(n):
        r = rng.random()
        if r < 0.25:
            out.append(f"C,{rng.randint(1, next_id + 3)}")
            continue
        if rng.random() < 0.05 and next_id > 1:
            oid = rng.randint(1, next_id - 1)  # a duplicate id
        else:
            oid = next_id
            next_id += 1
        side = rng.choice("BS")
        qty = rng.randint(1, 20)
        if r < 0.35:
            out.append(f"M,{oid},{side},{qty}")
        else:
            out.append(f"L,{oid},{side},{rng.randint(95, 105)},{qty}")
    return out


@pytest.mark.parametrize("seed", seeds())
def test_random_flows_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    flow = random_flow(rng, rng.randint(1, 400))
    got = replay(parse_flow(flow))
    want = reference_replay(flow)
    assert {k: getattr(got, k) for k in want} == want, f"seed={seed}"


@pytest.mark.parametrize("seed", seeds(5))
def test_generated_benchmark_flows_match_the_reference(seed: int) -> None:
    flow = list(format_flow(generate_flow(3000, seed)))
    got = replay(parse_flow(flow))
    want = reference_replay(flow)
    assert {k: getattr(got, k) for k in want} == want, f"seed={seed}"


@pytest.mark.parametrize("seed", seeds(20))
def test_general_sweep_agrees_with_plain_sweep(seed: int) -> None:
    """Orders that each carry a unique org take the general path; with nothing to
    skip, it must do exactly what the plain path does, and the book must stay uncrossed."""
    rng = random.Random(seed)
    plain, general = Book(), Book()
    tapes: list[list[tuple[int, int, int, int]]] = [[], []]
    for oid in range(1, 600):
        if rng.random() < 0.2 and oid > 2:
            victim = rng.randint(1, oid - 1)
            a, b = plain.cancel(victim), general.cancel(victim)
            assert (a is None) == (b is None), f"seed={seed}"
            continue
        side = rng.choice((BUY, SELL))
        price, qty = rng.randint(95, 105), rng.randint(1, 20)
        for i, (book, org) in enumerate(((plain, None), (general, f"org{oid}"))):
            order = Order(oid, side, price, qty, org=org)
            fills: list[Fill] = []
            book.submit(order, fills, [])
            tapes[i].extend((t.id, m.id, p, q) for t, m, p, q in fills)
            if order.qty:
                book.rest(order)
        assert tapes[0] == tapes[1], f"seed={seed}"
        for book in (plain, general):
            bid, ask = book.best_price(BUY), book.best_price(SELL)
            assert bid is None or ask is None or bid < ask, f"seed={seed}: crossed"
    assert plain.depth(BUY) == general.depth(BUY)
    assert plain.depth(SELL) == general.depth(SELL)
