"""The sequencer: committed engine events and price-board changes in, channel messages out.

It runs beside the engine (one per engine process) and is the only place that numbers
channel messages, so every process serving subscribers (this one, or many behind
Redis) sends the same ``seq`` for the same message.  Its inputs:

- ``capture`` runs right after the runner applied a batch, before it is committed: the
  depth of every market the batch touched, read from the engine's books (the engine may
  run a batch ahead of the journal, so depth is read here, not at commit);
- ``committed`` runs once that batch is durable: book deltas against the last published
  depth, the trade tape, auction rooms, and each party's private notices;
- ``run_board`` follows the price service: whenever it applied something, the board is
  read once and what changed goes to ``board`` and to each changed market's ``stats``.

Nothing is published before it is committed.  A new sequencer (a restart) starts a new
epoch: its first output is a checkpoint of every channel built from the engine's state.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import msgspec

from auction.book import BUY, SELL
from auction.engine import Engine
from auction.messages import (
    AnyEvent,
    AuctionBidAccepted,
    AuctionClosed,
    AuctionExtended,
    AuctionStarted,
    Awarded,
    BidAmended,
    BidCancelled,
    BidExpired,
    BidPlaced,
    BuyingPowerChanged,
    LeaderChanged,
    LotCancelled,
    LotExpired,
    LotPosted,
    LotStateChanged,
    OfferChanged,
    Outbid,
    ResultDecided,
    Traded,
)
from auction.prices import Board
from auction.pricing import PriceService
from auction.runner import Sequenced
from auction.types import OrderId
from feeds.hub import Item
from feeds.protocol import message, now_ms, private_channel, tick_of, tick_start
from feeds.state import Folds

log = logging.getLogger("auction.feeds")

DEPTH = 20
"""Levels per side on a ``book`` channel."""

Depth = tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]


class Bus(Protocol):
    """Where sequenced messages go: the hub in this process, or Redis."""

    def reset(self, epoch: str, exported: dict[str, Any]) -> None: ...

    def send(self, items: list[Item]) -> None: ...


def _levels(rows: Iterable[tuple[int, int, int]]) -> dict[int, tuple[int, int]]:
    return {p: (q, n) for p, q, n in rows}


def _diff_levels(old: dict[int, tuple[int, int]], new: dict[int, tuple[int, int]]) -> list[Any]:
    changed: list[Any] = [[p, q, n] for p, (q, n) in new.items() if old.get(p) != (q, n)]
    changed.extend([p, 0, 0] for p in old if p not in new)
    return changed


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def keyed_board(board: Board, sources: dict[str, Any]) -> dict[str, Any]:
    """The board as keyed sections: what a board channel folds and conflates."""
    return {
        "day": board.day,
        "stale": board.stale,
        "markets": {m.market: msgspec.to_builtins(m) for m in board.markets},
        "quotes": {q.slot: msgspec.to_builtins(q) for q in board.quotes},
        "settlements": {k: msgspec.to_builtins(s) for k, s in board.settlements.items()},
        "indices": {i.category: msgspec.to_builtins(i) for i in board.indices},
        "sources": {k: dict(v) for k, v in sources.items()},
    }


def _diff_keyed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict):
            before = before if isinstance(before, dict) else {}
            changed = {k: v for k, v in value.items() if before.get(k) != v}
            changed.update({k: None for k in before if k not in value})
            if changed:
                out[key] = changed
        elif before != value:
            out[key] = value
    return out


def _market_stats(view: dict[str, Any], market: str) -> dict[str, Any]:
    category = market.partition(":")[0]
    keys = {market, category, "lead"}
    return {
        "day": view["day"],
        "stale": view["stale"],
        "market": view["markets"].get(market),
        "settlement": view["settlements"].get(market),
        "quotes": {slot: q for slot, q in view["quotes"].items() if q["key"] in keys},
    }


class Sequencer:
    def __init__(
        self,
        engine: Engine,
        bus: Bus,
        *,
        clock_ms: Callable[[], int] = now_ms,
        tape_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.tape_s = tape_s
        """Trades are gathered per market for up to this long (until the next tick of
        the loop's clock in steps of ``tape_s``) and sent as one message
        (0: one message per committed batch).  A tape is read by people and drawn by
        screens; per-fill detail goes to each party's private channel at once.  Without
        it a busy market sends every subscriber one frame per commit batch."""
        self._tape: dict[str, list[Any]] = {}
        self._tape_due: asyncio.TimerHandle | None = None
        self.bus = bus
        self.clock_ms = clock_ms
        self.epoch = secrets.token_hex(8)
        self._seq: dict[str, int] = {}
        self._depth: dict[str, Depth] = {}
        self._bid_owner: dict[int, str] = {}
        self._aliases: dict[int, dict[str, int]] = {}
        self._bids: dict[int, int] = {}
        self._leader: dict[int, str] = {}
        self._view: dict[str, Any] | None = None
        self.sources: dict[str, dict[str, Any]] = {}
        self._board_changed = asyncio.Event()

    # -- start ------------------------------------------------------------------------

    def start(self, board: Board | None = None) -> None:
        """The first checkpoint of this epoch, from the engine as it is now."""
        folds = Folds()
        engine = self.engine
        for market in engine.markets():
            book = engine.book(market)
            assert book is not None
            depth = (_levels(book.depth(BUY, DEPTH)), _levels(book.depth(SELL, DEPTH)))
            self._depth[market] = depth
            folds.apply(f"book:{market}", 0, "snapshot", self._book_data(depth))
        for order_id, entry in engine._entries.items():
            if entry.kind == "bid":
                self._bid_owner[int(order_id)] = entry.owner
        for lot_id, auction in engine._auctions.items():
            lot = engine.lot(lot_id)
            if lot is None or lot.state not in ("in_auction", "awaiting_acceptance"):
                continue
            aliases = self._aliases[int(lot_id)] = {}
            for bidder in auction.proxies:
                aliases[bidder] = len(aliases) + 1
            self._bids[int(lot_id)] = auction.bids
            if auction.leader is not None:
                self._leader[int(lot_id)] = auction.leader.bidder
            room = {
                "lot_id": int(lot_id),
                "market": auction.market,
                "weight_kg": auction.weight_kg,
                "start_price_fen_per_t": auction.start_price,
                "has_reserve": auction.reserve is not None,
                "buy_now_fen_per_t": auction.buy_now if auction.bids == 0 else None,
                "closes_at": auction.closes_at.isoformat(),
                "state": "open" if lot.state == "in_auction" else "closed",
                "bids": auction.bids,
                "leader": self._alias(int(lot_id), auction.leader.bidder)
                if auction.leader
                else None,
                "visible_price_fen_per_t": auction.visible_price(),
                "min_next_bid_fen_per_t": auction.min_next_bid(),
                "reserve_met": auction.reserve_met(),
            }
            folds.apply(f"auction:{lot_id}", 0, "snapshot", room)
        if board is not None:
            self._view = keyed_board(board, self.sources)
            folds.apply("board", 0, "snapshot", self._view)
            for market in self._view["markets"]:
                folds.apply(f"stats:{market}", 0, "snapshot", _market_stats(self._view, market))
        self.bus.reset(self.epoch, folds.export())

    # -- engine batches -----------------------------------------------------------------

    def capture(self, published: Sequenced) -> dict[str, Depth]:
        markets: set[str] = set()
        for _, events in published:
            for event in events:
                market = getattr(event, "market", None)
                if market is not None:
                    markets.add(market)
        out: dict[str, Depth] = {}
        for market in markets:
            book = self.engine.book(market)  # type: ignore[arg-type]
            if book is None:
                out[market] = ({}, {})
            else:
                out[market] = (_levels(book.depth(BUY, DEPTH)), _levels(book.depth(SELL, DEPTH)))
        return out

    def committed(self, published: Sequenced, captured: dict[str, Depth]) -> None:
        items: list[Item] = []
        for market in sorted(captured):
            new = captured[market]
            old = self._depth.get(market, ({}, {}))
            bids, asks = _diff_levels(old[0], new[0]), _diff_levels(old[1], new[1])
            if bids or asks:
                self._depth[market] = new
                items.append(self._item(f"book:{market}", "update", {"bids": bids, "asks": asks}))
        for _, events in published:
            for event in events:
                self._event(event, items, self._tape)
        if self.tape_s <= 0:
            items += self._tape_items()
        elif self._tape and self._tape_due is None:
            # at the next tick of the screens' clock, when the hub sends its conflated
            # frames too: a screen gets its board and its market's tape in one write
            loop = asyncio.get_running_loop()
            due = tick_start(tick_of(loop.time(), self.tape_s) + 1, self.tape_s)
            self._tape_due = loop.call_at(due, self._flush_tape)
        if items:
            self.bus.send(items)

    def _tape_items(self) -> list[Item]:
        """One ``trades:`` message per market with the prints gathered since the last."""
        items = [
            self._item(f"trades:{market}", "update", {"trades": trades})
            for market, trades in sorted(self._tape.items())
        ]
        self._tape.clear()
        return items

    def _flush_tape(self) -> None:
        self._tape_due = None
        items = self._tape_items()
        if items:
            self.bus.send(items)

    def _event(self, ev: AnyEvent, items: list[Item], tape: dict[str, list[Any]]) -> None:
        at = ev.at.isoformat()
        if isinstance(ev, Traded):
            tape.setdefault(ev.market, []).append(
                {
                    "trade_id": ev.trade_id,
                    "price_fen_per_t": ev.price_fen_per_t,
                    "weight_kg": ev.weight_kg,
                    "aggressor": ev.aggressor,
                    "at": at,
                }
            )
            self._to_both_sides("traded", ev, items)
            if ev.bid_remaining_kg == 0:
                self._bid_owner.pop(ev.bid_id, None)
        elif isinstance(ev, BidPlaced):
            self._bid_owner[ev.bid_id] = ev.owner
            items.append(self._private(ev.owner, self._note("bid_placed", ev)))
        elif isinstance(ev, BidAmended):
            self._to_bid_owner(ev.bid_id, self._note("bid_amended", ev), items)
        elif isinstance(ev, (BidCancelled, BidExpired)):
            name = "bid_cancelled" if isinstance(ev, BidCancelled) else "bid_expired"
            self._to_bid_owner(ev.bid_id, self._note(name, ev), items)
            self._bid_owner.pop(ev.bid_id, None)
        elif isinstance(ev, (LotPosted, LotCancelled, LotExpired, LotStateChanged)):
            self._to_lot_owner(ev.lot_id, self._note(_NAMES[type(ev)], ev), items)
        elif isinstance(ev, BuyingPowerChanged):
            items.append(self._private(ev.bidder, self._note("buying_power", ev)))
        elif isinstance(ev, OfferChanged):
            note = self._note("offer", ev)
            items.append(self._private(ev.bidder, note))
            self._to_lot_owner(ev.lot_id, note, items)
        else:
            self._auction_event(ev, at, items, tape)

    def _auction_event(
        self, ev: AnyEvent, at: str, items: list[Item], tape: dict[str, list[Any]]
    ) -> None:
        if isinstance(ev, AuctionStarted):
            lot = int(ev.lot_id)
            self._aliases[lot], self._bids[lot] = {}, 0
            room = {
                "event": "started",
                "lot_id": lot,
                "market": ev.market,
                "weight_kg": ev.weight_kg,
                "start_price_fen_per_t": ev.start_price_fen_per_t,
                "has_reserve": ev.has_reserve,
                "buy_now_fen_per_t": ev.buy_now_fen_per_t,
                "closes_at": ev.closes_at.isoformat(),
                "state": "open",
                "bids": 0,
                "leader": None,
                "visible_price_fen_per_t": None,
                "min_next_bid_fen_per_t": ev.start_price_fen_per_t,
                "reserve_met": False,
            }
            items.append(self._item(f"auction:{lot}", "snapshot", room))
            items.append(self._private(ev.owner, self._note("auction_started", ev)))
        elif isinstance(ev, AuctionBidAccepted):
            lot = int(ev.lot_id)
            self._bids[lot] = self._bids.get(lot, 0) + 1
            self._leader[lot] = ev.leader
            room = {
                "event": "bid",
                "bidder": self._alias(lot, ev.bidder),
                "auto": ev.auto,
                "leader": self._alias(lot, ev.leader),
                "visible_price_fen_per_t": ev.visible_price_fen_per_t,
                "min_next_bid_fen_per_t": ev.min_next_bid_fen_per_t,
                "reserve_met": ev.reserve_met,
                "bids": self._bids[lot],
                "buy_now_fen_per_t": None,
                "at": at,
            }
            items.append(self._item(f"auction:{lot}", "update", room))
            note = self._note("auction_bid", ev)
            note["leader"] = self._alias(lot, ev.leader)
            items.append(self._private(ev.bidder, note))
        elif isinstance(ev, LeaderChanged):
            lot = int(ev.lot_id)
            self._leader[lot] = ev.leader
            room = {
                "event": "leader",
                "leader": self._alias(lot, ev.leader),
                "visible_price_fen_per_t": ev.visible_price_fen_per_t,
                "at": at,
            }
            items.append(self._item(f"auction:{lot}", "update", room))
            note = {
                "event": "leading",
                "lot_id": lot,
                "visible_price_fen_per_t": ev.visible_price_fen_per_t,
                "at": at,
            }
            items.append(self._private(ev.leader, note))
        elif isinstance(ev, Outbid):
            lot = int(ev.lot_id)
            note = {
                "event": "outbid",
                "lot_id": lot,
                "by": self._alias(lot, ev.by),
                "visible_price_fen_per_t": ev.visible_price_fen_per_t,
                "at": at,
            }
            items.append(self._private(ev.bidder, note))
        elif isinstance(ev, AuctionExtended):
            room = {
                "event": "extended",
                "closes_at": ev.closes_at.isoformat(),
                "extended_s": ev.extended_s,
                "at": at,
            }
            items.append(self._item(f"auction:{ev.lot_id}", "update", room))
        elif isinstance(ev, AuctionClosed):
            lot = int(ev.lot_id)
            room = {
                "event": "closed",
                "state": "closed",
                "result": ev.result,
                "price_fen_per_t": ev.price_fen_per_t,
                "leader": self._alias(lot, ev.leader) if ev.leader else None,
                "accept_by": _iso(ev.accept_by),
                "at": at,
            }
            items.append(self._item(f"auction:{lot}", "update", room))
            note = {**room, "event": "auction_closed", "lot_id": lot}
            self._to_lot_owner(ev.lot_id, note, items)
            if ev.leader is not None:
                won = ev.result in ("awarded", "bought_now")
                items.append(
                    self._private(ev.leader, {**note, "event": "won" if won else note["event"]})
                )
        elif isinstance(ev, Awarded):
            lot = int(ev.lot_id)
            if lot in self._aliases:
                room = {"event": "awarded", "price_fen_per_t": ev.price_fen_per_t, "via": ev.via}
                items.append(self._item(f"auction:{lot}", "update", room))
                self._forget(lot)
            tape.setdefault(ev.market, []).append(
                {
                    "lot_id": lot,
                    "price_fen_per_t": ev.price_fen_per_t,
                    "weight_kg": ev.weight_kg,
                    "via": ev.via,
                    "at": at,
                }
            )
            self._to_both_sides("awarded", ev, items)
        elif isinstance(ev, ResultDecided):
            lot = int(ev.lot_id)
            room = {"event": "decided", "decision": ev.decision, "at": at}
            if lot in self._aliases:
                items.append(self._item(f"auction:{lot}", "update", room))
            note = {**room, "event": "result_decided", "lot_id": lot}
            self._to_lot_owner(ev.lot_id, note, items)
            leader = self._leader.get(lot)
            if leader is not None:
                items.append(self._private(leader, note))
            if ev.decision != "accepted":
                self._forget(lot)

    def _forget(self, lot: int) -> None:
        self._aliases.pop(lot, None)
        self._bids.pop(lot, None)
        self._leader.pop(lot, None)

    def _alias(self, lot: int, who: str) -> int:
        """A bidder's paddle number in one room: rooms show numbers, never identities."""
        aliases = self._aliases.setdefault(lot, {})
        if who not in aliases:
            aliases[who] = len(aliases) + 1
        return aliases[who]

    def _note(self, name: str, ev: AnyEvent) -> dict[str, Any]:
        note: dict[str, Any] = msgspec.to_builtins(ev)
        note.pop("type", None)
        note["event"] = name
        return note

    def _to_both_sides(self, name: str, ev: Traded | Awarded, items: list[Item]) -> None:
        """A sale's notice to its buyer and its seller, each told which side they were."""
        note = self._note(name, ev)
        items.append(self._private(ev.buyer, {**note, "role": "buyer"}))
        items.append(self._private(ev.seller, {**note, "role": "seller"}))

    def _to_bid_owner(self, bid_id: int, note: dict[str, Any], items: list[Item]) -> None:
        owner = self._bid_owner.get(bid_id)
        if owner is not None:
            items.append(self._private(owner, note))

    def _to_lot_owner(self, lot_id: OrderId, note: dict[str, Any], items: list[Item]) -> None:
        lot = self.engine.lot(lot_id)  # a lot's owner never changes
        if lot is not None:
            items.append(self._private(lot.owner, note))

    def _private(self, principal: str, note: dict[str, Any]) -> Item:
        return self._item(private_channel(principal), "update", note)

    def _item(self, channel: str, kind: str, data: dict[str, Any]) -> Item:
        seq = self._seq.get(channel, 0) + 1
        self._seq[channel] = seq
        return (channel, seq, kind, data, message(channel, seq, kind, data, self.clock_ms()))  # type: ignore[arg-type]

    @staticmethod
    def _book_data(depth: Depth) -> dict[str, Any]:
        bids, asks = depth
        return {
            "bids": [[p, *bids[p]] for p in sorted(bids, reverse=True)],
            "asks": [[p, *asks[p]] for p in sorted(asks)],
        }

    # -- the board ----------------------------------------------------------------------

    def board_changed(self) -> None:
        self._board_changed.set()

    def set_source(self, name: str, status: dict[str, Any]) -> None:
        """An ingest source's status (stale, counters), shown on the board."""
        self.sources[name] = status
        self._board_changed.set()

    async def run_board(self, prices: PriceService) -> None:
        """Publish what changed on the board each time the price service applied
        something (one read of the board however many changes piled up meanwhile)."""
        while True:
            await self._board_changed.wait()
            self._board_changed.clear()
            self.publish_board(await prices.board())

    def publish_board(self, board: Board) -> None:
        view = keyed_board(board, self.sources)
        old = self._view
        self._view = view
        items: list[Item] = []
        if old is None or old["day"] != view["day"]:
            items.append(self._item("board", "snapshot", view))
            for market in view["markets"]:
                items.append(self._item(f"stats:{market}", "snapshot", _market_stats(view, market)))
        else:
            change = _diff_keyed(old, view)
            if not change:
                return
            items.append(self._item("board", "update", change))
            markets = set(change.get("markets", ()))
            if "quotes" in change or "stale" in change or "settlements" in change:
                markets = set(view["markets"])
            for market in sorted(markets):
                before, after = _market_stats(old, market), _market_stats(view, market)
                delta = _diff_keyed(before, after)
                if delta:
                    items.append(self._item(f"stats:{market}", "update", delta))
        self.bus.send(items)


_NAMES: dict[type, str] = {
    LotPosted: "lot_posted",
    LotCancelled: "lot_cancelled",
    LotExpired: "lot_expired",
    LotStateChanged: "lot_state",
}
