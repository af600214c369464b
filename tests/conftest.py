"""Shared fixtures: journal databases on SQLite and on a real PostgreSQL.

PostgreSQL tests get a database of their own (created and dropped around the test).
Without a reachable server they skip, except under ``AUCTION_REQUIRE_SERVICES=1`` (CI),
where they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

PG_HOST = os.environ.get("AUCTION_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN = f"postgresql://postgres@{PG_HOST}:5432/test"


def services_required() -> bool:
    return os.environ.get("AUCTION_REQUIRE_SERVICES") == "1"


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_database() -> Iterator[str]:
    name = f"auction_t_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as err:
        if services_required():
            pytest.fail(f"PostgreSQL is required (AUCTION_REQUIRE_SERVICES=1): {err!r}")
        pytest.skip(f"no PostgreSQL at {PG_HOST}:5432: {err!r}")
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{name}"
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"
    else:
        yield from postgres_database()


REDIS_TEST_URL = os.environ.get("AUCTION_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
"""The tests' own Redis database number: flushed by the tests, and only that one."""


def redis_url() -> str:
    """The test Redis database, flushed; skips (fails under CI) when Redis is away."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.flushdb()
    except (redis.exceptions.RedisError, OSError) as err:
        if services_required():
            pytest.fail(f"Redis is required (AUCTION_REQUIRE_SERVICES=1): {err!r}")
        pytest.skip(f"no Redis at {REDIS_TEST_URL}: {err!r}")
    finally:
        client.close()
    return REDIS_TEST_URL
