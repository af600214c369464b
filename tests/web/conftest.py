"""The app in-process (Starlette's TestClient) on its own SQLite journal, with one
principal of every role and tokens for them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from auction.accounts import Accounts
from auction.db import make_engine
from auction.migrate import upgrade
from auction.settings import Settings
from web.app import create_app

PEOPLE = {
    # id: (org, role, regions)
    "s1": ("S1", "store", ()),
    "s2": ("S2", "store", ()),
    "ra": ("RA", "recycler", ()),
    "rb": ("RB", "recycler", ()),
    "rs": ("S1", "recycler", ()),  # a recycler of store s1's own organisation
    "tr": ("TR", "transporter", ()),
    "reg": ("EPB", "regulator", ("3305",)),
    "reg2": ("EPB2", "regulator", ("1101",)),
    "adm": ("PLATFORM", "admin", ()),
    "svc": ("BOARD", "service", ()),
}


class Service:
    def __init__(self, client: TestClient, tokens: dict[str, str], url: str) -> None:
        self.client = client
        self.tokens = tokens
        self.url = url
        self.keys = 0

    def headers(self, who: str | None, key: bool = True) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if who is not None:
            h["Authorization"] = f"Bearer {self.tokens[who]}"
        if key:
            self.keys += 1
            h["Idempotency-Key"] = f"k{self.keys}"
        return h

    def post(self, who: str | None, path: str, body: Any = None, **kw: Any) -> Any:
        headers = self.headers(who)
        headers.update(kw.pop("headers", {}))
        if body is not None and "content" not in kw:
            kw["json"] = body
        return self.client.post(path, headers=headers, **kw)

    def get(self, who: str | None, path: str) -> Any:
        return self.client.get(path, headers=self.headers(who, key=False))


async def _accounts(url: str) -> dict[str, str]:
    db = make_engine(url)
    await upgrade(db)
    accounts = Accounts(db)
    now = datetime.now(UTC)
    tokens = {}
    for pid, (org, role, regions) in PEOPLE.items():
        await accounts.create_principal(pid, org, role, now, regions=regions)
        tokens[pid] = await accounts.issue_token(pid, now)
    tokens["expired"] = await accounts.issue_token(
        "ra", now - timedelta(days=2), now - timedelta(days=1)
    )
    await accounts.create_principal("gone", "GONE", "recycler", now)
    tokens["revoked"] = await accounts.issue_token("gone", now)
    await accounts.revoke("gone", now)
    await db.dispose()
    return tokens


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'api.db'}"
    tokens = asyncio.run(_accounts(url))
    settings = Settings(database_url=url, snapshot_path=tmp_path / "snap", snapshot_every=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        svc = Service(client, tokens, url)
        for r in ("ra", "rb", "rs"):
            resp = svc.post("adm", "/v1/admin/buying-power", {"bidder": r, "limit_fen": 10**9})
            assert resp.status_code == 200, resp.text
        yield svc
