"""schemathesis against ``/openapi.json`` of the real service (``auction serve --demo``),
once for each role with a token of its own: no 500, statuses and content types as
documented, bodies matching the documented schemas.

Not yet here (see the closing note of issue 5): the ``positive_data_acceptance``,
``ignored_auth`` and stateful object-level authorization checks, which need the schema
to say more about state-dependent refusals and two recyclers' tokens with links.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.crash import free_port

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
ROLES = ["recycler-tianneng", "store-changxing", "regulator-huzhou", "admin"]


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
            if all(r in tokens for r in ROLES):
                break
            time.sleep(0.05)
        urllib.request.urlopen(base + "/healthz", timeout=5)
        for role in ROLES:
            done = subprocess.run(
                [
                    binary,
                    "run",
                    f"{base}/openapi.json",
                    "--checks",
                    CHECKS,
                    "-H",
                    f"Authorization: Bearer {tokens[role]}",
                    "--max-examples",
                    "25",
                    "--seed",
                    "1",
                    "--no-color",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"{role}:\n{done.stdout[-4000:]}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        out.close()
