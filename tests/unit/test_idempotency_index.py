"""The runner's index of committed idempotency keys against a plain dict of the same keys:
it may say "maybe known" of an unknown key (the database then decides), never the other
way round, and forgetting hours never forgets a younger key that shares a digest."""

from __future__ import annotations

import random

import pytest

from auction import idempotency
from auction.idempotency import HOUR_US, KeyIndex


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("collide", [False, True])
def test_the_index_never_forgets_a_key_the_reference_keeps(
    seed: int, collide: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if collide:  # few digests: many pairs share one
        monkeypatch.setattr(idempotency, "digest", lambda p, k: hash((p, k)) % 7)
    rng = random.Random(seed)
    index, reference = KeyIndex(), {}  # reference: (principal, key) -> created_us
    now = 0
    for _ in range(400):
        now += rng.randrange(0, HOUR_US // 4)
        if rng.random() < 0.85:
            ik = (f"p{rng.randrange(5)}", f"k{rng.randrange(1_000_000)}")
            if ik in reference:
                continue  # the runner never commits a known key again
            index.add(*ik, now)
            reference[ik] = now
        else:
            cutoff = now - rng.randrange(0, 3 * HOUR_US)
            index.forget_before(cutoff)
            # what the index may drop: keys whose whole hour ended by the cutoff
            reference = {
                ik: t for ik, t in reference.items() if (t // HOUR_US + 1) * HOUR_US > cutoff
            }
        assert all(index.maybe_known(*ik) for ik in reference)
        assert len(index) == len(reference)
    if not collide:
        assert not any(index.maybe_known("p0", f"never-{i}") for i in range(1000))


def test_an_hour_is_forgotten_only_once_it_has_wholly_passed() -> None:
    index = KeyIndex()
    index.add("p", "a", 5 * HOUR_US + 10)
    index.forget_before(6 * HOUR_US - 1)
    assert index.maybe_known("p", "a")
    index.forget_before(6 * HOUR_US)
    assert not index.maybe_known("p", "a") and len(index) == 0
