"""The journal contract, on SQLite and on a real PostgreSQL: group commit, rebuild,
idempotency, read tables, refusal when the database fails, the audit chain, durability."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from auction.clock import ManualClock
from auction.codec import decode_command, fingerprint
from auction.db import UnsafeDatabase, check_durability, make_engine
from auction.engine import Engine
from auction.errors import ClientError
from auction.journal import Batch, Journal, from_us, to_us
from auction.messages import (
    AnyCommand,
    AuctionBid,
    PlaceBid,
    SellLot,
    SetBuyingPower,
    StartAuction,
)
from auction.migrate import upgrade
from auction.runner import Answer, Runner
from auction.types import MarketId, OrderId, OrgId, PrincipalId
from tests.conftest import postgres_database

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
M = MarketId("ebike:330522")
R = TypeVar("R")


def run(coro: Awaitable[R]) -> R:
    return asyncio.run(coro)  # type: ignore[arg-type]


def pairs(result: Any) -> dict[Any, Any]:
    return {row[0]: row[1] for row in result.all()}


def commands() -> list[tuple[str, AnyCommand]]:
    """(principal, command): funding, bids, one-click sales, an auction and bids on it."""
    out: list[tuple[str, AnyCommand]] = []
    for r in ("ra", "rb"):
        out.append(("admin", SetBuyingPower(bidder=PrincipalId(r), limit_fen=10**10)))
    for i, (who, price) in enumerate([("ra", 1_000_000), ("rb", 1_010_000), ("ra", 995_000)]):
        out.append(
            (who, PlaceBid(bid_id=OrderId(10 + i), market=M, owner=PrincipalId(who),
                           org=OrgId(who.upper()), price_fen_per_t=price, qty_kg=2_000))
        )  # fmt: skip
    for i in range(4):
        out.append(
            ("s1", SellLot(lot_id=OrderId(20 + i), market=M, owner=PrincipalId("s1"),
                           org=OrgId("S1"), weight_kg=700))
        )  # fmt: skip
    out.append(
        ("s2", StartAuction(lot_id=OrderId(30), market=M, owner=PrincipalId("s2"),
                            org=OrgId("S2"), weight_kg=500, start_price_fen_per_t=990_000,
                            duration_s=600))
    )  # fmt: skip
    for i, who in enumerate(["ra", "rb", "ra"]):
        out.append(
            (who, AuctionBid(lot_id=OrderId(30), bidder=PrincipalId(who), org=OrgId(who.upper()),
                             max_price_fen_per_t=1_000_000 + 10_000 * i))
        )  # fmt: skip
    return out


async def open_runner(url: str, clock: ManualClock, **kw: Any) -> tuple[Runner, Journal]:
    db = make_engine(url)
    await upgrade(db)
    journal = Journal(db)
    return await Runner.open(journal, clock, **kw), journal


async def with_runner(
    url: str, body: Callable[[Runner, Journal, ManualClock], Awaitable[R]], **kw: Any
) -> R:
    clock = ManualClock(T0)
    runner, journal = await open_runner(url, clock, **kw)
    task = asyncio.create_task(runner.run())
    try:
        return await body(runner, journal, clock)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        journal.close()
        await journal.engine.dispose()


async def submit_all(runner: Runner, items: list[tuple[str, AnyCommand]]) -> list[Answer]:
    return await asyncio.gather(
        *(runner.submit(c, principal=p, key=f"k{i}") for i, (p, c) in enumerate(items))
    )


def test_group_commit_then_rebuild_gives_the_same_state(database_url: str) -> None:
    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> tuple[str, int]:
        answers = await submit_all(runner, commands())
        seqs = [a.seq for a in answers if a.seq is not None]
        assert seqs == list(range(1, len(seqs) + 1))  # gapless, in submission order
        assert await journal.last_seq() == len(seqs)
        return runner.engine.state_hash(), len(seqs)

    live_hash, n = run(with_runner(database_url, body))

    async def again(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        assert runner.engine.state_hash() == live_hash
        assert runner._seq == n
        async with journal.engine.connect() as conn:
            trades = (await conn.execute(text("select count(*), sum(weight_kg) from trades"))).one()
            lots = pairs(await conn.execute(text("select lot_id, state from lots")))
            bp = pairs(await conn.execute(text("select bidder, reserved_fen from buying_power")))
            bids = pairs(await conn.execute(text("select bid_id, open_kg from bids")))
        # four 700 kg lots: rb's 1,010,000 bid takes two (1,400 kg), ra's takes two
        assert tuple(trades) == (4, 2_800)
        assert lots[20] == "awarded" and lots[30] == "in_auction"
        assert bids == {10: 600, 11: 600, 12: 2_000}
        _, reserved, _ = runner.engine.buying_power(PrincipalId("ra"))
        assert bp["ra"] == reserved

    run(with_runner(database_url, again))


def test_idempotency_keys(database_url: str) -> None:
    bid = PlaceBid(bid_id=OrderId(5), market=M, owner=PrincipalId("ra"), org=OrgId("RA"),
                   price_fen_per_t=1_000_000, qty_kg=100)  # fmt: skip
    other = PlaceBid(bid_id=OrderId(6), market=M, owner=PrincipalId("ra"), org=OrgId("RA"),
                     price_fen_per_t=1_000_000, qty_kg=100)  # fmt: skip
    fund = SetBuyingPower(bidder=PrincipalId("ra"), limit_fen=10**9)

    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        await runner.submit(fund, principal="admin", key="fund")
        first = await runner.submit(bid, principal="ra", key="key-1")
        again = await runner.submit(bid, principal="ra", key="key-1")
        assert (again.replay, again.seq, again.events) == (True, first.seq, first.events)
        assert await journal.last_seq() == 2  # nothing applied twice
        with pytest.raises(ClientError) as err:
            await runner.submit(other, principal="ra", key="key-1")
        assert err.value.code == "idempotency_key_reused"
        # another principal's identical key string is its own request
        mine = await runner.submit(other, principal="rb", key="key-1")
        assert not mine.replay and mine.seq == 3
        # the same key while the first is still queued: 409
        later = PlaceBid(bid_id=OrderId(9), market=M, owner=PrincipalId("ra"),
                         org=OrgId("RA"), price_fen_per_t=1_000_000, qty_kg=100)  # fmt: skip
        pending = asyncio.ensure_future(runner.submit(later, principal="ra", key="key-2"))
        await asyncio.sleep(0)
        with pytest.raises(ClientError) as err:
            await runner.submit(later, principal="ra", key="key-2")
        assert err.value.code == "idempotency_in_flight"
        assert not (await pending).replay

    run(with_runner(database_url, body))

    async def after_restart(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        replay = await runner.submit(bid, principal="ra", key="key-1")
        assert replay.replay and replay.seq == 2  # answered from the database
        with pytest.raises(ClientError):
            await runner.submit(other, principal="ra", key="key-1")

    run(with_runner(database_url, after_restart))


def test_fingerprint_ignores_json_spacing() -> None:
    compact = b'{"type":"cancel_bid","bid_id":5,"owner":"ra"}'
    spaced = b'{ "owner" : "ra",\n "type": "cancel_bid", "bid_id" : 5 }'
    assert fingerprint(decode_command(compact)) == fingerprint(decode_command(spaced))


def test_refused_commands_are_answered_but_not_journaled(database_url: str) -> None:
    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        bad = PlaceBid(bid_id=OrderId(1), market=M, owner=PrincipalId("ra"), org=OrgId("RA"),
                       price_fen_per_t=1_000_000, qty_kg=100)  # fmt: skip
        answer = await runner.submit(bad, principal="ra", key="x")
        assert answer.seq is None and answer.events[-1].code == "insufficient_buying_power"  # type: ignore[union-attr]
        assert await journal.last_seq() == 0
        assert (await runner.submit(bad, principal="ra", key="x")).replay

    run(with_runner(database_url, body))


def test_a_failed_commit_acknowledges_nothing_and_rebuilds(database_url: str) -> None:
    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        await submit_all(runner, commands()[:5])
        before = runner.engine.state_hash()
        real_commit = journal.commit
        calls = 0

        async def failing(batch: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("database went away")
            await real_commit(batch)

        journal.commit = failing  # type: ignore[method-assign]
        lot = SellLot(lot_id=OrderId(40), market=M, owner=PrincipalId("s1"), org=OrgId("S1"),
                      weight_kg=500)  # fmt: skip
        with pytest.raises(ClientError) as err:
            await runner.submit(lot, principal="s1", key="lot-40")
        assert err.value.code == "journal_unavailable"
        for _ in range(50):  # the writer rebuilds from the journal
            await asyncio.sleep(0.01)
            if runner._healthy:
                break
        assert runner.engine.state_hash() == before  # the sale was not kept
        answer = await runner.submit(lot, principal="s1", key="lot-40")  # the retry works
        assert not answer.replay and answer.seq == 6

    run(with_runner(database_url, body))


async def build_journal(url: str, n: int = 12) -> None:
    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        await submit_all(runner, commands()[:n])

    await with_runner(url, body)


@pytest.mark.parametrize(
    ("tamper", "row"),
    [
        ("update audit set action = 'place_bid' where seq = 7", 7),
        ("update journal set command = replace(command, '700', '701') where seq = 6", 6),
        ("delete from audit where seq = 4", 4),
        ("update audit set seq = -seq where seq in (5, 6); "
         "update audit set seq = 6 where seq = -5; update audit set seq = 5 where seq = -6", 5),
        ("insert into audit select seq + 100, at_us, principal, action, digest, prev_hash, hash "
         "from audit where seq = 3", 13),
        ("delete from journal where seq = 12", 12),  # the last command removed
        ("delete from audit where seq = 12", 12),  # the last audit row removed
    ],
)  # fmt: skip
def test_audit_chain_names_the_first_broken_row(database_url: str, tamper: str, row: int) -> None:
    async def go() -> None:
        await build_journal(database_url)
        db = make_engine(database_url)
        try:
            journal = Journal(db)
            assert await journal.verify_audit() is None
            async with db.begin() as conn:
                for stmt in tamper.split("; "):
                    await conn.execute(text(stmt))
            problem = await journal.verify_audit()
            assert problem is not None and problem.seq == row, problem
        finally:
            await db.dispose()

    run(go())


def test_durability_settings_are_checked(database_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        if database_url.startswith("sqlite"):
            # a pool of one connection keeps the pragma for the check
            unsafe = create_async_engine(database_url, pool_size=1, max_overflow=0)
            async with unsafe.connect() as conn:
                await conn.execute(text("PRAGMA synchronous=OFF"))
        else:
            unsafe = make_engine(
                database_url, connect_args={"server_settings": {"synchronous_commit": "off"}}
            )
        try:
            with pytest.raises(UnsafeDatabase):
                await check_durability(unsafe)
            assert await check_durability(unsafe, allow_unsafe=True)
        finally:
            await unsafe.dispose()
        safe = make_engine(database_url)
        try:
            assert await check_durability(safe) == []
        finally:
            await safe.dispose()

    run(go())


def test_journal_times_round_trip() -> None:
    when = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(when)) == when
    assert from_us(to_us(when + timedelta(days=400))) == when + timedelta(days=400)


def test_engine_pickles_for_snapshots() -> None:
    """A snapshot must behave exactly like the engine it was taken from (an earlier
    version lost the auctions' minimum next bid on unpickling: the crash test found it)."""
    live = Engine()
    for _, command in commands():
        live.apply(command, T0)
    copy = pickle.loads(pickle.dumps(live))
    assert copy.state_hash() == live.state_hash()
    low = AuctionBid(lot_id=OrderId(30), bidder=PrincipalId("rb"), org=OrgId("RB"),
                     max_price_fen_per_t=991_000)  # fmt: skip
    a, b = live.apply(low, T0), copy.apply(low, T0)
    assert a == b and a[-1].code == "below_increment"  # type: ignore[union-attr]
    assert copy.state_hash() == live.state_hash()


def test_idempotency_keys_are_kept_a_day_then_pruned(database_url: str) -> None:
    fund = SetBuyingPower(bidder=PrincipalId("ra"), limit_fen=10**9)
    other = SetBuyingPower(bidder=PrincipalId("ra"), limit_fen=10**8)

    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        await runner.submit(fund, principal="admin", key="k")
        clock.advance(timedelta(hours=23, minutes=59))
        await runner.submit(other, principal="admin", key="tick-1")  # a batch: maybe prune
        assert (await runner.submit(fund, principal="admin", key="k")).replay
        clock.advance(timedelta(hours=2))
        await runner.submit(other, principal="admin", key="tick-2")
        # the runner prunes the table after it answered that batch: wait for it to land
        for _ in range(100):
            if await journal.idempotent_answer("admin", "k") is None:
                break
            await asyncio.sleep(0.02)
        assert await journal.idempotent_answer("admin", "k") is None
        fresh = await runner.submit(other, principal="admin", key="k")  # a new request now
        assert not fresh.replay

    run(with_runner(database_url, body))


def test_idempotency_keys_that_share_a_digest_stay_apart(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory keeps only digests of keys; with every key on one digest the database must
    still tell a retry from a new request, before and after a restart."""
    from auction import idempotency

    monkeypatch.setattr(idempotency, "digest", lambda principal, key: 0)
    fund = SetBuyingPower(bidder=PrincipalId("ra"), limit_fen=10**9)
    bid = PlaceBid(bid_id=OrderId(5), market=M, owner=PrincipalId("ra"), org=OrgId("RA"),
                   price_fen_per_t=1_000_000, qty_kg=100)  # fmt: skip

    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        first = await runner.submit(fund, principal="admin", key="a")
        placed = await runner.submit(bid, principal="ra", key="b")  # same digest, new key
        assert not placed.replay and placed.seq == first.seq + 1  # type: ignore[operator]
        assert (await runner.submit(fund, principal="admin", key="a")).replay
        with pytest.raises(ClientError) as err:
            await runner.submit(bid, principal="admin", key="a")
        assert err.value.code == "idempotency_key_reused"
        assert await journal.last_seq() == 2

    run(with_runner(database_url, body))

    async def after_restart(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        again = await runner.submit(bid, principal="ra", key="b")
        assert again.replay and again.seq == 2  # from the database, not memory
        fund_rb = SetBuyingPower(bidder=PrincipalId("rb"), limit_fen=10**9)
        other = await runner.submit(fund_rb, principal="rb", key="b")  # rb's own key "b"
        assert not other.replay and other.seq == 3

    run(with_runner(database_url, after_restart))


def test_a_batch_the_database_refuses_leaves_nothing_behind(database_url: str) -> None:
    """A batch is all or nothing, also as PostgreSQL's one statement: a trade and a lot
    written with a journal row whose ``seq`` is taken are not in the tables afterwards,
    and the next batch commits."""

    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        await submit_all(runner, commands()[:3])
        at = to_us(T0)
        taken = {"seq": 1, "at_us": at, "principal": "s1", "idem_key": None, "command": "{}"}
        audit = {"seq": 1, "at_us": at, "principal": "s1", "action": "x", "digest": "d",
                 "prev_hash": "p", "hash": "h"}  # fmt: skip
        trade = {"trade_id": 999, "seq": 1, "at_us": at, "market": M, "bid_id": 1, "lot_id": 2,
                 "buyer": "ra", "seller": "s1", "price_fen_per_t": 1, "weight_kg": 1,
                 "amount_fen": 1}  # fmt: skip
        lot = {"lot_id": 999, "market": M, "owner": "s1", "org": "S1", "weight_kg": 1,
               "kind": "one_click", "state": "listed", "updated_seq": 1}  # fmt: skip
        bad = Batch(journal=[taken], audit=[audit], trades=[trade], lots={999: lot})
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await journal.commit(bad)
        async with journal.engine.connect() as conn:
            for sql in ("SELECT count(*) FROM trades WHERE trade_id = 999",
                        "SELECT count(*) FROM lots WHERE lot_id = 999"):  # fmt: skip
                assert (await conn.execute(text(sql))).scalar() == 0
        answers = await submit_all(runner, commands()[3:5])
        assert [a.seq for a in answers] == [4, 5]

    run(with_runner(database_url, body))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


def test_the_writer_replaces_a_connection_postgresql_closed(postgres_url: str) -> None:
    """PostgreSQL restarted (here: the writer's backend terminated) between two batches:
    the writer sees its connection closed and opens another, and no batch is refused."""

    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        await submit_all(runner, commands()[:3])
        assert journal._pg is not None
        writer = journal._pg
        async with journal.engine.connect() as admin:
            pid = writer.get_server_pid()
            await admin.execute(text(f"SELECT pg_terminate_backend({pid})"))
        for _ in range(200):
            if writer.is_closed():
                break
            await asyncio.sleep(0.01)
        assert writer.is_closed()
        answers = await submit_all(runner, commands()[3:6])
        assert [a.seq for a in answers] == [4, 5, 6]
        assert journal._pg is not writer and runner._healthy

    run(with_runner(postgres_url, body))


def test_the_writer_connects_as_the_pool_does(postgres_url: str) -> None:
    """Options in the URL, for asyncpg (``ssl``) and for SQLAlchemy's adapter (its
    statement cache), reach the writer's own connection as they reach the pool's."""
    url = postgres_url + "?ssl=disable&prepared_statement_cache_size=50"

    async def body(runner: Runner, journal: Journal, clock: ManualClock) -> None:
        answers = await submit_all(runner, commands()[:3])
        assert [a.seq for a in answers] == [1, 2, 3]
        assert journal._pg is not None and not journal._pg.is_closed()

    run(with_runner(url, body))
