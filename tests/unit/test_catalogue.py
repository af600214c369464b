import pytest

from auction.catalogue import default_catalogue, valid_region


def test_categories_are_data() -> None:
    cat = default_catalogue()
    for code in ("ebike", "auto_white", "auto_black", "motorcycle", "industrial"):
        assert cat.has_category(code)
    assert not cat.has_category("lithium")


def test_weight_estimates_from_block_weights() -> None:
    cat = default_catalogue()
    # 48V12Ah set = 4 x 6-DZM-12 blocks of 4.2 kg = 16.8 kg; 10 sets = 168 kg
    assert cat.estimate_weight_kg("6-DZM-12", sets=10) == 168
    assert cat.estimate_weight_kg("6-DZM-12", sets=1) == 17  # 16.8 rounds to 17
    assert cat.estimate_weight_kg("6-EVF-45", blocks=3) == 44  # 43.5 rounds half up
    assert cat.estimate_weight_kg("6-DZM-20", sets=2, voltage="60V") == 68
    with pytest.raises(KeyError):
        cat.estimate_weight_kg("no-such-model", sets=1)


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("330522", True),
        ("330500", True),
        ("110000", True),
        ("000000", False),
        ("33052", False),
        ("3305222", False),
        ("33O522", False),
        ("９９００００", False),
        ("990000", False),
    ],
)
def test_region_codes(code: str, ok: bool) -> None:
    assert valid_region(code) is ok
