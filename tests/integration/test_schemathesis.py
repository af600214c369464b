"""schemathesis against ``/openapi.json`` of the real service (``auction serve --demo``)
with every check it has (``--checks all``), the stateful phase included.

Identities come from a Web Fuzzing Commons auth document: every demo role, so that each
operation is tried by a principal allowed to call it; two recyclers and two stores are
*peers*, whose objects must stay private to each other (schemathesis'
``object_level_authorization`` check replays one peer's reads as the others).  The hooks
in ``tests/integration/st_hooks.py`` give each case a fresh ``Idempotency-Key`` and say
which refusals of schema-valid data are the market's state, not a broken schema.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.crash import free_port

ROOT = Path(__file__).resolve().parents[2]
IDENTITIES = {
    "tianneng": "recycler-tianneng",
    "chaowei": "recycler-chaowei",
    "changxing": "store-changxing",
    "wuxing": "store-wuxing",
    "regulator": "regulator-huzhou",
    "admin": "admin",
}
PEERS = ["tianneng", "chaowei", "changxing", "wuxing"]


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which(
        "schemathesis"
    )
    if binary is None:
        pytest.fail("schemathesis is part of the test extra: pip install -e '.[test]'")
    env = dict(
        os.environ,
        AUCTION_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'st.db'}",
        AUCTION_SNAPSHOT_PATH=str(tmp_path / "snap"),
        AUCTION_RATE_PER_PRINCIPAL="100000",
    )
    port = free_port()
    out = open(tmp_path / "serve.out", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "auction", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        tokens: dict[str, str] = {}
        for _ in range(200):
            text = (tmp_path / "serve.out").read_text()
            tokens = {
                line.split()[0]: line.split()[1]
                for line in text.splitlines()
                if line.startswith("  ") and "auc_" in line
            }
            if all(r in tokens for r in IDENTITIES.values()):
                break
            time.sleep(0.05)
        urllib.request.urlopen(base + "/healthz", timeout=5)
        auth = {
            "auth": [
                {
                    "name": name,
                    "fixedHeaders": [
                        {"name": "Authorization", "value": f"Bearer {tokens[demo_name]}"}
                    ],
                }
                for name, demo_name in IDENTITIES.items()
            ]
        }
        (tmp_path / "auth.json").write_text(json.dumps(auth))
        (tmp_path / "schemathesis.toml").write_text(
            f'[auth.wfc]\npath = "{tmp_path / "auth.json"}"\npeers = {json.dumps(PEERS)}\n'
        )
        done = subprocess.run(
            [
                binary,
                "--config-file",
                str(tmp_path / "schemathesis.toml"),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=tmp_path,
            env=dict(
                os.environ,
                PYTHONPATH=str(ROOT),
                SCHEMATHESIS_HOOKS="tests.integration.st_hooks",
            ),
        )
        assert done.returncode == 0, done.stdout[-6000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        out.close()
