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
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import uvicorn

from auction.accounts import Accounts
from auction.catalogue import default_catalogue
from auction.clock import LiveClock
from auction.db import make_engine
from auction.demo import run_demo
from auction.errors import AuctionError
from auction.flow import FlowError, format_flow, generate_flow, parse_flow, read_flow, replay
from auction.journal import AuditProblem, Journal
from auction.migrate import upgrade
from auction.pricing import HISTORY_COLUMNS, HistoryError, import_history, parse_history
from auction.service import run_engine
from auction.settings import Settings
from feeds.endpoint import Limits
from feeds.sources import engine_publisher, simulate
from web.api import Context
from web.app import create_app, create_feeds_app
from web.demo import seed


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


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(database_url=getattr(args, "database_url", None))


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    async def go() -> None:
        db = make_engine(_settings(args).database_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(go())
    print("database at the latest revision")
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    async def go() -> AuditProblem | None:
        db = make_engine(_settings(args).database_url)
        try:
            return await Journal(db).verify_audit()
        finally:
            await db.dispose()

    problem = asyncio.run(go())
    if problem is None:
        print("audit chain verified")
        return 0
    print(f"audit chain broken at row {problem.seq}: {problem.reason}")
    return 1


def _cmd_engine(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    try:
        asyncio.run(run_engine(_settings(args), host or "127.0.0.1", int(port)))
    except AuctionError as err:
        print(f"auction engine: {err}", file=sys.stderr)
        return 2
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    base = f"http://{args.host}:{args.port}"
    tokens: dict[str, str] = {}

    background: list[asyncio.Task[None]] = []

    async def ready(ctx: Context) -> None:
        if args.demo:
            tokens.update(await seed(ctx))
            publish = engine_publisher(ctx.runner.submit, "end_of_chain", "prices-platform")
            background.append(asyncio.create_task(simulate(publish, every_s=5.0)))

    def banner() -> None:
        print(f"auction service on {base}  (health: {base}/healthz, API: {base}/openapi.json)")
        if tokens:
            print("demo market seeded around Huzhou; tokens (valid 30 days):")
            for who, token in tokens.items():
                print(f"  {who:20s} {token}")
            first = tokens["recycler-tianneng"]
            print(f"try: curl -H 'Authorization: Bearer {first}' {base}/v1/markets")
        sys.stdout.flush()

    return _run_uvicorn(create_app(_settings(args), on_ready=ready), args, banner)


def _cmd_feeds(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.redis_url:
        print(
            "auction feeds: set AUCTION_REDIS_URL (the feed comes through Redis)", file=sys.stderr
        )
        return 2
    base = f"ws://{args.host}:{args.port}/v1/ws"

    def banner() -> None:
        print(f"auction feeds on {base}  (health: http://{args.host}:{args.port}/healthz)")
        sys.stdout.flush()

    return _run_uvicorn(create_feeds_app(settings), args, banner)


def _run_uvicorn(app: Any, args: argparse.Namespace, banner: Callable[[], None]) -> int:
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",  # the hub writes feed frames to its transports directly
        ws_max_size=Limits().max_message_bytes,
        ws_per_message_deflate=False,  # 2x the memory per connection; frames are small
        ws_ping_interval=None,  # the feed sends its own heartbeats
        access_log=False,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            banner()  # once the socket listens, so every URL in it answers when read
        await serving

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(main())
    return 0 if server.started else 1


def _cmd_accounts(args: argparse.Namespace) -> int:
    async def go() -> str:
        db = make_engine(_settings(args).database_url)
        try:
            await upgrade(db)
            accounts = Accounts(db)
            now = LiveClock().now()
            if args.accounts_command == "create":
                regions = tuple(r for r in (args.regions or "").split(",") if r)
                await accounts.create_principal(args.id, args.org, args.role, now, regions=regions)
                return f"created {args.role} {args.id} of {args.org}"
            if args.accounts_command == "token":
                expires = now + timedelta(days=args.days) if args.days else None
                return await accounts.issue_token(args.id, now, expires)
            return f"revoked {await accounts.revoke(args.id, now)} token(s) of {args.id}"
        finally:
            await db.dispose()

    try:
        print(asyncio.run(go()))
    except AuctionError as err:
        print(f"auction accounts: {err}", file=sys.stderr)
        return 2
    return 0


def _cmd_quotes_import(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
        rows = parse_history(text, default_catalogue())
    except (OSError, UnicodeDecodeError, HistoryError) as err:
        print(f"auction quotes import: {err}", file=sys.stderr)
        return 2

    async def go() -> int:
        db = make_engine(_settings(args).database_url)
        try:
            await upgrade(db)
            return await import_history(db, rows)
        finally:
            await db.dispose()

    print(f"imported {asyncio.run(go())} prices from {args.file}")
    return 0


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

    db_url = "journal database URL (env AUCTION_DATABASE_URL)"
    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    q = dbsub.add_parser("upgrade", help="apply the migrations")
    q.add_argument("--database-url", help=db_url)
    q.set_defaults(func=_cmd_db_upgrade)

    p = sub.add_parser("audit", help="the hash-chained audit log")
    asub = p.add_subparsers(dest="audit_command", required=True)
    q = asub.add_parser("verify", help="check the chain; names the first broken row")
    q.add_argument("--database-url", help=db_url)
    q.set_defaults(func=_cmd_audit_verify)

    p = sub.add_parser("serve", help="the HTTP service (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--demo", action="store_true", help="seed a demo market and print tokens")
    p.add_argument("--database-url", help=db_url)
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("feeds", help="a web process serving /v1/ws from Redis (scale-out)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--database-url", help=db_url)
    p.add_argument("--log-level", default="warning")
    p.set_defaults(func=_cmd_feeds)

    p = sub.add_parser("quotes", help="published prices")
    qsub = p.add_subparsers(dest="quotes_command", required=True)
    q = qsub.add_parser(
        "import", help="price history from a CSV: " + ",".join(HISTORY_COLUMNS) + " (a header)"
    )
    q.add_argument("file", metavar="FILE.csv")
    q.add_argument("--database-url", help=db_url)
    q.set_defaults(func=_cmd_quotes_import)

    p = sub.add_parser("accounts", help="principals and their tokens")
    acc = p.add_subparsers(dest="accounts_command", required=True)
    q = acc.add_parser("create", help="create a principal")
    q.add_argument("--id", required=True)
    q.add_argument("--org", required=True)
    q.add_argument("--role", required=True)
    q.add_argument("--regions", help="comma-separated region prefixes (regulators)")
    q.add_argument("--database-url", help=db_url)
    q.set_defaults(func=_cmd_accounts)
    q = acc.add_parser("token", help="issue a bearer token (printed once; only its hash is kept)")
    q.add_argument("--id", required=True)
    q.add_argument("--days", type=int, default=0, help="expire after this many days (0: never)")
    q.add_argument("--database-url", help=db_url)
    q.set_defaults(func=_cmd_accounts)
    q = acc.add_parser("revoke", help="revoke every token of a principal")
    q.add_argument("--id", required=True)
    q.add_argument("--database-url", help=db_url)
    q.set_defaults(func=_cmd_accounts)

    p = sub.add_parser("engine", help="the engine with its journal and command port")
    p.add_argument("--listen", default="127.0.0.1:7700", help="HOST:PORT of the command port")
    p.add_argument("--database-url", help=db_url)
    p.set_defaults(func=_cmd_engine)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
