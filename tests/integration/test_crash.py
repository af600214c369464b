"""kill -9 under load and every fault point, on SQLite and on PostgreSQL (see crash.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.crash import Harness


def test_kill_9_under_load(database_url: str, tmp_path: Path) -> None:
    harness = Harness(database_url, tmp_path, seed=11)
    harness.run(kills=5)
    stats = harness.check()
    assert stats["acknowledged"] > 50, stats
    assert stats["retried"] > 0, stats  # some answers were really lost and retried


@pytest.mark.parametrize("point", ["before_commit", "after_commit", "mid_snapshot"])
def test_fault_points(database_url: str, tmp_path: Path, point: str) -> None:
    harness = Harness(database_url, tmp_path, seed=5)
    n = "1" if point == "mid_snapshot" else "{n}"
    harness.run(kills=2, fault=f"{point}:{n}")
    stats = harness.check()
    assert stats["retried"] > 0, stats
    if point == "after_commit":
        # the commit happened, the reply did not: the retry must replay the first answer
        assert stats["replays"] > 0, stats
