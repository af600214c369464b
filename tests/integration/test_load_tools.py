"""The load tools themselves, briefly: ``loadtests.run --soak`` with locust, quote boards
and the end-state checks, on SQLite and on PostgreSQL + Redis.  The real figures come from
the long runs in BENCHMARKS.md; this keeps the tools working and their checks honest."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import postgres_database, redis_url

if importlib.util.find_spec("locust") is None:  # never imported here: it patches the world
    pytest.skip("locust is not installed", allow_module_level=True)
CORRECTNESS = ("journal", "state_hash", "read_tables", "prices", "audit")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_short_soak_agrees_with_itself(backend: str, tmp_path: Path) -> None:
    if backend == "postgres":  # skip (or, under CI, fail) like every service test
        for _ in postgres_database():  # PostgreSQL answers (a database made and dropped)
            pass
        redis_url()
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.run", "--soak", "--backend", backend,
         "--duration", "25", "--users", "30", "--pace", "2", "--boards", "30",
         "--locust-boards", "2", "--stores", "20", "--recyclers", "6", "--redis-db", "9",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    result = json.loads((out / "result.json").read_text())
    checks = result["checks"]
    for name in CORRECTNESS:
        assert checks[name]["ok"], (name, checks[name], done.stdout[-2000:])
    # (memory and open files are judged by the long soak; 25 s is all warm-up)
    assert done.returncode == 0 or "soak checks failed" in done.stderr, done.stderr[-2000:]
    summary = result["locust"]["summary"]
    assert summary["writes"] > 100 and summary["failures"] == 0, summary
    assert checks["read_tables"]["trades"] > 0
    assert result["boards"]["screens"] == 28 and result["boards"]["closed_early"] == 0
    assert result["boards"]["trades_seen"] > 0
    # the clients' own CPU is measured too: they share the server's cores
    assert result["server"]["others_cpu_mean"]["locust"] > 0
    assert "boards" in result["server"]["others_cpu_mean"]
    assert (out / "report.md").read_text().startswith("# Soak")


def test_the_soaks_consistent_read_is_one_moment(database_url: str) -> None:
    """The soak compares the journal's end with the read tables in one read; a commit
    landing between two of its SELECTs must not show (on SQLite it did: the driver
    starts no transaction for reads)."""
    import asyncio

    from sqlalchemy import text

    from auction.db import begin_snapshot, make_engine

    async def body() -> None:
        db = make_engine(database_url)
        try:
            async with db.begin() as conn:
                await conn.execute(text("CREATE TABLE moments (n INTEGER)"))
                await conn.execute(text("INSERT INTO moments VALUES (1)"))
            async with db.connect() as reader:
                await begin_snapshot(reader)
                count = text("SELECT count(*) FROM moments")
                before = (await reader.execute(count)).scalar()
                async with db.begin() as writer:  # a commit lands meanwhile
                    await writer.execute(text("INSERT INTO moments VALUES (2)"))
                assert (await reader.execute(count)).scalar() == before == 1
                await reader.rollback()
                assert (await reader.execute(count)).scalar() == 2
                await reader.rollback()
        finally:
            await db.dispose()

    asyncio.run(body())
