"""kill -9 over HTTP: every 2xx survives exactly once (see crash_http.py)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.crash_http import HttpHarness


def test_kill_9_over_http(database_url: str, tmp_path: Path) -> None:
    harness = HttpHarness(database_url, tmp_path, seed=23)
    harness.run(kills=5)
    stats = harness.check()
    assert stats["acknowledged"] > 50, stats
    assert stats["retried"] > 0, stats
