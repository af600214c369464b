"""Organisations, principals and bearer tokens.  Identity comes from the token only.

A token is ``auc_`` + 32 random url-safe bytes; only its sha256 is stored, so a leaked
database does not leak tokens.  Tokens can expire and be revoked.  Roles: store,
recycler, transporter, regulator (read-only, scoped to region prefixes), admin (never
trades), service (price publishers, quote boards).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from datetime import datetime
from typing import Any, Final, Literal

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from auction.clock import Clock
from auction.db import OrgRow, PrincipalRow, TokenRow, table_of
from auction.errors import ClientError
from auction.journal import to_us

Role = Literal["store", "recycler", "transporter", "regulator", "admin", "service"]
ROLES: Final[tuple[str, ...]] = (
    "store",
    "recycler",
    "transporter",
    "regulator",
    "admin",
    "service",
)

ORGS = table_of(OrgRow)
PRINCIPALS = table_of(PrincipalRow)
TOKENS = table_of(TokenRow)


class Principal(msgspec.Struct, frozen=True):
    id: str
    org: str
    role: Role
    name: str = ""
    regions: tuple[str, ...] = ()

    def sees_region(self, region: str) -> bool:
        return any(region.startswith(prefix) for prefix in self.regions)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "auc_" + secrets.token_urlsafe(32)


class Accounts:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_org(self, org_id: str, name: str = "") -> None:
        async with self.engine.begin() as conn:
            found = (
                await conn.execute(select(ORGS.c.org_id).where(ORGS.c.org_id == org_id))
            ).first()
            if found is None:
                await conn.execute(insert(ORGS).values(org_id=org_id, name=name or org_id))

    async def create_principal(
        self,
        principal_id: str,
        org_id: str,
        role: str,
        now: datetime,
        *,
        name: str = "",
        regions: tuple[str, ...] = (),
    ) -> Principal:
        if role not in ROLES:
            raise ClientError(
                "invalid_value", f"role must be one of {', '.join(ROLES)}", field="role"
            )
        if role == "regulator" and not regions:
            raise ClientError("invalid_value", "a regulator needs its regions", field="regions")
        await self.create_org(org_id)
        async with self.engine.begin() as conn:
            found = (
                await conn.execute(
                    select(PRINCIPALS.c.principal_id).where(
                        PRINCIPALS.c.principal_id == principal_id
                    )
                )
            ).first()
            if found is not None:
                raise ClientError("duplicate_id", f"principal {principal_id} exists")
            await conn.execute(
                insert(PRINCIPALS).values(
                    principal_id=principal_id,
                    org_id=org_id,
                    role=role,
                    name=name or principal_id,
                    regions=",".join(regions),
                    created_us=to_us(now),
                )
            )
        return Principal(principal_id, org_id, role, name or principal_id, regions)  # type: ignore[arg-type]

    async def issue_token(
        self, principal_id: str, now: datetime, expires: datetime | None = None
    ) -> str:
        token = new_token()
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(TOKENS).values(
                    token_hash=token_hash(token),
                    principal_id=principal_id,
                    created_us=to_us(now),
                    expires_us=to_us(expires) if expires else None,
                    revoked_us=None,
                )
            )
        return token

    async def revoke(self, principal_id: str, now: datetime) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(TOKENS)
                .where(TOKENS.c.principal_id == principal_id, TOKENS.c.revoked_us.is_(None))
                .values(revoked_us=to_us(now))
            )
            return int(result.rowcount or 0)

    async def authenticate(self, token: str, now: datetime) -> Principal | None:
        """The principal a valid (known, unexpired, unrevoked) token stands for."""
        query = (
            select(*_PRINCIPAL_COLUMNS, TOKENS.c.expires_us, TOKENS.c.revoked_us)
            .select_from(
                TOKENS.join(PRINCIPALS, PRINCIPALS.c.principal_id == TOKENS.c.principal_id)
            )
            .where(TOKENS.c.token_hash == token_hash(token))
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        expires_us, revoked_us = row[-2:]
        if revoked_us is not None or (expires_us is not None and expires_us <= to_us(now)):
            return None
        return _principal(row)

    async def principal(self, principal_id: str) -> Principal | None:
        """A principal by id (a websocket ticket names one)."""
        query = select(*_PRINCIPAL_COLUMNS).where(PRINCIPALS.c.principal_id == principal_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _principal(row)


_PRINCIPAL_COLUMNS = (
    PRINCIPALS.c.principal_id,
    PRINCIPALS.c.org_id,
    PRINCIPALS.c.role,
    PRINCIPALS.c.name,
    PRINCIPALS.c.regions,
)


def _principal(row: Any) -> Principal:
    """A ``Principal`` from a row that starts with ``_PRINCIPAL_COLUMNS``."""
    pid, org, role, name, regions = row[:5]
    return Principal(pid, org, role, name, tuple(r for r in regions.split(",") if r))


class TokenCache:
    """Bearer tokens to principals for a web process: answers are kept 10 s (so a
    revoked token may still work that long), and concurrent lookups of one token share
    one database read."""

    def __init__(self, accounts: Accounts, clock: Clock, ttl_s: float = 10.0) -> None:
        self.accounts = accounts
        self.clock = clock
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._lookups: dict[str, asyncio.Future[Principal | None]] = {}

    async def authenticate(self, token: str) -> Principal | None:
        if not token or len(token) > 200:
            return None
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and now - cached[1] < self.ttl_s:
            return cached[0]
        lookup = self._lookups.get(token)
        if lookup is None:
            lookup = asyncio.ensure_future(self.accounts.authenticate(token, self.clock.now()))
            self._lookups[token] = lookup
            try:
                who = await lookup
            finally:
                del self._lookups[token]
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[token] = (who, now)
            return who
        return await asyncio.shield(lookup)
