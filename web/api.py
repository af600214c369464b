"""The HTTP API under ``/v1``: decode, authorize, translate.  It never decides.

Every route is declared once with ``endpoint``: method, path, the roles its policy
allows (deny by default: a route without a policy cannot be declared), the body type
(which both validates and documents), the size limit and every status it can answer.
The wrapper does, in order: authenticate (401), authorize the role (403), rate-limit
(429), then for POST: ``Idempotency-Key`` (400), ``Content-Type`` (415), size (413),
decode (400 / 422).  Object-level rules (another principal's bid or lot answers 404;
no self-dealing) are the engine's, which knows every object's owner.
"""

from __future__ import annotations

import dataclasses
import re
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import msgspec
from msgspec import UNSET
from sqlalchemy import text
from starlette.responses import Response

from auction.accounts import Accounts, Principal, TokenCache
from auction.book import BUY, SELL
from auction.clock import Clock
from auction.errors import ClientError
from auction.journal import from_us
from auction.messages import (
    AcceptCounter,
    AcceptOffer,
    AcceptResult,
    AmendBid,
    AnyCommand,
    AuctionBid,
    BuyNow,
    CancelBid,
    CancelLot,
    CounterOffer,
    DeclineResult,
    InviteOffers,
    MakeOffer,
    PlaceBid,
    PublishPrice,
    Rejected,
    RejectOffer,
    SellLot,
    SetBuyingPower,
    StartAuction,
    WithdrawOffer,
)
from auction.money import MAX_WEIGHT_KG, amount_fen
from auction.prices import Board
from auction.pricing import PriceService
from auction.readtables import ON_SALE, Where, bids_for, deals_for, lots_for
from auction.runner import Runner
from auction.types import MarketId, OrderId, OrgId, PrincipalId
from feeds.endpoint import TICKET_TTL_S, Tickets
from feeds.hub import Hub
from web.errors import problem, refusal, validation_problem
from web.http import ApiRequest, MethodHandler, Reply
from web.wire import (
    MARKET_PATTERN,
    AmendBidBody,
    AuctionBidBody,
    BuyingPowerBody,
    CommandAnswer,
    CounterBody,
    Empty,
    Health,
    MarketPrices,
    OfferBody,
    Page,
    PlaceBidBody,
    PostLotBody,
    PublishPriceBody,
    SellQuote,
    WsTicket,
)

ALL_ROLES: Final = frozenset({"store", "recycler", "transporter", "regulator", "admin", "service"})
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
MARKET_RE = re.compile(MARKET_PATTERN)
ID_RE = re.compile(r"^[0-9]{1,15}$")
_encoder = msgspec.json.Encoder()


@dataclass
class RateLimiter:
    """A token bucket per principal."""

    rate: float = 200.0
    burst: float = 400.0
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def retry_after(self, who: str) -> int:
        """0 if allowed now (and counted); otherwise seconds to wait."""
        now = time.monotonic()
        tokens, last = self.buckets.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[who] = (tokens, now)
            return max(1, int((1 - tokens) / self.rate + 0.999))
        self.buckets[who] = (tokens - 1, now)
        return 0


@dataclass
class Context:
    runner: Runner
    accounts: Accounts
    clock: Clock
    limiter: RateLimiter
    prices: PriceService
    tickets: Tickets = field(default_factory=Tickets)
    hub: Hub | None = None
    tokens: TokenCache = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TokenCache(self.accounts, self.clock)

    async def principal(self, request: ApiRequest) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return await self.authenticate(token)

    async def authenticate(self, token: str) -> Principal | None:
        return await self.tokens.authenticate(token)


Handler = Callable[[Context, ApiRequest, Any, Any], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    name: str
    summary: str
    roles: frozenset[str]
    handler: Handler
    body: type | None = None
    limit: int = 8 * 1024
    statuses: tuple[int, ...] = (200,)
    public: bool = False
    answers: type | None = None
    creates: str | None = None  # "lot": answers 201 with the new lot's ``id``
    query: tuple[dict[str, Any], ...] = ()  # OpenAPI query parameters (name, required, schema)


ENDPOINTS: list[Endpoint] = []
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {}


def endpoint(
    method: str,
    path: str,
    summary: str,
    *,
    roles: frozenset[str],
    body: type | None = None,
    statuses: tuple[int, ...] = (200,),
    public: bool = False,
    answers: type | None = None,
    limit: int = 8 * 1024,
    creates: str | None = None,
    query: tuple[dict[str, Any], ...] = (),
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        name = handler.__name__
        if not public and not roles:
            raise AssertionError(f"{name}: every route needs a policy")
        common = (400, 401, 403, 429) if not public else ()
        posts = (409, 413, 415, 422, 503) if method == "POST" else (422,)
        ENDPOINTS.append(
            Endpoint(
                method,
                path,
                name,
                summary,
                roles,
                handler,
                body,
                limit,
                tuple(sorted(set(statuses) | set(common) | (set(posts) if not public else set()))),
                public,
                answers,
                creates,
                query,
            )
        )
        if body is not None:
            _DECODERS[body] = msgspec.json.Decoder(body)
        return handler

    return register


def route_handler(ep: Endpoint) -> MethodHandler:
    async def call(ctx: Context, request: ApiRequest) -> Response:
        who: Principal | None = None
        if not ep.public:
            who = await ctx.principal(request)
            if who is None:
                return problem("unauthorized", "send Authorization: Bearer <token>")
            if who.role not in ep.roles:
                return problem("forbidden_role", f"a {who.role} may not {ep.summary.lower()}")
            wait = ctx.limiter.retry_after(who.id)
            if wait:
                return problem("rate_limited", "slow down", retry_after=wait)
        body: Any = None
        if ep.method == "POST":
            key = request.headers.get("idempotency-key")
            if key is None:
                return problem("idempotency_key_missing", "add an Idempotency-Key header")
            if not KEY_RE.match(key):
                return problem("idempotency_key_invalid", "use 1-255 characters of A-Z a-z 0-9 _ -")
            request.idempotency_key = key
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > ep.limit):
                return problem(
                    "payload_too_large", f"at most {ep.limit} bytes", limit_bytes=ep.limit
                )
            if declared is not None:
                raw = await request.body()  # declared and within the limit (checked above)
                if len(raw) > ep.limit:
                    return problem(
                        "payload_too_large", f"at most {ep.limit} bytes", limit_bytes=ep.limit
                    )
            else:  # chunked: read no more than the limit
                raw = b""
                async for chunk in request.stream():
                    raw += chunk
                    if len(raw) > ep.limit:
                        return problem(
                            "payload_too_large", f"at most {ep.limit} bytes", limit_bytes=ep.limit
                        )
            if ep.body is not None and not (ep.body is Empty and not raw):
                media = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if media != "application/json":
                    return problem("unsupported_media_type", "send Content-Type: application/json")
                try:
                    body = _DECODERS[ep.body].decode(raw)
                except msgspec.ValidationError as err:
                    # a typed decode stops at the first wrong field; broken JSON further on
                    # (NaN, trailing garbage) is still malformed, and says so first
                    try:
                        msgspec.json.decode(raw)
                    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as bad:
                        return problem("malformed_json", f"not one valid JSON document: {bad}")
                    return validation_problem(err)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError) as err:
                    return problem("malformed_json", f"not one valid JSON document: {err}")
        try:
            return await ep.handler(ctx, request, who, body)
        except ClientError as err:
            return refusal(err)

    call.__name__ = ep.name
    return call


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Reply(_encoder.encode(data), status, "application/json", headers)


def known_market(market: str) -> MarketId:
    """A ``{market}`` path parameter, or ``unknown_market``."""
    if not MARKET_RE.match(market):
        raise ClientError("unknown_market", f"{market[:40]!r} is not a known market")
    return MarketId(market)


def path_id(request: ApiRequest, name: str, missing: str) -> OrderId:
    raw = request.path_params.get(name, "")
    if not ID_RE.match(raw):
        raise ClientError(missing, f"no such {name.removesuffix('_id')}")
    return OrderId(int(raw))


async def submit(
    ctx: Context,
    request: ApiRequest,
    who: Principal,
    command: AnyCommand,
    id_field: str | None = None,
) -> Response:
    """Through the runner with the request's idempotency key; ``id_field`` names the id
    of what the command creates (answered as ``id``, with 201)."""
    answer = await ctx.runner.submit(command, principal=who.id, key=request.idempotency_key)
    headers = {"Idempotent-Replay": "true"} if answer.replay else None
    last = answer.events[-1] if answer.events else None
    if isinstance(last, Rejected):
        resp = refusal(last)
        if headers:
            resp.headers.update(headers)
        return resp
    new_id = None
    if id_field is not None:
        new_id = next((getattr(e, id_field) for e in answer.events if hasattr(e, id_field)), None)
    body = CommandAnswer(answer.seq, answer.replay, answer.events, new_id)
    if new_id is not None and id_field in SHOW:
        headers = {**(headers or {}), "Location": SHOW[id_field].format(new_id)}
    return json(body, 201 if id_field else 200, headers)


SHOW = {"lot_id": "/v1/lots/{}"}  # where a new object can be read (201's Location)


def int_param(request: ApiRequest, name: str, default: int | None, low: int, high: int) -> int:
    """A whole-number query parameter: ASCII digits within ``low``-``high``, or
    ``default`` when absent (None: required); else 422 ``invalid_value`` naming it.
    Python's ``int`` alone would also take " 5", "+5", "1_0" and other scripts' digits."""
    raw = request.query_params.get(name)
    if raw is None and default is not None:
        return default
    raw = raw or ""
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else -1
    if not low <= value <= high:
        raise ClientError(
            "invalid_value", f"{name} must be a whole number {low}-{high}", field=name
        )
    return value


def page_params(request: ApiRequest) -> tuple[int, int]:
    return int_param(request, "limit", 50, 1, 200), int_param(request, "offset", 0, 0, 1_000_000)


def where(ctx: Context) -> Where:
    return ctx.runner.journal.reads.where()  # type: ignore[union-attr]


async def page(
    ctx: Context, table: str, newest_first: str, conditions: Where, request: ApiRequest
) -> Response:
    limit, offset = page_params(request)
    reads = ctx.runner.journal.reads  # type: ignore[union-attr]
    items, more = await reads.page(table, newest_first, conditions, limit, offset)
    for item in items:
        if "at_us" in item:
            item["at"] = from_us(item.pop("at_us")).isoformat()
    return json(Page(items, limit, offset, offset + limit if more else None))


def region_of(market: str) -> str:
    return market.partition(":")[2]


# -- public ----------------------------------------------------------------------------


@endpoint(
    "GET", "/healthz", "Health", roles=frozenset(), public=True, statuses=(200, 503), answers=Health
)
async def healthz(ctx: Context, request: ApiRequest, who: Any, body: Any) -> Response:
    db = ctx.runner.journal.engine  # type: ignore[union-attr]
    try:
        async with db.connect() as conn:
            await conn.execute(text("select 1"))
        reachable = True
    except Exception:
        reachable = False
    health = Health(reachable, "reachable" if reachable else "unreachable", ctx.runner._seq)
    return json(health, 200 if reachable else 503)


# -- markets ---------------------------------------------------------------------------


@endpoint(
    "POST",
    "/v1/ws/tickets",
    "Get a websocket ticket",
    roles=ALL_ROLES,
    body=Empty,
    statuses=(201, 503),
    answers=WsTicket,
)
async def ws_ticket(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    """A single-use ticket for ``/v1/ws?ticket=...``, for browsers (which cannot send an
    ``Authorization`` header on a websocket); valid 30 s."""
    ticket = await ctx.tickets.issue(who.id)
    return json(WsTicket(ticket, int(TICKET_TTL_S)), 201)


@endpoint("GET", "/v1/ws/stats", "Feed counters", roles=frozenset({"admin", "service"}))
async def ws_stats(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    hub = ctx.hub
    if hub is None:
        return json({})
    return json({"epoch": hub.epoch, **dataclasses.asdict(hub.stats)})


@endpoint("GET", "/v1/markets", "List markets", roles=ALL_ROLES)
async def list_markets(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    engine = ctx.runner.engine
    out = []
    for market in engine.markets():
        book = engine.book(market)
        assert book is not None
        out.append(
            {
                "market": market,
                "best_bid_fen_per_t": book.best_price(BUY),
                "best_lot_floor_fen_per_t": book.best_price(SELL),
            }
        )
    return json({"markets": out})


@endpoint(
    "GET",
    "/v1/markets/{market}/book",
    "Show a market's book",
    roles=ALL_ROLES,
    statuses=(200, 404),
    query=({"name": "depth", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},),
)
async def market_book(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    market = request.path_params["market"]
    depth = int_param(request, "depth", 10, 1, 100)
    book = ctx.runner.engine.book(MarketId(market))
    if book is None:
        known_market(market)
        return json({"market": market, "bids": [], "lots": []})  # a market nobody trades yet
    levels = {
        side: [{"price_fen_per_t": p, "qty_kg": q, "orders": n} for p, q, n in book.depth(s, depth)]
        for side, s in (("bids", BUY), ("lots", SELL))
    }
    return json({"market": market, **levels})


@endpoint(
    "GET",
    "/v1/markets/{market}/sell-quote",
    "What a one-click sale would fetch now",
    roles=frozenset({"store"}),
    statuses=(200,),
    answers=SellQuote,
    query=(
        {
            "name": "weight_kg",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_WEIGHT_KG},
        },
    ),
)
async def sell_quote(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    """The best standing bid that could take the whole lot now, as the store page shows
    it before a one-click sale (a read: the sale itself may still find the book moved)."""
    market = known_market(request.path_params["market"])
    weight = int_param(request, "weight_kg", None, 1, MAX_WEIGHT_KG)
    price = ctx.runner.engine.sell_quote(market, weight, OrgId(who.org))
    amount = None if price is None else amount_fen(price, weight)
    return json(SellQuote(market, weight, price, amount))


@endpoint("GET", "/v1/catalogue", "Categories, battery models and sale rules", roles=frozenset(),
          public=True)  # fmt: skip
async def catalogue(ctx: Context, request: ApiRequest, who: Any, body: Any) -> Response:
    """The catalogue as data: what a page needs to name categories and estimate a lot's
    weight from its battery model (weight = block kg × blocks, sets × blocks per set)."""
    return json(ctx.runner.engine.catalogue)


# -- standing bids ---------------------------------------------------------------------

RECYCLER = frozenset({"recycler"})
STORE = frozenset({"store"})


def object_action(
    kind: str,
    name: str,
    action: str,
    summary: str,
    roles: frozenset[str],
    make: Callable[[OrderId, Principal, Any], AnyCommand],
    body: type = Empty,
) -> None:
    """``POST /v1/<kind>s/{<kind>_id}/<action>``: one engine command about one bid, lot or
    offer (another principal's answers ``<kind>_not_found``, like a missing one)."""
    field, missing = f"{kind}_id", f"{kind}_not_found"

    async def handler(ctx: Context, request: ApiRequest, who: Principal, payload: Any) -> Response:
        object_id = path_id(request, field, missing)
        return await submit(ctx, request, who, make(object_id, who, payload))

    handler.__name__ = name
    endpoint(
        "POST",
        f"/v1/{kind}s/{{{field}}}/{action}",
        summary,
        roles=roles,
        body=body,
        statuses=(200, 404),
        answers=CommandAnswer,
    )(handler)


def _p(who: Principal) -> PrincipalId:
    return PrincipalId(who.id)


@endpoint(
    "POST",
    "/v1/bids",
    "Place a standing bid",
    roles=RECYCLER,
    body=PlaceBidBody,
    statuses=(201,),
    answers=CommandAnswer,
    creates="bid",
)
async def place_bid(
    ctx: Context, request: ApiRequest, who: Principal, body: PlaceBidBody
) -> Response:
    command = PlaceBid(
        bid_id=OrderId(0),
        market=MarketId(body.market),
        owner=PrincipalId(who.id),
        org=OrgId(who.org),
        price_fen_per_t=body.price_fen_per_t,
        qty_kg=body.qty_kg,
        min_lot_kg=body.min_lot_kg,
        expires_at=body.expires_at,
        join_auctions=body.join_auctions,
    )
    return await submit(ctx, request, who, command, "bid_id")


@endpoint("GET", "/v1/bids", "List my standing bids", roles=RECYCLER, answers=Page)
async def my_bids(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    conditions = bids_for(where(ctx), who, request.query_params)
    return await page(ctx, "bids", "bid_id", conditions, request)


object_action(
    "bid",
    "amend_bid",
    "amend",
    "Amend a standing bid",
    RECYCLER,
    lambda i, w, b: AmendBid(
        bid_id=i,
        owner=_p(w),
        price_fen_per_t=None if b.price_fen_per_t is UNSET else b.price_fen_per_t,
        qty_kg=None if b.qty_kg is UNSET else b.qty_kg,
    ),
    AmendBidBody,
)
object_action(
    "bid",
    "cancel_bid",
    "cancel",
    "Cancel a standing bid",
    RECYCLER,
    lambda i, w, b: CancelBid(bid_id=i, owner=_p(w)),
)


# -- lots --------------------------------------------------------------------------------


@endpoint(
    "POST",
    "/v1/lots",
    "Post a lot for sale",
    roles=STORE,
    body=PostLotBody,
    statuses=(201, 404),  # 404: relist_of names no lot of yours
    answers=CommandAnswer,
    creates="lot",
)
async def post_lot(
    ctx: Context, request: ApiRequest, who: Principal, body: PostLotBody
) -> Response:
    base: dict[str, Any] = {
        "lot_id": OrderId(0),
        "market": MarketId(body.market),
        "owner": PrincipalId(who.id),
        "org": OrgId(who.org),
        "weight_kg": body.weight_kg,
    }
    relist = OrderId(body.relist_of) if body.relist_of else None
    command: AnyCommand
    if body.mode == "one_click":
        command = SellLot(
            **base,
            floor_price_fen_per_t=body.floor_price_fen_per_t,
            allow_partial=body.allow_partial,
            if_unsold=body.if_unsold,
            expires_at=body.expires_at,
            relist_of=relist,
        )
    elif body.mode == "auction":
        if body.start_price_fen_per_t is None or body.duration_s is None:
            raise ClientError(
                "invalid_value",
                "an auction needs start_price_fen_per_t and duration_s",
                field="start_price_fen_per_t",
            )
        command = StartAuction(
            **base,
            start_price_fen_per_t=body.start_price_fen_per_t,
            duration_s=body.duration_s,
            reserve_fen_per_t=body.reserve_fen_per_t,
            buy_now_fen_per_t=body.buy_now_fen_per_t,
            relist_of=relist,
        )
    else:
        command = InviteOffers(**base, expires_at=body.expires_at, relist_of=relist)
    return await submit(ctx, request, who, command, "lot_id")


def lot_visible(lot: dict[str, Any], who: Principal) -> bool:
    if lot["owner"] == who.id or who.role == "admin":
        return True
    if who.role == "regulator":
        return who.sees_region(region_of(lot["market"]))
    return who.role == "recycler" and lot["state"] in ON_SALE


@endpoint("GET", "/v1/lots", "List lots", roles=ALL_ROLES, answers=Page)
async def list_lots(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    conditions = lots_for(where(ctx), who, request.query_params)
    return await page(ctx, "lots", "lot_id", conditions, request)


@endpoint("GET", "/v1/lots/{lot_id}", "Show a lot", roles=ALL_ROLES, statuses=(200, 404))
async def get_lot(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    lot_id = path_id(request, "lot_id", "lot_not_found")
    lot = ctx.runner.engine.lot(lot_id)
    if lot is None:
        raise ClientError("lot_not_found", "no such lot")
    view = msgspec.to_builtins(lot)
    if not lot_visible(view, who):
        raise ClientError("lot_not_found", "no such lot")
    view.pop("open_offers", None)
    if lot.owner == who.id and lot.kind == "offers":  # the store answers them; bidders unnamed
        view["offers"] = [
            {
                "offer_id": o.offer_id,
                "price_fen_per_t": o.price,
                "status": o.status,
                "counter_price_fen_per_t": o.counter,
                "expires_at": o.expires_at.isoformat(),
            }
            for o in ctx.runner.engine.open_offers(lot_id)
        ]
    auction = ctx.runner.engine._auctions.get(lot_id)
    if auction is not None:
        view["auction"] = {
            "start_price_fen_per_t": auction.start_price,
            "visible_price_fen_per_t": auction.visible_price(),
            "min_next_bid_fen_per_t": auction.min_next_bid(),
            "closes_at": auction.closes_at.isoformat(),
            "bids": auction.bids,
            "has_reserve": auction.reserve is not None,
            "reserve_met": auction.reserve_met(),
            "buy_now_fen_per_t": auction.buy_now if auction.buy_now_open() else None,
            "leading": auction.leader is not None and auction.leader.bidder == who.id,
        }
    return json(view)


object_action(
    "lot",
    "cancel_lot",
    "cancel",
    "Cancel my lot",
    STORE,
    lambda i, w, b: CancelLot(lot_id=i, owner=_p(w)),
)
object_action(
    "lot",
    "auction_bid",
    "bids",
    "Bid in a lot's auction",
    RECYCLER,
    lambda i, w, b: AuctionBid(
        lot_id=i, bidder=_p(w), org=OrgId(w.org), max_price_fen_per_t=b.max_price_fen_per_t
    ),
    AuctionBidBody,
)
object_action(
    "lot",
    "buy_now",
    "buy-now",
    "Buy a lot now",
    RECYCLER,
    lambda i, w, b: BuyNow(lot_id=i, bidder=_p(w), org=OrgId(w.org)),
)
object_action(
    "lot",
    "accept_result",
    "accept-result",
    "Accept a below-reserve result",
    STORE,
    lambda i, w, b: AcceptResult(lot_id=i, owner=_p(w)),
)
object_action(
    "lot",
    "decline_result",
    "decline-result",
    "Decline a below-reserve result",
    STORE,
    lambda i, w, b: DeclineResult(lot_id=i, owner=_p(w)),
)


@endpoint(
    "POST",
    "/v1/lots/{lot_id}/offers",
    "Make an offer on a lot",
    roles=RECYCLER,
    body=OfferBody,
    statuses=(201, 404),
    answers=CommandAnswer,
    creates="offer",
)
async def make_offer(
    ctx: Context, request: ApiRequest, who: Principal, body: OfferBody
) -> Response:
    lot_id = path_id(request, "lot_id", "lot_not_found")
    command = MakeOffer(
        offer_id=OrderId(0),
        lot_id=lot_id,
        bidder=_p(who),
        org=OrgId(who.org),
        price_fen_per_t=body.price_fen_per_t,
        expires_at=body.expires_at,
    )
    return await submit(ctx, request, who, command, "offer_id")


object_action(
    "offer",
    "offer_counter",
    "counter",
    "Counter an offer",
    STORE,
    lambda i, w, b: CounterOffer(offer_id=i, owner=_p(w), price_fen_per_t=b.price_fen_per_t),
    CounterBody,
)
object_action(
    "offer",
    "offer_accept",
    "accept",
    "Accept an offer",
    STORE,
    lambda i, w, b: AcceptOffer(offer_id=i, owner=_p(w)),
)
object_action(
    "offer",
    "offer_reject",
    "reject",
    "Reject an offer",
    STORE,
    lambda i, w, b: RejectOffer(offer_id=i, owner=_p(w)),
)
object_action(
    "offer",
    "offer_accept_counter",
    "accept-counter",
    "Accept a counter-offer",
    RECYCLER,
    lambda i, w, b: AcceptCounter(offer_id=i, bidder=_p(w)),
)
object_action(
    "offer",
    "offer_withdraw",
    "withdraw",
    "Withdraw my offer",
    RECYCLER,
    lambda i, w, b: WithdrawOffer(offer_id=i, bidder=_p(w)),
)


# -- trades, awards, buying power ---------------------------------------------------------

READERS = frozenset({"store", "recycler", "regulator", "admin"})


@endpoint(
    "GET", "/v1/trades", "List trades (mine; a regulator's regions)", roles=READERS, answers=Page
)
async def list_trades(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    return await page(ctx, "trades", "trade_id", deals_for(where(ctx), who), request)


@endpoint(
    "GET", "/v1/awards", "List awards (mine; a regulator's regions)", roles=READERS, answers=Page
)
async def list_awards(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    return await page(ctx, "awards", "lot_id", deals_for(where(ctx), who), request)


@endpoint("GET", "/v1/buying-power", "Show my buying power", roles=RECYCLER)
async def my_buying_power(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    limit, reserved, available = ctx.runner.engine.buying_power(PrincipalId(who.id))
    return json({"limit_fen": limit, "reserved_fen": reserved, "available_fen": available})


# -- prices ----------------------------------------------------------------------------

PUBLISHERS = frozenset({"service", "admin", "recycler"})


@endpoint(
    "POST",
    "/v1/prices",
    "Publish a price",
    roles=PUBLISHERS,
    body=PublishPriceBody,
    statuses=(200, 403),
    answers=CommandAnswer,
)
async def publish_price(
    ctx: Context, request: ApiRequest, who: Principal, body: PublishPriceBody
) -> Response:
    if who.role == "recycler" and body.kind != "upstream":
        return problem("forbidden_role", "a recycler publishes its own upstream quotes only")
    command = PublishPrice(
        kind=body.kind,
        key=body.key,
        publisher=PrincipalId(who.id),
        price_fen_per_t=body.price_fen_per_t,
        vat_included=body.vat_included,
    )
    return await submit(ctx, request, who, command)


@endpoint("GET", "/v1/prices", "Every market's prices and statistics today", roles=ALL_ROLES,
          answers=Board)  # fmt: skip
async def all_prices(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    return json(await ctx.prices.board())


@endpoint("GET", "/v1/markets/{market}/prices", "A market's prices and statistics today",
          roles=ALL_ROLES, statuses=(200, 404), answers=MarketPrices)  # fmt: skip
async def market_prices(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    market = known_market(request.path_params["market"])
    view = await ctx.prices.board()
    category = market.partition(":")[0]
    return json(
        MarketPrices(
            market=market,
            day=view.day,
            stale=view.stale,
            stats=next((m for m in view.markets if m.market == market), None),
            quotes=[q for q in view.quotes if q.key in (market, category, "lead")],
            settlement=view.settlements.get(market),
            index=next((i for i in view.indices if i.category == category), None),
        )
    )


DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DAY = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}


@endpoint(
    "GET",
    "/v1/prices/history",
    "A market's daily statistics and prices over days",
    roles=ALL_ROLES,
    query=(
        {
            "name": "market",
            "required": True,
            "schema": {"type": "string", "pattern": MARKET_PATTERN},
        },
        {"name": "from", "required": True, "schema": DAY},
        {"name": "to", "schema": DAY},
    ),
)
async def price_history(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    q = request.query_params
    market = q.get("market", "")
    if not MARKET_RE.match(market):
        return problem(
            "invalid_query", "market=<category>:<region code> is required", field="market"
        )
    raw_first, raw_last = q.get("from", ""), q.get("to", q.get("from", ""))
    try:
        if not (DAY_RE.match(raw_first) and DAY_RE.match(raw_last)):
            raise ValueError("not YYYY-MM-DD")
        first, last = date.fromisoformat(raw_first), date.fromisoformat(raw_last)
    except ValueError as err:
        return problem("invalid_query", f"from and to are days, YYYY-MM-DD: {err}", field="from")
    return json(await ctx.prices.history(market, first, last))  # from after to: no days


@endpoint(
    "POST",
    "/v1/admin/buying-power",
    "Set a recycler's buying power",
    roles=frozenset({"admin"}),
    body=BuyingPowerBody,
    answers=CommandAnswer,
)
async def set_buying_power(
    ctx: Context, request: ApiRequest, who: Principal, body: BuyingPowerBody
) -> Response:
    command = SetBuyingPower(bidder=PrincipalId(body.bidder), limit_fen=body.limit_fen)
    return await submit(ctx, request, who, command)


@endpoint(
    "GET",
    "/v1/admin/state",
    "The engine's position, size and state hash",
    roles=frozenset({"admin"}),
    query=({"name": "hash", "schema": {"type": "boolean"}},),
)
async def engine_state(ctx: Context, request: ApiRequest, who: Principal, body: Any) -> Response:
    """``seq`` (the last command applied) and ``state_hash``, read together: a replay of
    the journal up to ``seq`` must give the same hash (the soak's end check).  The hash
    reads the whole state; ``?hash=false`` leaves it out (sizes only, cheap)."""
    engine = ctx.runner.engine
    view: dict[str, Any] = {"seq": ctx.runner._seq, **engine.sizes()}
    with_hash = request.query_params.get("hash", "true")
    if with_hash not in ("true", "false"):
        raise ClientError("invalid_value", "hash must be true or false", field="hash")
    if with_hash == "true":
        view["state_hash"] = engine.state_hash()
    if tracemalloc.is_tracing():  # PYTHONTRACEMALLOC=1: where the memory is, by line
        stats = tracemalloc.take_snapshot().statistics("lineno")[:40]
        view["memory"] = {str(s.traceback[0]): s.size for s in stats}
    return json(view)
