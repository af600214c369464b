"""The migrations build the schema the models declare, on SQLite and on a real PostgreSQL,
and the newest one steps down and up again."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from auction.db import Base, make_engine
from auction.migrate import _config, head, upgrade


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_the_migrations_build_the_models_schema(database_url: str) -> None:
    async def body() -> None:
        db = make_engine(database_url)
        try:
            await upgrade(db)
            async with db.connect() as conn:
                assert await conn.run_sync(_differences) == []
            async with db.begin() as conn:
                await conn.run_sync(lambda c: command.downgrade(_config(c), "-1"))
            async with db.connect() as conn:
                assert await conn.run_sync(_differences) != []  # the step down did something
            await upgrade(db)
            async with db.connect() as conn:
                assert await conn.run_sync(_differences) == []
                version = await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                assert version.scalar_one() == head()
        finally:
            await db.dispose()

    asyncio.run(body())
