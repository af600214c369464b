"""``auction replay`` as DESIGN.md specifies it, on hand-written flows and through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from auction.flow import FlowError, parse_flow, replay
from tests.reference import reference_replay

KEYS = [
    "events",
    "trades",
    "volume",
    "notional",
    "rejected",
    "resting_bid_qty",
    "resting_ask_qty",
    "tape_sha256",
    "seconds",
    "events_per_s",
]

EDGE_CASES = {
    "duplicate ids, even of filled or rejected orders": """
        L,1,B,100,5
        L,1,S,100,5
        L,2,S,100,5
        L,2,B,100,5
        M,2,B,1
    """,
    "cancels of filled, unknown, market and already-cancelled orders": """
        L,1,B,100,5
        L,2,S,99,5
        C,1
        C,2
        C,77
        M,3,S,4
        C,3
        L,4,B,100,5
        C,4
        C,4
    """,
    "market orders on an empty side, then partially filled": """
        M,1,B,10
        M,2,S,10
        L,3,S,100,4
        M,4,B,10
        L,5,B,90,3
        L,6,B,91,3
        M,7,S,4
    """,
    "partial fills on both sides, several levels, at the resting price": """
        # comments and blank lines are ignored

        L,1,S,101,3
        L,2,S,100,2
        L,3,S,100,4
        L,4,B,102,7
        L,5,B,99,10
        L,6,S,98,12
        C,5
    """,
    "a cancel between fills keeps time priority of the rest": """
        L,1,B,100,1
        L,2,B,100,2
        L,3,B,100,3
        C,2
        L,4,S,100,4
        L,5,B,100,1
        L,6,S,90,1
    """,
}


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.strip().splitlines()]


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_match_the_reference(name: str) -> None:
    flow = lines(EDGE_CASES[name])
    got = replay(parse_flow(flow))
    want = reference_replay(flow)
    assert {k: getattr(got, k) for k in want} == want


def test_hand_checked_numbers() -> None:
    flow = lines(EDGE_CASES["partial fills on both sides, several levels, at the resting price"])
    got = replay(parse_flow(flow))
    # order 4 buys 2@100 (2), 4@100 (3), 1@101 (1); rests 0; order 6 sells 10@99 (5), rest 2
    assert (got.trades, got.volume, got.notional) == (4, 17, 2 * 100 + 4 * 100 + 1 * 101 + 10 * 99)
    assert got.rejected == 1  # C,5: order 5 was filled
    assert (got.resting_bid_qty, got.resting_ask_qty) == (0, 2 + 2)


def test_empty_flow() -> None:
    got = replay(parse_flow(["# nothing"]))
    assert got.events == 0 and got.trades == 0
    assert got.tape_sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    "line",
    [
        "L,1,B,100",
        "L,1,X,100,5",
        "L,0,B,100,5",
        "L,1,B,-1,5",
        "L,1,B,1.5,5",
        "M,1,B,0",
        "C",
        "C,abc",
        "Q,1",
        "L,1,B,100,5,7",
        "L,1,B,１,5",
    ],
)
def test_malformed_lines_are_errors_with_a_line_number(line: str) -> None:
    with pytest.raises(FlowError) as info:
        parse_flow(["L,9,B,100,5", line])
    assert info.value.line_no == 2


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auction", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_prints_one_json_object_with_the_documented_keys(tmp_path: Path) -> None:
    flow = lines(EDGE_CASES["market orders on an empty side, then partially filled"])
    path = tmp_path / "flow.csv"
    path.write_text("\n".join(flow) + "\n")
    done = run_cli("replay", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    out = json.loads(done.stdout)
    assert list(out) == KEYS
    want = reference_replay(flow)
    assert {k: out[k] for k in want} == want
    assert isinstance(out["seconds"], float) and isinstance(out["events_per_s"], float)


def test_cli_reads_stdin_and_the_sample() -> None:
    done = run_cli("replay", "-", stdin="L,1,B,100,5\nL,2,S,100,3\n")
    assert json.loads(done.stdout)["volume"] == 3
    done = run_cli("replay", "sample")
    assert done.returncode == 0
    assert json.loads(done.stdout)["events"] == 5000


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    done = run_cli("replay", str(tmp_path / "missing.csv"))
    assert done.returncode == 2 and "cannot read" in done.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("L,1,B,100,5\nL,2,B,oops,5\n")
    done = run_cli("replay", str(bad))
    assert done.returncode == 2 and "line 2" in done.stderr and done.stdout == ""
