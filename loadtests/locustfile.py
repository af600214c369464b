"""The trade's parties as locust users (../shared/DOMAIN.md), for ``loadtests/run.py``.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000   (LOAD_ACCOUNTS=...)

Sizing.  The platform moved about 360 k battery sets a day across 36 k stores: at 5-50
sets a lot (100 kg - 1.5 t) that is about 20 k lots a day, 0.25 lots/s averaged over a day,
a few per second in a busy hour.  Recyclers keep standing bids fresh as the daily quote
moves and bid in auctions; quote boards sit in shops and recyclers' yards; regulators read.
``run.py`` sets the number of users and their pace (``LOAD_PACE``: 1 is the steady rate
of the soak, larger numbers shorten the think times for the peak runs).

Mix per user type (weights below), each with its own think time:

- ``Store``: posts a lot sized from the battery model table: 85% one click (after asking
  what it would fetch, as the store page does), 10% auction, 5% offers; reads its lots.
- ``Recycler``: keeps two standing bids per market it buys in, re-pricing them around the
  daily quote (amend), topping up what sales took (place), now and then cancelling one;
  bids in auctions with a proxy maximum, and late (in the last 30 s) some of the time.
- ``Board``: a quote-board display: a websocket on ``board`` and the markets' ``trades:``
  channels.  Each trade's publish-to-screen latency (from the engine's time of the trade
  to the frame's arrival) is reported into locust's statistics as ``WS trade->screen``.
- ``Regulator``: lists lots, trades and awards in its region.

Business refusals that a real party meets (no buyer now, a bid already taken, a lot
already closed, below the increment, buying power) count as successes in locust and are
tallied by code in ``LOAD_REFUSALS`` (a JSON file written at the end); anything else is
a failure.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from locust import FastHttpUser, User, between, events, task
from websockets.sync.client import connect

ACCOUNTS: dict[str, Any] = json.loads(open(os.environ["LOAD_ACCOUNTS"]).read())  # noqa: SIM115
PACE = float(os.environ.get("LOAD_PACE", "1"))
EXPECTED = {
    "no_buyer", "bid_not_found", "lot_not_open", "below_increment", "insufficient_buying_power",
    "lot_has_bids", "offer_open", "illegal_transition", "lot_not_found", "price_out_of_band",
}  # fmt: skip
REFUSALS: dict[str, int] = {}
_lock = threading.Lock()
MODELS = [(m["model"], m["block_kg_x10"]) for m in ACCOUNTS["catalogue"]["battery_models"]
          if m["category"] == "ebike"]  # fmt: skip
BLOCKS_PER_SET = ACCOUNTS["catalogue"]["blocks_per_set"]


def think(low: float, high: float) -> Any:
    return between(low / PACE, high / PACE)


class Party(FastHttpUser):
    abstract = True
    role = ""

    def on_start(self) -> None:
        people = ACCOUNTS[self.role]
        self.me = people[random.randrange(len(people))]
        self.auth = {"Authorization": f"Bearer {self.me['token']}"}
        self.keys = 0
        self.refusal: dict[str, Any] = {}  # the last business refusal's body

    def send(self, method: str, path: str, name: str, body: Any = None) -> Any:
        """One request; expected business refusals are successes, tallied by code."""
        headers = dict(self.auth)
        if method == "POST":
            self.keys += 1
            headers["Idempotency-Key"] = f"{self.me['id']}-{time.time_ns()}-{self.keys}"
            headers["Content-Type"] = "application/json"
        with self.client.request(
            method, path, name=name, headers=headers,
            data=json.dumps(body) if body is not None else None, catch_response=True,
        ) as resp:  # fmt: skip
            if resp.status_code < 400:
                resp.success()
                return resp.json()
            try:
                self.refusal = resp.json()
                code = self.refusal.get("code", "")
            except Exception:
                code = ""
            if code in EXPECTED:
                with _lock:
                    REFUSALS[code] = REFUSALS.get(code, 0) + 1
                resp.success()
            else:
                resp.failure(f"{resp.status_code} {code or resp.text[:80]}")
            return None


def daily(market: str) -> int:
    price: int = ACCOUNTS["daily"][market]
    return price


class Store(Party):
    """A shop: sells what it took in on trade-in."""

    role = "stores"
    weight = 6
    wait_time = think(2.0, 8.0)

    def lot_kg(self) -> int:
        _, block_x10 = random.choice(MODELS)
        sets = random.randint(5, 50)
        voltage = random.choices(["48V", "60V", "72V"], [6, 3, 1])[0]
        kg: int = (block_x10 * sets * BLOCKS_PER_SET[voltage] + 5) // 10
        return max(1, kg)

    @task(17)
    def one_click(self) -> None:
        market = random.choice(self.me["markets"])
        kg = self.lot_kg()
        self.send("GET", f"/v1/markets/{market}/sell-quote?weight_kg={kg}", "sell-quote")
        self.send("POST", "/v1/lots", "POST lot one_click",
                  {"mode": "one_click", "market": market, "weight_kg": kg})  # fmt: skip

    @task(2)
    def auction(self) -> None:
        market = random.choice(self.me["markets"])
        start = daily(market) - random.choice([10_000, 20_000, 30_000])
        self.send("POST", "/v1/lots", "POST lot auction", {
            "mode": "auction", "market": market, "weight_kg": self.lot_kg(),
            "start_price_fen_per_t": start, "duration_s": random.choice([60, 90, 120]),
        })  # fmt: skip

    @task(1)
    def offers(self) -> None:
        market = random.choice(self.me["markets"])
        until = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        self.send("POST", "/v1/lots", "POST lot offers",
                  {"mode": "offers", "market": market, "weight_kg": self.lot_kg(),
                   "expires_at": until})  # fmt: skip

    @task(2)
    def my_lots(self) -> None:
        self.send("GET", "/v1/lots?limit=20", "GET my lots")


class Recycler(Party):
    """A licensed recycler's trading desk."""

    role = "recyclers"
    weight = 3
    wait_time = think(0.5, 2.0)

    def on_start(self) -> None:
        super().on_start()
        self.bids: dict[str, dict[int, int]] = {m: {} for m in self.me["markets"]}  # id: price
        self.rooms: dict[str, tuple[float, list[tuple[int, float]]]] = {}
        self.values: dict[int, int] = {}  # lot: what this desk will pay for it, fen/t
        self.room: dict[int, tuple[int, float]] = {}  # lot: (minimum next bid, when seen)
        self.maximum: dict[int, int] = {}  # lot: the proxy maximum it holds there

    def price(self, market: str, now: int | None = None) -> int:
        """Around the daily quote, and never the price it has now (an amendment must
        change something)."""
        while True:
            price = daily(market) + random.randint(-20, 20) * 500
            if price != now:
                return price

    @task(6)
    def keep_bids_fresh(self) -> None:
        market = random.choice(self.me["markets"])
        mine = self.bids[market]
        if len(mine) < 2:
            price = self.price(market)
            answer = self.send("POST", "/v1/bids", "POST bid", {
                "market": market, "price_fen_per_t": price,
                "qty_kg": random.choice([5_000, 10_000, 20_000]), "min_lot_kg": 100,
                "join_auctions": random.random() < 0.3,
            })  # fmt: skip
            if answer and answer.get("id"):
                mine[answer["id"]] = price
            return
        bid = random.choice(list(mine))
        if random.random() < 0.1:
            del mine[bid]
            self.send("POST", f"/v1/bids/{bid}/cancel", "POST bid cancel", {})
            return
        price = self.price(market, mine[bid])
        body: dict[str, int] = {"price_fen_per_t": price}
        if random.random() < 0.3:
            body["qty_kg"] = random.choice([5_000, 10_000, 20_000])  # top up what sold
        if self.send("POST", f"/v1/bids/{bid}/amend", "POST bid amend", body) is None:
            del mine[bid]  # taken by sales (or refused): place a new one next time
        else:
            mine[bid] = price

    @task(2)
    def bid_in_auctions(self) -> None:
        """A proxy maximum on a lot in auction.  The list of lots is read every 15 s or so
        (a trading page gets the rooms live over the websocket, not by polling).  Each
        desk values each lot on its own, around the daily quote, and near the close
        (30% of the time here) stretches that a little: a late bid.  Like a trader
        watching the room, it looks at the room's minimum next bid (``GET /v1/lots/{id}``,
        at most every 10 s a lot; a page has it live over the websocket) and bids only
        where it will pay that and does not hold that maximum already.  A bid still
        refused (the room moved on meanwhile, the lot closed) is the trade."""
        market = random.choice(self.me["markets"])
        now = time.monotonic()
        seen, lots = self.rooms.get(market, (0.0, []))
        if now - seen > 15:
            page = self.send("GET", f"/v1/lots?state=in_auction&market={market}&limit=50",
                             "GET lots in auction")  # fmt: skip
            lots = [(x["lot_id"], now) for x in page["items"]] if page else []
            self.rooms[market] = (now, lots)
        if not lots:
            return
        lot, _ = random.choice(lots)
        value = self.values.setdefault(lot, daily(market) + random.randint(-4, 6) * 5_000)
        top = value + (10_000 if random.random() < 0.3 else 0)
        if top <= self.maximum.get(lot, 0):
            return  # it holds this maximum already
        least, looked = self.room.get(lot, (0, 0.0))
        if now - looked > 10:  # look at the room: its minimum next bid now
            view = self.send("GET", f"/v1/lots/{lot}", "GET room")
            auction = (view or {}).get("auction") or {}
            least = int(auction.get("min_next_bid_fen_per_t") or 0) if view else 1 << 62
            self.room[lot] = (least, now)
        if top < least:
            return  # priced out
        answer = self.send("POST", f"/v1/lots/{lot}/bids", "POST auction bid",
                           {"max_price_fen_per_t": top})  # fmt: skip
        if answer is not None:
            self.maximum[lot] = top
        elif self.refusal.get("code") == "below_increment":
            least = int(self.refusal.get("min_next_bid_fen_per_t") or top + 1)
            self.room[lot] = (least, now)

    @task(1)
    def book(self) -> None:
        market = random.choice(self.me["markets"])
        self.send("GET", f"/v1/markets/{market}/book?depth=10", "GET book")


class Regulator(Party):
    role = "regulators"
    weight = 1
    wait_time = think(5.0, 15.0)

    @task
    def read(self) -> None:
        self.send("GET", "/v1/lots?limit=50", "GET lots (regulator)")
        self.send("GET", "/v1/trades?limit=50", "GET trades (regulator)")
        self.send("GET", "/v1/awards?limit=50", "GET awards (regulator)")


class Board(User):
    """A quote-board display: one websocket, measuring each trade's way to the screen."""

    weight = 0  # run.py sets how many (--boards-in-locust); the rest is loadtests/boards.py
    fixed_count = int(os.environ.get("LOAD_LOCUST_BOARDS", "0"))

    def on_start(self) -> None:
        ws_url = (self.host or "").replace("http://", "ws://") + "/v1/ws"
        token = ACCOUNTS["boards"][0]["token"]
        self.ws = connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"})
        self.ws.send(json.dumps({"op": "subscribe", "channel": "board"}))
        market = random.choice(ACCOUNTS["markets"])  # a shop's display: its own market
        self.ws.send(json.dumps({"op": "subscribe", "channel": f"trades:{market}"}))

    def on_stop(self) -> None:
        self.ws.close()

    @task
    def watch(self) -> None:
        raw = self.ws.recv(timeout=30)
        now = time.time()
        if not isinstance(raw, str) or not raw.startswith('{"channel":"trades:'):
            return
        msg = json.loads(raw)
        if msg["type"] != "update":
            return
        for trade in msg["data"]["trades"]:
            at = datetime.fromisoformat(trade["at"]).timestamp()
            _hooks.request.fire(
                request_type="WS", name="trade->screen", response_time=(now - at) * 1000,
                response_length=len(raw), exception=None, context={},
            )  # fmt: skip


def _write_refusals(environment: Any, **_: Any) -> None:
    path = os.environ.get("LOAD_REFUSALS")
    if path:
        with open(path, "w") as out:
            json.dump(REFUSALS, out, indent=1, sort_keys=True)


# -- the summary run.py reads: writes and reads over the steady window -----------------------

_STARTED = time.monotonic()
_STEADY_AFTER = float(os.environ.get("LOAD_STEADY_AFTER", "0"))
_SAMPLES: dict[str, list[float]] = {"writes": [], "reads": []}
_FAILURES = [0]
_WINDOW: list[float] = []


def _sample(request_type: str, name: str, response_time: float, exception: Any, **_: Any) -> None:
    now = time.monotonic()
    if now - _STARTED < _STEADY_AFTER or request_type == "WS":
        return
    if not _WINDOW:
        _WINDOW.append(now)
    if exception is not None:
        _FAILURES[0] += 1
    _SAMPLES["writes" if request_type == "POST" else "reads"].append(response_time)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def _write_summary(environment: Any, **_: Any) -> None:
    path = os.environ.get("LOAD_SUMMARY")
    if not path or not _WINDOW:
        return
    took = max(1e-9, time.monotonic() - _WINDOW[0])
    w, r = _SAMPLES["writes"], _SAMPLES["reads"]
    summary = {
        "seconds": round(took, 1), "writes": len(w), "reads": len(r),
        "writes_per_s": len(w) / took, "reads_per_s": len(r) / took,
        "writes_p50_ms": _pct(w, 0.5), "writes_p95_ms": _pct(w, 0.95),
        "writes_p99_ms": _pct(w, 0.99),
        "reads_p50_ms": _pct(r, 0.5), "reads_p99_ms": _pct(r, 0.99), "failures": _FAILURES[0],
    }  # fmt: skip
    with open(path, "w") as out:
        json.dump(summary, out, indent=1)


_hooks: Any = events  # locust's event hooks are untyped
_hooks.quitting.add_listener(_write_refusals)
_hooks.quitting.add_listener(_write_summary)
_hooks.request.add_listener(_sample)
