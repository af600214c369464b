"""A 50,000-command seeded stream journaled through the runner, then rebuilt from the
journal alone and from a snapshot plus the rest: equal state hashes at every checkpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

from auction import snapshot
from auction.clock import ManualClock
from auction.codec import decode_command
from auction.db import make_engine
from auction.engine import Engine
from auction.journal import Journal, from_us
from auction.migrate import upgrade
from auction.runner import Runner
from tests.property.test_engine_property import START, Stream

COMMANDS = 50_000
CHUNK = 500


async def journal_stream(url: str, snap: Path) -> dict[int, str]:
    """Run the stream through a journaled runner; returns {seq: state hash} checkpoints."""
    db = make_engine(url)
    await upgrade(db)
    clock = ManualClock(START)
    journal = Journal(db)
    runner = await Runner.open(
        journal, clock, snapshot_path=snap, snapshot_every=8_000, max_batch=CHUNK
    )
    task = asyncio.create_task(runner.run())
    # buying power is held by trades until settlement: fund generously for a long run
    stream = Stream(seed=2026, limits=(10**10, 10**11))
    checkpoints: dict[int, str] = {}
    try:
        for n in range(0, COMMANDS, CHUNK):
            chunk = [stream.next() for _ in range(CHUNK)]
            clock.set(max(clock.now(), chunk[-1][1]))
            await asyncio.gather(*(runner.submit(c) for c, _ in chunk))
            if (n // CHUNK) % 10 == 9:
                checkpoints[runner._seq] = runner.engine.state_hash()
        checkpoints[runner._seq] = runner.engine.state_hash()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        journal.close()
        await db.dispose()
    return checkpoints


async def rebuild(url: str, snap: Path, checkpoints: dict[int, str]) -> tuple[int, int]:
    db = make_engine(url)
    try:
        journal = Journal(db)
        saved = snapshot.read(snap)
        assert saved is not None, "the runner should have written a snapshot"
        snap_seq, from_snapshot = saved
        alone = Engine()
        checked = 0
        async for rows in journal.rows():
            for seq, at_us, command in rows:
                cmd, at = decode_command(command), from_us(at_us)
                alone.apply(cmd, at)
                if seq == snap_seq:
                    assert alone.state_hash() == from_snapshot.state_hash(), "snapshot differs"
                if seq > snap_seq:
                    from_snapshot.apply(cmd, at)
                if seq in checkpoints:
                    assert alone.state_hash() == checkpoints[seq], f"journal replay at {seq}"
                    if seq >= snap_seq:
                        assert from_snapshot.state_hash() == checkpoints[seq], f"snapshot at {seq}"
                    checked += 1
        return checked, snap_seq
    finally:
        await db.dispose()


def test_fifty_thousand_commands_replay_to_the_same_hashes(
    database_url: str, tmp_path: Path
) -> None:
    snap = tmp_path / "engine.snapshot"
    checkpoints = asyncio.run(journal_stream(database_url, snap))
    checked, snap_seq = asyncio.run(rebuild(database_url, snap, checkpoints))
    assert checked == len(checkpoints) >= 10
    assert snap_seq >= 8_000


def test_a_torn_snapshot_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "s.snapshot"
    engine = Engine()
    snapshot.write(path, engine, 7)
    assert snapshot.read(path) is not None
    data = path.read_bytes()
    for torn in (data[: len(data) // 2], data[:10], data[:-1] + bytes([data[-1] ^ 1]), b""):
        path.write_bytes(torn)
        assert snapshot.read(path) is None
