from fractions import Fraction

import pytest

from auction.money import amount_fen, fen_from_yuan, yuan_per_t


def half_up(price: int, kg: int) -> int:
    exact = Fraction(price * kg, 1000)
    return int(exact + Fraction(1, 2)) if exact >= 0 else -1


@pytest.mark.parametrize(
    ("price", "kg", "fen"),
    [
        (1_000_000, 1000, 1_000_000),  # ¥10,000/t x 1 t = ¥10,000
        (1_012_500, 17, 17_213),  # 17212.5 rounds up
        (1_012_499, 17, 17_212),  # 17212.483 rounds down
        (1, 499, 0),
        (1, 500, 1),  # exactly half: up
        (1, 1500, 2),  # 1.5: up (not to even)
        (0, 123, 0),
    ],
)
def test_amount_rounds_half_up(price: int, kg: int, fen: int) -> None:
    assert amount_fen(price, kg) == fen


def test_amount_matches_exact_fraction_on_a_grid() -> None:
    for price in range(0, 5000, 37):
        for kg in range(0, 3000, 41):
            assert amount_fen(price, kg) == half_up(price, kg), (price, kg)


def test_amount_refuses_negative() -> None:
    with pytest.raises(ValueError):
        amount_fen(-1, 10)
    with pytest.raises(ValueError):
        amount_fen(10, -1)


def test_amount_is_exact_for_huge_values() -> None:
    # no float anywhere: 10^10 fen/t x 10^7 kg stays exact
    assert amount_fen(10**10, 10**7) == 10**14


def test_display_helpers() -> None:
    assert yuan_per_t(1_012_550) == "10125.50"
    assert yuan_per_t(5) == "0.05"
    assert yuan_per_t(-150) == "-1.50"
    assert fen_from_yuan(10_125) == 1_012_500
