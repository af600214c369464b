"""Seeds for the random-stream tests: ``AUCTION_PROPERTY_SEEDS=N`` runs N per test
(default 40), ``AUCTION_PROPERTY_SEED=S`` reruns exactly one.  A failure names its seed."""

import os


def seeds(default: int = 40) -> list[int]:
    one = os.environ.get("AUCTION_PROPERTY_SEED")
    if one:
        return [int(one)]
    n = int(os.environ.get("AUCTION_PROPERTY_SEEDS", default))
    return list(range(1, n + 1))
