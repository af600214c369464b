"""Integer money and weight: fen per tonne, kilograms, fen.  No floats anywhere.

The trade prices waste batteries per tonne and weighs them in kilograms, so the one
amount rule is::

    amount_fen = price_fen_per_t * weight_kg / 1000, rounded half up to a whole fen

``amount_fen`` is the only place that division happens.
"""

from __future__ import annotations

FEN_PER_YUAN = 100
KG_PER_TONNE = 1000

# Sanity bounds for a single value, far outside anything the trade sees (lead ingot
# is ~¥17,000/t; a truck carries ~2 t) yet small enough that products stay exact and
# fit a signed 64-bit column: 10^10 fen/t * 10^7 kg = 10^17 < 2^63.
MAX_PRICE_FEN_PER_T = 10_000_000_000  # ¥100 million per tonne
MAX_WEIGHT_KG = 10_000_000  # 10,000 t


def amount_fen(price_fen_per_t: int, weight_kg: int) -> int:
    """The settled amount of ``weight_kg`` at ``price_fen_per_t``, half up to a fen."""
    if price_fen_per_t < 0 or weight_kg < 0:
        raise ValueError("price and weight must not be negative")
    whole, rest = divmod(price_fen_per_t * weight_kg, KG_PER_TONNE)
    return whole + (1 if rest * 2 >= KG_PER_TONNE else 0)


def yuan_per_t(price_fen_per_t: int) -> str:
    """``1012550`` -> ``"10125.50"``: for display only."""
    sign = "-" if price_fen_per_t < 0 else ""
    yuan, fen = divmod(abs(price_fen_per_t), FEN_PER_YUAN)
    return f"{sign}{yuan}.{fen:02d}"


def fen_from_yuan(yuan: int) -> int:
    """Whole yuan to fen; prices arrive in fen, this is for demo data and tests."""
    return yuan * FEN_PER_YUAN
