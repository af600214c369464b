"""The ``auction`` command line (also ``python -m auction``).

Subcommands:

* ``auction replay FLOW``: the matching core on a plain order flow; prints one JSON
  object (see ``auction.flow`` and DESIGN.md).  ``FLOW`` may be ``-`` for stdin or
  ``sample`` for the flow that ships with the package.
* ``auction gen-flow N [--seed S]``: writes a mixed flow of N lines to stdout.
* ``auction demo``: a short session on one market through the engine, then the sample
  replay: what the engine does, before the service exists.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources

import msgspec

from auction.demo import run_demo
from auction.flow import FlowError, format_flow, generate_flow, parse_flow, read_flow, replay


def _sample_flow_text() -> str:
    return resources.files("auction").joinpath("data/sample_flow.csv").read_text("utf-8")


def _cmd_replay(args: argparse.Namespace) -> int:
    try:
        if args.flow == "-":
            commands = parse_flow(sys.stdin)
        elif args.flow == "sample":
            commands = parse_flow(_sample_flow_text().splitlines())
        else:
            commands = read_flow(args.flow)
    except FlowError as err:
        print(f"auction replay: {args.flow}: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"auction replay: cannot read {args.flow}: {err.strerror}", file=sys.stderr)
        return 2
    sys.stdout.write(msgspec.json.encode(replay(commands)).decode() + "\n")
    return 0


def _cmd_gen_flow(args: argparse.Namespace) -> int:
    if args.n < 0:
        print("auction gen-flow: N must not be negative", file=sys.stderr)
        return 2
    sys.stdout.writelines(format_flow(generate_flow(args.n, args.seed)))
    return 0


def _cmd_demo(_: argparse.Namespace) -> int:
    run_demo(datetime(2026, 11, 27, 1, 0, tzinfo=UTC), step=timedelta(seconds=1))
    print("\nThe sample flow through the matching core (auction replay sample):")
    return _cmd_replay(argparse.Namespace(flow="sample"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auction", description="Auction and bidding engine for waste lead-acid batteries."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="replay an order flow through the matching core")
    p.add_argument(
        "flow", metavar="FLOW", help="flow file, '-' for stdin, 'sample' for the shipped one"
    )
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("gen-flow", help="write a generated mixed order flow to stdout")
    p.add_argument("n", type=int, metavar="N", help="number of lines")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_cmd_gen_flow)

    p = sub.add_parser("demo", help="a short market session through the engine, then a replay")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
