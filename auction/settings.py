"""One frozen settings object, from ``AUCTION_*`` environment variables (each also a flag)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./auction.db"
    redis_url: str | None = None
    snapshot_path: Path | None = Path("auction.snapshot")
    snapshot_every: int = 100_000
    allow_unsafe_durability: bool = False
    max_batch: int = 1_000
    max_queue: int = 10_000
    rate_per_principal: float = 200.0  # requests/s per principal (token bucket, burst 2x)
    ws_origins: tuple[str, ...] = ()  # browser origins allowed on /v1/ws besides our own
    price_feed_url: str | None = None  # an end-of-chain price feed to follow (feeds/sources.py)
    ws_max_buffer: int = 512 * 1024  # bytes queued per websocket before a slow consumer is cut
    ws_conflate_s: float = 0.25  # the screens' tick: board / stats frames at most this often,
    # and each market's trades tape gathered this long into one message
    ws_heartbeat_s: float = 15.0  # a quiet websocket gets a heartbeat this often (screens
    # call the feed late after two missed beats)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get("AUCTION_" + f.name.upper())
            if raw is None:
                continue
            if f.name in ("snapshot_every", "max_batch", "max_queue", "ws_max_buffer"):
                values[f.name] = int(raw)
            elif f.name in ("rate_per_principal", "ws_heartbeat_s", "ws_conflate_s"):
                values[f.name] = float(raw)
            elif f.name == "allow_unsafe_durability":
                values[f.name] = _flag(raw)
            elif f.name == "ws_origins":
                values[f.name] = tuple(o.strip() for o in raw.split(",") if o.strip())
            elif f.name == "snapshot_path":
                values[f.name] = Path(raw) if raw else None
            else:
                values[f.name] = raw or None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
