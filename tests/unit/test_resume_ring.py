"""The hub's resume buffer against a plain list of every message: after each add it
holds exactly the newest messages that are younger than its age bound and fit its byte
bound, holds no channel that has nothing left, and ``since`` answers what was missed only
when all of it is still held."""

from __future__ import annotations

import random

import pytest

from feeds.hub import Ring


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def kept_by_model(
    sent: list[tuple[str, int, bytes, float]], now: float, max_bytes: int, max_age: float
) -> set[tuple[str, int]]:
    """The longest run of newest messages, each younger than the age bound, within bytes."""
    kept: set[tuple[str, int]] = set()
    size = 0
    for channel, seq, payload, at in reversed(sent):
        size += len(payload) + Ring.ENTRY_BYTES
        if at < now - max_age or size > max_bytes:
            break
        kept.add((channel, seq))
    return kept


@pytest.mark.parametrize("seed", range(25))
def test_the_ring_holds_what_the_model_holds(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    max_bytes, max_age = rng.choice([2_000, 5_000, 50_000]), rng.choice([1.0, 5.0, 60.0])
    ring = Ring(max_bytes, max_age, clock)
    sent: list[tuple[str, int, bytes, float]] = []
    seqs: dict[str, int] = {}
    kept: set[tuple[str, int]] = set()
    for _ in range(300):
        clock.t += rng.choice([0.0, 0.01, 0.3, 2.0])
        channel = rng.choice(["book:a", "book:b", "trades:a", "private:x", f"auction:{seed}"])
        seq = seqs[channel] = seqs.get(channel, 0) + 1
        payload = bytes(rng.randrange(10, 400))
        ring.add(channel, seq, payload)
        sent.append((channel, seq, payload, clock.t))
        kept = kept_by_model(sent, clock.t, max_bytes, max_age)
        assert ring.size == sum(len(p) + Ring.ENTRY_BYTES for c, s, p, _ in sent
                                if (c, s) in kept)  # fmt: skip
        assert ring.size <= max_bytes
        # a channel with nothing left is forgotten: a day's lots do not pile up here
        assert set(ring.by_channel) == {c for c, _ in kept}
        for name, current in seqs.items():
            since = rng.randrange(0, current + 1)
            missed = [(s, p) for c, s, p, _ in sent if c == name and s > since]
            if all((name, s) in kept for s, _ in missed):
                assert ring.since(name, since, current) == [p for _, p in missed]
            else:
                assert ring.since(name, since, current) is None


def test_a_client_back_after_the_window_gets_a_snapshot_not_a_replay() -> None:
    clock = Clock()
    ring = Ring(1 << 20, 60.0, clock)
    ring.add("book:a", 1, b"one")
    clock.t = 30.0
    ring.add("book:a", 2, b"two")
    assert ring.since("book:a", 0, 2) == [b"one", b"two"]
    clock.t = 61.0
    ring.add("book:a", 3, b"three")  # "one" is now older than a minute: gone
    assert ring.since("book:a", 0, 3) is None
    assert ring.since("book:a", 1, 3) == [b"two", b"three"]
