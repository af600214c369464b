"""Alembic environment: runs on the connection ``auction.migrate`` hands it."""

from __future__ import annotations

from alembic import context

from auction.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `auction db upgrade` (auction.migrate)")
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
