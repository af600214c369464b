"""The price service: keeps a ``PriceStore`` equal to what the journal says, without ever
making trading wait for it.

- ``on_commit`` is the runner's subscriber: it turns a committed batch into prints and
  quotes and queues them (bounded; a full queue only means "rebuild").
- ``run`` applies them in journal order; at Asia/Shanghai midnight (or at the first
  print of a new day) it settles the day (``auction.prices.settle``), writes the day's
  row to ``daily_stats`` and starts the new day fresh.
- Whenever the store fails or is found empty (a Redis restart, a flush), the state is
  ``stale`` until it has been rebuilt from SQL: settlements from ``daily_stats`` (days
  that ended while nobody was settling them are settled then), today's prints from
  ``trades`` and ``awards``, the latest quotes from ``prices``.  Positions make the
  queued updates that follow harmless to apply again.
- Readers get the last good board, marked stale, while the store is away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from auction.catalogue import Catalogue, SettlementRule, valid_region
from auction.clock import Clock, shanghai_day, shanghai_midnight
from auction.db import begin_snapshot
from auction.journal import AWARDS, DAILY_STATS, PRICES, TRADES, from_us, to_us
from auction.messages import Awarded, PricePublished, Traded
from auction.money import MAX_PRICE_FEN_PER_T
from auction.prices import (
    POS_SHIFT,
    Aggregate,
    Board,
    MemoryPrices,
    PriceStore,
    Print,
    Quote,
    Settlement,
    board,
    honour_cancellation,
    settle,
    vwap,
)
from auction.runner import Sequenced

log = logging.getLogger("auction.pricing")

AWARD_INDEX = POS_SHIFT // 2  # awards of a command come after its trades, by lot id


def _print(
    seq: int, index: int, at: datetime, market: str, price: int, kg: int, buyer: str
) -> Print:
    """A sale's print.  ``index``: its place among its command's trades, or
    ``AWARD_INDEX`` + its place among the command's awards by lot id; the live path and the
    rebuild from SQL number them alike, so a print is the same print either way."""
    return Print(seq * POS_SHIFT + index, shanghai_day(at).isoformat(), market, price, kg, buyer)


def updates(done: Sequenced) -> tuple[list[Print], list[Quote]]:
    """The prints and quotes in committed events, with their journal positions."""
    prints: list[Print] = []
    quotes: list[Quote] = []
    for seq, events in done:
        trades = 0
        awards: list[Awarded] = []
        for ev in events:
            if isinstance(ev, Traded):
                prints.append(_print(seq, trades, ev.at, ev.market, ev.price_fen_per_t,
                                     ev.weight_kg, ev.buyer))  # fmt: skip
                trades += 1
            elif isinstance(ev, Awarded):
                awards.append(ev)
            elif isinstance(ev, PricePublished):
                quotes.append(Quote(seq * POS_SHIFT, ev.kind, ev.key, ev.publisher,
                                    ev.price_fen_per_t, ev.vat_included,
                                    ev.at.isoformat()))  # fmt: skip
        for i, ev in enumerate(sorted(awards, key=lambda a: a.lot_id)):
            prints.append(_print(seq, AWARD_INDEX + i, ev.at, ev.market, ev.price_fen_per_t,
                                 ev.weight_kg, ev.buyer))  # fmt: skip
    prints.sort(key=lambda p: p.pos)
    return prints, quotes


class PriceService:
    def __init__(
        self,
        store: PriceStore,
        db: AsyncEngine,
        clock: Clock,
        rule: SettlementRule,
        *,
        max_pending: int = 10_000,
        retry_s: float = 0.2,
    ) -> None:
        self.store = store
        self.db = db
        self.clock = clock
        self.rule = rule
        self.retry_s = retry_s
        self._queue: asyncio.Queue[tuple[list[Print], list[Quote]]] = asyncio.Queue(max_pending)
        self._dirty = True
        self.stale = True
        self.rebuilds = 0
        self._last_board: Board | None = None
        # the board is read from the store again once something was applied here, or
        # after board_max_age_s (another process may have applied something)
        self.board_max_age_s = 0.25
        self._version = 0
        self._board_version = -1
        self._board_at = 0.0
        self._rebuilding = False
        self._wake = asyncio.Event()
        self.on_change: list[Callable[[], None]] = []
        """Called whenever the board may have changed: something applied, a day rolled,
        the store went away (stale) or was rebuilt."""

    # -- input ---------------------------------------------------------------------------

    def on_commit(self, done: Sequenced) -> None:
        prints, quotes = updates(done)
        if not prints and not quotes:
            return
        try:
            self._queue.put_nowait((prints, quotes))
        except asyncio.QueueFull:
            self._dirty = True  # what was dropped is in SQL: the rebuild reads it
        self._wake.set()

    # -- output --------------------------------------------------------------------------

    async def board(self) -> Board:
        """Everything, in one read of the store; the last good one (stale) if it is away."""
        if not self._dirty and not self._rebuilding:
            now = time.monotonic()
            if (
                self._last_board is not None
                and self._board_version == self._version
                and now - self._board_at < self.board_max_age_s
            ):
                return self._last_board
            try:
                version = self._version
                view = board(await self.store.read(), stale=self.stale)
            except ConnectionError:
                self._mark_broken()
            else:
                self._last_board, self._board_version, self._board_at = view, version, now
                return view
        if self._last_board is None:
            return Board(None, True, [], [], {}, [])
        return msgspec.structs.replace(self._last_board, stale=True)

    async def history(self, market: str, first: date, last: date) -> dict[str, Any]:
        lo, hi = first.isoformat(), last.isoformat()
        stats = select(DAILY_STATS).where(
            DAILY_STATS.c.market == market, DAILY_STATS.c.day.between(lo, hi)
        )
        prices = select(PRICES).where(
            PRICES.c.key.in_([market, market.partition(":")[0], "lead"]),
            PRICES.c.day.between(lo, hi),
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(stats.order_by(DAILY_STATS.c.day))).mappings().all()
            published = (await conn.execute(prices.order_by(PRICES.c.seq))).mappings().all()
        quotes = []
        for p in published:
            row = dict(p)
            row["at"] = from_us(row.pop("at_us")).isoformat()
            quotes.append(row)
        return {"market": market, "days": [dict(r) for r in rows], "prices": quotes}

    # -- the loop ------------------------------------------------------------------------

    def _mark_broken(self) -> None:
        self._dirty = True
        self.stale = True
        self._wake.set()
        self._changed()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    async def run(self) -> None:
        while True:
            honour_cancellation()
            if self._dirty:
                try:
                    await self.rebuild()
                except ConnectionError as err:
                    log.warning("price store unavailable, retrying: %s", err)
                    await asyncio.sleep(self.retry_s)
                    continue
            try:
                await self._step()
            except ConnectionError as err:
                log.warning("price store failed, rebuilding: %s", err)
                self._mark_broken()

    async def _step(self) -> None:
        midnight = shanghai_midnight(shanghai_day(self.clock.now()) + timedelta(days=1))
        if self._queue.empty():
            honour_cancellation()
            self._wake.clear()
            waits = {
                asyncio.ensure_future(self.clock.sleep_until(midnight)),
                asyncio.ensure_future(self._wake.wait()),
            }
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:  # not awaited: that could swallow our own cancellation
                    w.cancel()
        if self._dirty:
            return
        today = shanghai_day(self.clock.now()).isoformat()
        current = await self.store.day()
        if current is None:
            self._mark_broken()
            return
        if current < today:
            await self.roll(current, today)
        while not self._queue.empty():
            prints, quotes = self._queue.get_nowait()
            for day in sorted({p.day for p in prints if p.day > today}):
                await self.roll(today, day)  # a print of tomorrow before our timer fired
                today = day
            ok = await self.store.add_prints(prints) and await self.store.add_quotes(quotes)
            self._version += 1
            if not ok:
                self._mark_broken()
                return
        self.stale = False
        self._changed()

    # -- days ----------------------------------------------------------------------------

    async def roll(self, ended: str, today: str) -> None:
        """Settle the day that ended, write its rows, start ``today`` fresh."""
        _, aggs, _, settlements = await self.store.read()
        closing = await self._settle_day(ended, aggs, settlements)
        await self.store.set_settlements(closing)
        self._version += 1
        if not await self.store.start_day(today):
            self._mark_broken()  # emptied meanwhile: the rebuild settles again from SQL

    async def _settle_day(
        self, day: str, aggs: dict[str, Aggregate], previous: dict[str, Settlement]
    ) -> dict[str, Settlement]:
        closing = {}
        rows = []
        for market in sorted(set(aggs) | set(previous)):
            agg = aggs.get(market)
            s = settle(agg, previous.get(market), day, self.rule)
            closing[market] = s
            rows.append(
                {
                    "market": market,
                    "day": day,
                    "open_fen_per_t": agg.open if agg else None,
                    "high_fen_per_t": agg.high if agg else None,
                    "low_fen_per_t": agg.low if agg else None,
                    "last_fen_per_t": agg.last if agg else None,
                    "volume_kg": agg.volume_kg if agg else 0,
                    "trades": agg.trades if agg else 0,
                    "buyers": agg.buyers if agg else 0,
                    "vwap_fen_per_t": vwap(agg.notional, agg.volume_kg) if agg else None,
                    "settlement_fen_per_t": s.price_fen_per_t,
                    "carried": s.carried,
                }
            )
        if rows:
            try:
                async with self.db.begin() as conn:
                    await conn.execute(
                        DAILY_STATS.delete().where(DAILY_STATS.c.day == day)
                    )  # settling a day again (after a crash) replaces its rows
                    await conn.execute(DAILY_STATS.insert(), rows)
            except Exception as err:  # the database is away: settle again once it is back
                raise ConnectionError(f"daily_stats: {err!r}") from err
        return closing

    # -- rebuild -------------------------------------------------------------------------

    async def rebuild(self) -> None:
        """The store from SQL alone, then whatever is queued on top (positions skip what
        the rebuild already has)."""
        self.stale = True
        self._dirty = False
        self._rebuilding = True
        try:
            await self._rebuild()
        finally:
            self._rebuilding = False

    async def _rebuild(self) -> None:
        today = shanghai_day(self.clock.now())
        try:
            settlements = await self._catch_up(today)
            prints = await self._prints_between(
                shanghai_midnight(today), shanghai_midnight(today + timedelta(days=1))
            )
            quotes = await self._latest_quotes()
        except ConnectionError:
            self._dirty = True
            raise
        except Exception as err:
            self._dirty = True
            raise ConnectionError(f"journal read tables: {err!r}") from err
        try:
            await self.store.clear()
            await self.store.set_settlements(settlements)
            await self.store.start_day(today.isoformat(), create=True)
            if not (await self.store.add_prints(prints) and await self.store.add_quotes(quotes)):
                raise ConnectionError("the store emptied during the rebuild")
        except ConnectionError:
            self._dirty = True
            raise
        self.rebuilds += 1
        self._version += 1
        self.stale = False  # what is queued is newer than the rebuild: applied next
        self._changed()

    async def _catch_up(self, today: date) -> dict[str, Settlement]:
        """Settle every day before ``today`` that had prints and no ``daily_stats`` rows
        (nobody was running at its midnight); the latest settlement of every market."""
        async with self.db.connect() as conn:
            settled = (await conn.execute(select(func.max(DAILY_STATS.c.day)))).scalar()
            first_trade = (await conn.execute(select(func.min(TRADES.c.at_us)))).scalar()
            first_award = (await conn.execute(select(func.min(AWARDS.c.at_us)))).scalar()
        starts = [from_us(x) for x in (first_trade, first_award) if x is not None]
        day = date.fromisoformat(settled) + timedelta(days=1) if settled else None
        if day is None and starts:
            day = shanghai_day(min(starts))
        previous = await self._latest_settlements()
        while day is not None and day < today:
            scratch = MemoryPrices()
            await scratch.start_day(day.isoformat(), create=True)
            await scratch.add_prints(
                await self._prints_between(
                    shanghai_midnight(day), shanghai_midnight(day + timedelta(days=1))
                )
            )
            _, aggs, _, _ = await scratch.read()
            if aggs or previous:
                previous.update(await self._settle_day(day.isoformat(), aggs, previous))
            day += timedelta(days=1)
        return previous

    async def _latest_settlements(self) -> dict[str, Settlement]:
        latest = (
            select(DAILY_STATS.c.market, func.max(DAILY_STATS.c.day).label("day"))
            .group_by(DAILY_STATS.c.market)
            .subquery()
        )
        query = select(DAILY_STATS).join(
            latest,
            (DAILY_STATS.c.market == latest.c.market) & (DAILY_STATS.c.day == latest.c.day),
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return {
            r["market"]: Settlement(r["day"], r["settlement_fen_per_t"], bool(r["carried"]))
            for r in rows
        }

    async def _prints_between(self, start: Any, end: Any) -> list[Print]:
        lo, hi = to_us(start), to_us(end)
        trades = (
            select(TRADES)
            .where(TRADES.c.at_us >= lo, TRADES.c.at_us < hi)
            .order_by(TRADES.c.seq, TRADES.c.trade_id)
        )
        awards = (
            select(AWARDS)
            .where(AWARDS.c.at_us >= lo, AWARDS.c.at_us < hi)
            .order_by(AWARDS.c.seq, AWARDS.c.lot_id)
        )
        async with self.db.connect() as conn:
            # one moment for both: the store keeps one position per market and skips what
            # is older, so a trade missed here while a later award was read would be
            # skipped again when its commit is applied from the queue
            await begin_snapshot(conn)
            trade_rows = (await conn.execute(trades)).mappings().all()
            award_rows = (await conn.execute(awards)).mappings().all()
        out = []
        for rows, offset in ((trade_rows, 0), (award_rows, AWARD_INDEX)):
            seq, index = None, 0
            for r in rows:
                index = index + 1 if r["seq"] == seq else 0
                seq = r["seq"]
                out.append(_print(r["seq"], offset + index, from_us(r["at_us"]), r["market"],
                                  r["price_fen_per_t"], r["weight_kg"], r["buyer"]))  # fmt: skip
        out.sort(key=lambda p: p.pos)
        return out

    async def _latest_quotes(self) -> list[Quote]:
        newest = select(func.max(PRICES.c.seq)).group_by(
            PRICES.c.kind, PRICES.c.key, PRICES.c.publisher
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(PRICES).where(PRICES.c.seq.in_(newest)))).mappings()
            return [
                Quote(
                    r["seq"] * POS_SHIFT,
                    r["kind"],
                    r["key"],
                    r["publisher"],
                    r["price_fen_per_t"],
                    bool(r["vat_included"]),
                    from_us(r["at_us"]).isoformat(),
                )
                for r in rows.all()
            ]


# -- history import ----------------------------------------------------------------------

HISTORY_COLUMNS = ("day", "kind", "key", "publisher", "price_fen_per_t", "vat_included")


class HistoryError(ValueError):
    pass


def parse_history(text: str, catalogue: Catalogue) -> list[dict[str, Any]]:
    """Rows of a price-history CSV (``HISTORY_COLUMNS``, a header line first), checked
    like a ``PublishPrice``; the first bad line stops everything (``line N: ...``)."""
    lines = text.splitlines()
    if not lines or tuple(c.strip() for c in lines[0].split(",")) != HISTORY_COLUMNS:
        raise HistoryError(f"line 1: the header must be {','.join(HISTORY_COLUMNS)}")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(HISTORY_COLUMNS):
            raise HistoryError(f"line {n}: {len(cells)} fields, not {len(HISTORY_COLUMNS)}")
        day, kind, key, publisher, price, vat = cells
        try:
            when = date.fromisoformat(day) if len(day) == 10 else None
        except ValueError:
            when = None
        if when is None:
            raise HistoryError(f"line {n}: day {day!r} is not YYYY-MM-DD")
        if kind not in ("daily", "upstream", "end_of_chain"):
            raise HistoryError(f"line {n}: kind {kind!r} is not daily, upstream or end_of_chain")
        if kind == "end_of_chain":
            known = key == "lead" or catalogue.has_category(key)
        else:
            category, _, region = key.partition(":")
            known = catalogue.has_category(category) and valid_region(region)
        if not known:
            raise HistoryError(f"line {n}: {key!r} is not a known market, category or 'lead'")
        if not publisher or len(publisher) > 200:
            raise HistoryError(f"line {n}: a publisher of 1-200 characters is required")
        if not price.isdigit() or not 0 < int(price) <= MAX_PRICE_FEN_PER_T:
            raise HistoryError(f"line {n}: price_fen_per_t must be 1-{MAX_PRICE_FEN_PER_T}")
        if vat not in ("true", "false"):
            raise HistoryError(f"line {n}: vat_included is true or false")
        rows.append(
            {
                "day": when.isoformat(),
                "kind": kind,
                "key": key,
                "publisher": publisher,
                "price_fen_per_t": int(price),
                "vat_included": vat == "true",
                "at_us": to_us(shanghai_midnight(when)),
            }
        )
    return rows


async def import_history(db: AsyncEngine, rows: list[dict[str, Any]]) -> int:
    """Into ``prices``, in one transaction, at negative sequence numbers: imported history
    is not the journal's (it sets no band, and any journaled quote is newer than it)."""
    async with db.begin() as conn:
        lowest = (await conn.execute(select(func.min(PRICES.c.seq)))).scalar() or 0
        start = min(lowest, 0) - 1
        for i, row in enumerate(rows):
            row["seq"] = start - i
        if rows:
            await conn.execute(PRICES.insert(), rows)
    return len(rows)
