"""Pages of the read tables (bids, lots, trades, awards), built by the database as one JSON
text.

Through SQLAlchemy on aiosqlite a page of 50 rows cost 2.9-11 ms of the server's CPU
(``python -m loadtests.bench_reads``): the driver steps row by row on its thread and hands
the GIL back and forth with the busy event loop for every row, and compiling the
statement cost another ~0.3 ms.  Here the SQL is written out, as the journal's writes
are, and the database returns the whole page in one value: on SQLite
``json_group_array`` on a reader thread of our own (one step, the GIL released
throughout), on PostgreSQL ``json_agg`` through asyncpg.

Every page walks an index (who or what, newest first; migration 0004) and stops at the
page; a choice across columns (a party's trades as buyer or as seller) is a UNION of such
walks (``Where.either``).  A regulator's regions are matched with ``LIKE`` on the
primary key's walk: quick while its regions are common among the newest rows.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from auction.db import READER_CACHE, AwardRow, BidRow, LotRow, TradeRow, table_of

if TYPE_CHECKING:  # accounts imports the journal, which holds these readers
    from auction.accounts import Principal

_TABLES = {t.name: t for t in map(table_of, (BidRow, LotRow, TradeRow, AwardRow))}
# SQLite: each row as a JSON object with the table's columns as keys
_OBJECTS = {
    name: "json_object(" + ", ".join(f"'{c.name}', {c.name}" for c in t.columns) + ")"
    for name, t in _TABLES.items()
}
READER_PRAGMAS = ("PRAGMA query_only=ON", "PRAGMA busy_timeout=5000", READER_CACHE)

_decode = msgspec.json.Decoder(list[dict[str, Any]]).decode


class Where:
    """``AND``-ed conditions and their parameters, in the engine's placeholder style."""

    def __init__(self, dollar: bool) -> None:
        self.dollar = dollar
        self.clauses: list[str] = []
        self.params: list[Any] = []
        self.branches: list[str] = []

    def param(self, value: Any) -> str:
        """A placeholder for ``value``; numbered, so clauses may be built in any order."""
        self.params.append(value)
        return f"{'$' if self.dollar else '?'}{len(self.params)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def equals(self, column: str, value: Any, *, walk: bool = True) -> None:
        """``column = value``.  ``walk=False``: a filter on rows that another condition
        already narrows along its own index.  SQLite's planner has no statistics and may
        walk this column's index instead (a store's awarded lots: every store's awarded
        lots, newest first), so there the column is written ``+column``, which no index
        serves; PostgreSQL's planner has statistics and is left to choose."""
        left = column if walk or self.dollar else f"+{column}"
        self.add(f"{left} = {self.param(value)}")

    def any_of(self, clauses: Sequence[str]) -> None:
        """At least one of ``clauses``; none matches nothing."""
        self.add(f"({' OR '.join(clauses)})" if clauses else "1 = 0")

    def either(self, branches: Sequence[str]) -> None:
        """At least one of ``branches``, each read on its own index (a UNION of pages): an
        ``OR`` across columns would fetch and sort every match.  Once per query."""
        assert not self.branches
        if branches:
            self.branches = list(branches)
        else:
            self.add("1 = 0")

    def sql(self, branch: str | None = None) -> str:
        clauses = [branch, *self.clauses] if branch else self.clauses
        return f" WHERE {' AND '.join(clauses)}" if clauses else ""


class ReadTables:
    def __init__(self, engine: AsyncEngine, sqlite_file: str | None) -> None:
        self.engine = engine
        self._file = sqlite_file
        self._sqlite = engine.dialect.name == "sqlite"
        # one SELECT is one snapshot: no BEGIN and ROLLBACK round trips around it
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def where(self) -> Where:
        return Where(self.engine.dialect.paramstyle == "numeric_dollar")

    async def page(
        self, table: str, newest_first: str, where: Where, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` rows of ``table`` after ``offset``, by ``newest_first``
        descending, and whether more follow."""
        sql = self.sql(table, newest_first, where, limit + 1, offset)
        if self._file is not None:
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(self._readers(), self._read, sql, where.params)
        else:
            async with self._autocommit.connect() as conn:
                result = await conn.exec_driver_sql(sql, tuple(where.params))
                text = result.scalar_one()
        rows = _decode(text)
        # SQLite before 3.44 does not promise the aggregate keeps the subquery's order
        rows.sort(key=itemgetter(newest_first), reverse=True)
        return rows[:limit], len(rows) > limit

    def sql(self, table: str, newest_first: str, where: Where, limit: int, offset: int) -> str:
        """The query of a page: one row, one column, the JSON array of the rows."""
        assert table in _TABLES and newest_first in _TABLES[table].c, (table, newest_first)
        order = f" ORDER BY {newest_first} DESC"
        window = f" LIMIT {int(limit)} OFFSET {int(offset)}"
        if where.branches:  # the page lies within each branch's first offset + limit rows
            top = f" LIMIT {int(offset) + int(limit)}"
            inner = " UNION ".join(
                f"SELECT * FROM (SELECT * FROM {table}{where.sql(b)}{order}{top}) AS b{i}"
                for i, b in enumerate(where.branches)
            )
            inner += order + window
        else:
            inner = f"SELECT * FROM {table}{where.sql()}{order}{window}"
        if self._sqlite:
            return f"SELECT json_group_array({_OBJECTS[table]}) FROM ({inner})"
        agg = f"json_agg(t ORDER BY t.{newest_first} DESC)"
        return f"SELECT coalesce({agg}, '[]')::text FROM ({inner}) t"

    def _readers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(2, thread_name_prefix="sqlite-read")
        return self._pool

    def _read(self, sql: str, params: list[Any]) -> str:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            assert self._file is not None
            conn = sqlite3.connect(self._file, isolation_level=None, check_same_thread=False)
            for pragma in READER_PRAGMAS:
                conn.execute(pragma)
            with self._lock:
                self._conns.append(conn)
            self._local.conn = conn
        return str(conn.execute(sql, params).fetchone()[0])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


# -- who reads what --------------------------------------------------------------------

ON_SALE = ("open", "in_auction", "taking_offers")


def in_regions(where: Where, who: Principal) -> None:
    """A regulator's markets: those whose region starts with one of its regions."""
    where.any_of([f"market LIKE {where.param(f'%:{p}%')}" for p in who.regions])


def lots_for(where: Where, who: Principal, filters: Mapping[str, str]) -> Where:
    """Lots one may list: a store its own; a recycler its own and every lot on sale; a
    regulator its regions'; an admin all.  ``filters``: ``market``, ``state``, ``kind``."""
    state = filters.get("state")
    if who.role == "regulator":
        in_regions(where, who)
    elif who.role == "recycler":
        if state is None:
            on_sale = [f"state = {where.param(s)}" for s in ON_SALE]
            where.either([f"owner = {where.param(who.id)}", *on_sale])
        elif state in ON_SALE:  # of a state on sale it sees every lot, its own too
            where.equals("state", state)
            state = None
        else:
            where.equals("owner", who.id)
    elif who.role != "admin":
        where.equals("owner", who.id)
    # a store's or a recycler's filters sift rows that its own lots, or what is on sale
    # now, already narrow; a market's or a state's index would walk the trade's history
    walk = who.role in ("regulator", "admin")
    for name, value in (("market", filters.get("market")), ("state", state),
                        ("kind", filters.get("kind"))):  # fmt: skip
        if value is not None:
            where.equals(name, value, walk=walk)
    return where


def bids_for(where: Where, who: Principal, filters: Mapping[str, str]) -> Where:
    """A recycler's own standing bids; ``filters``: ``state``."""
    where.equals("owner", who.id)
    state = filters.get("state")
    if state is not None:
        where.equals("state", state)
    return where


def deals_for(where: Where, who: Principal) -> Where:
    """Trades and awards one may read: its own; a regulator's regions; an admin's all."""
    if who.role == "regulator":
        in_regions(where, who)
    elif who.role != "admin":
        where.either([f"{side} = {where.param(who.id)}" for side in ("buyer", "seller")])
    return where
