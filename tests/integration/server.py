"""A real ``auction`` process on a free port, with accounts made through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.crash import free_port

PEOPLE = [
    ("s1", "S1", "store"),
    ("s2", "S2", "store"),
    ("ra", "RA", "recycler"),
    ("rb", "RB", "recycler"),
    ("adm", "P", "admin"),
    ("board", "P", "service"),
]


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "auction", *args], env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


class Service:
    def __init__(self, base: str, tokens: dict[str, str], proc: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.ws = base.replace("http://", "ws://") + "/v1/ws"
        self.tokens = tokens
        self.proc = proc
        self.n = 0

    def call(
        self, method: str, path: str, who: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        if method == "POST":
            self.n += 1
            headers["Idempotency-Key"] = f"k-{time.time_ns()}-{self.n}"
        data = json.dumps(body or {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AUCTION_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        AUCTION_SNAPSHOT_PATH=str(tmp_path / "snap"),
        **extra,
    )
    return env


def make_accounts(env: dict[str, str]) -> dict[str, str]:
    tokens = {}
    for pid, org, role in PEOPLE:
        cli("accounts", "create", "--id", pid, "--org", org, "--role", role, env=env)
        tokens[pid] = cli("accounts", "token", "--id", pid, env=env)
    return tokens


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, tries: int = 600) -> None:
    """Until ``base`` answers ``/healthz`` with 200; the end of its log if it never does."""
    for _ in range(tries):
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(log.read_text()[-3000:])


@contextmanager
def running(
    env: dict[str, str], tokens: dict[str, str], log_path: Path, *args: str
) -> Iterator[Service]:
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115
    argv = [sys.executable, "-m", "auction", *(args or ("serve",)), "--port", str(port)]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, log_path, tries=200)
        yield Service(base, tokens, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
