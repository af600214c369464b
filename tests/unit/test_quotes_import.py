"""``auction quotes import FILE.csv``: price history into the ``prices`` table."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from auction.db import make_engine
from auction.journal import PRICES

HEADER = "day,kind,key,publisher,price_fen_per_t,vat_included\n"


def run(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    (tmp / "h.csv").write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "auction", "quotes", "import", str(tmp / "h.csv"),
         "--database-url", f"sqlite+aiosqlite:///{tmp / 'j.db'}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def rows(tmp: Path) -> list[dict[str, object]]:
    async def go() -> list[dict[str, object]]:
        db = make_engine(f"sqlite+aiosqlite:///{tmp / 'j.db'}")
        try:
            async with db.connect() as conn:
                result = await conn.execute(select(PRICES).order_by(PRICES.c.seq))
                return [dict(r) for r in result.mappings().all()]
        finally:
            await db.dispose()

    return asyncio.run(go())


def test_history_lands_below_the_journal(tmp_path: Path) -> None:
    good = HEADER + (
        "2025-06-05,end_of_chain,ebike,smm,1012500,true\n"
        "2025-06-05,end_of_chain,lead,smm,1650000,true\n"
        "2025-06-05,daily,ebike:330522,platform,1010000,false\n"
    )
    done = run(tmp_path, good)
    assert done.returncode == 0, done.stderr
    assert "imported 3" in done.stdout
    assert run(tmp_path, good).returncode == 0  # again: below the first import
    got = rows(tmp_path)
    assert [r["seq"] for r in got] == [-6, -5, -4, -3, -2, -1]
    assert got[-1]["key"] == "ebike" and got[-1]["vat_included"] is True
    assert got[-1]["day"] == "2025-06-05"


def test_a_bad_line_imports_nothing(tmp_path: Path) -> None:
    for line, says in [
        ("2025-06-05,daily,ebike:33,platform,1010000,false", "line 3: 'ebike:33'"),
        ("2025-13-05,daily,ebike:330522,platform,1010000,false", "line 3: day"),
        ("2025-06-05,weekly,ebike:330522,platform,1010000,false", "line 3: kind"),
        ("2025-06-05,daily,ebike:330522,platform,10100.5,false", "line 3: price"),
        ("2025-06-05,daily,ebike:330522,platform,1010000,yes", "line 3: vat"),
        ("2025-06-05,daily,ebike:330522,platform", "line 3: 4 fields"),
    ]:
        done = run(tmp_path, HEADER + "2025-06-05,end_of_chain,lead,smm,1650000,true\n" + line)
        assert done.returncode == 2 and says in done.stderr, (line, done.stderr)
    assert run(tmp_path, "day,kind\n").returncode == 2
    assert not (tmp_path / "j.db").exists() or rows(tmp_path) == []
