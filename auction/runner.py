"""The async shell around the pure engine: one writer, group commit, timers.

``Runner`` owns an ``Engine``; nothing else touches it.  Commands arrive through
``submit`` into a bounded queue.  The writer takes whatever is queued (up to
``max_batch``), applies it in order, each at the clock's ``now`` (never earlier than
the previous one, even if the wall clock steps back), and writes the batch to the
journal in **one transaction** (group commit): journal rows for commands that changed
the engine, their audit rows, idempotency answers and read-table changes.  Only after
that commit are the callers answered and the events published.  If the commit fails,
nobody is told "accepted": every caller in the batch gets ``journal_unavailable`` (try
again), and the engine is rebuilt from the journal before anything else is applied.

Between commands the writer waits for whichever comes first, the next command or the
engine's next deadline, through the injected clock, and fires due deadlines with
``ExpireDue``: closes, extended closes, lapses and expiries happen on time with nobody
trading.  The engine itself never sleeps.

Ids: a command that creates a bid, lot or offer with id 0 gets the next id from the
writer (journaled as assigned, so a replay sees the same id).

Idempotency: a command may carry ``(principal, key)``.  The same key with the same
decoded command answers the first answer again (``replay=True``) and applies nothing;
with a different command it is ``idempotency_key_reused``; while the first is still
queued or being committed it is ``idempotency_in_flight``.  Keys are kept
``key_retention`` (24 h by default) in the journal database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from auction import snapshot
from auction.clock import Clock, shanghai_day
from auction.codec import decode_command, encode_command, fingerprint
from auction.engine import Engine
from auction.errors import ClientError, InvariantBroken
from auction.faults import fault
from auction.idempotency import KeyIndex
from auction.journal import Batch, Journal, audit_hash, from_us, to_us
from auction.messages import (
    AnyCommand,
    AnyEvent,
    Awarded,
    BidAmended,
    BidCancelled,
    BidExpired,
    BidPlaced,
    BuyingPowerChanged,
    ExpireDue,
    InviteOffers,
    MakeOffer,
    PlaceBid,
    PricePublished,
    Rejected,
    SellLot,
    StartAuction,
    Traded,
)

log = logging.getLogger("auction.runner")

Sequenced = list[tuple[int, list[AnyEvent]]]
"""Committed commands' events, each with its journal sequence (0 without a journal)."""
Publish = Callable[[Sequenced], None]
Capture = Callable[[Sequenced], Any]
Deliver = Callable[[Sequenced, Any], None]


class Answer(msgspec.Struct, frozen=True):
    """What a caller is told: the journal sequence (None if nothing changed), the events,
    and whether this is a replay of an earlier answer to the same idempotency key."""

    seq: int | None
    events: list[AnyEvent]
    replay: bool = False


_answer_encoder = msgspec.json.Encoder()
_answer_decoder = msgspec.json.Decoder(Answer)


# Commands that create an object, and the field of its id.  The writer assigns the id
# when the caller leaves it 0, so concurrent callers never race for the next number.
_ID_FIELDS: dict[type, str] = {
    PlaceBid: "bid_id",
    SellLot: "lot_id",
    StartAuction: "lot_id",
    InviteOffers: "lot_id",
    MakeOffer: "offer_id",
}


def _with_id(command: AnyCommand, next_id: int) -> AnyCommand:
    field = _ID_FIELDS.get(type(command))
    if field is None or getattr(command, field) != 0:
        return command
    return msgspec.structs.replace(command, **{field: next_id})


class Overloaded(ClientError):
    def __init__(self) -> None:
        super().__init__("overloaded", "the engine's queue is full; try again shortly")


class TryAgain(ClientError):
    def __init__(self, detail: str = "the journal could not be written; try again") -> None:
        super().__init__("journal_unavailable", detail)


_BROKEN: Any = object()  # _next_item's "a commit failed" answer


def _refuse(item: _Item) -> None:
    if item.future is not None and not item.future.done():
        item.future.set_exception(TryAgain())


@dataclass
class _Item:
    command: AnyCommand
    future: asyncio.Future[Answer] | None
    principal: str | None
    key: str | None
    fingerprint: str | None


@dataclass
class _Pending:
    """A batch applied to the engine, waiting for its commit."""

    batch: Batch
    answers: list[tuple[_Item, Answer]]
    published: Sequenced
    generation: int
    captured: list[Any] = field(default_factory=list)


class Runner:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        journal: Journal | None = None,
        *,
        max_queue: int = 10_000,
        max_batch: int = 1_000,
        publish: Publish | None = None,
        snapshot_path: Path | None = None,
        snapshot_every: int = 0,
        key_retention: timedelta = timedelta(hours=24),
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.journal = journal
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_queue)
        self._max_batch = max_batch
        self._subscribers: list[Publish] = [publish] if publish is not None else []
        self._watchers: list[tuple[Capture, Deliver]] = []
        self._snapshot_path = snapshot_path
        self._snapshot_every = snapshot_every
        self._retention = key_retention
        self._last: datetime | None = None
        self._seq = 0
        self._snapshot_seq = 0
        self._audit_hash = ""
        self._healthy = True
        self._generation = 0  # bumped when a commit fails: later batches are void
        self._pipe: asyncio.Queue[_Pending] = asyncio.Queue(1)
        self._broken = asyncio.Event()
        # committed keys, as digests; forgotten after ``key_retention``
        self._known = KeyIndex()
        self._pruned_at: datetime | None = None
        # the most recent keys' (fingerprint, created_us, answer), oldest first
        self._answers: OrderedDict[tuple[str, str], tuple[str, int, bytes]] = OrderedDict()
        self._inflight: dict[tuple[str, str], str] = {}

    # -- start-up ----------------------------------------------------------------------

    @classmethod
    async def open(cls, journal: Journal, clock: Clock, **kwargs: Any) -> Runner:
        """A runner whose engine is rebuilt from the snapshot (if whole) and the journal."""
        runner = cls(Engine(), clock, journal, **kwargs)
        await runner.recover()
        since = to_us(clock.now() - runner._retention)
        for principal, key, created in await journal.idempotency_keys(since):
            runner._known.add(principal, key, created)
        return runner

    async def recover(self) -> None:
        """Rebuild the engine: the snapshot if there is a whole one, then the journal."""
        assert self.journal is not None
        engine, seq = Engine(), 0
        if self._snapshot_path is not None:
            snap = snapshot.read(self._snapshot_path)
            if snap is not None:
                seq, engine = snap
        last = await self.journal.last_seq()
        if seq > last:
            raise InvariantBroken(f"the snapshot is at {seq}, past the journal's end at {last}")
        at = None
        async for rows in self.journal.rows(after=seq):
            for row_seq, at_us, command in rows:
                if row_seq != seq + 1:
                    raise InvariantBroken(f"journal gap: {seq} is followed by {row_seq}")
                at = from_us(at_us)
                engine.apply(decode_command(command), at)
                seq = row_seq
        self.engine = engine
        self._seq = seq
        self._snapshot_seq = seq if self._snapshot_path and self._snapshot_every else 0
        self._audit_hash = await self.journal.last_audit_hash()
        if at is not None:
            self._last = at
        elif self.engine._now is not None:
            self._last = self.engine._now
        self._healthy = True

    # -- the front door ----------------------------------------------------------------

    async def submit(
        self, command: AnyCommand, *, principal: str | None = None, key: str | None = None
    ) -> Answer:
        """Apply ``command`` (through the queue); returns once it is durable."""
        if not self._healthy:
            raise TryAgain()
        ik = (principal or "", key) if key is not None else None
        fp = None
        if ik is not None:
            fp = fingerprint(command)
            if ik in self._inflight:
                raise ClientError(
                    "idempotency_in_flight", "a request with this key is still being applied"
                )
            if self._known.maybe_known(*ik):
                first = await self._first_answer(ik)
                if first is not None:
                    if first[0] != fp:
                        raise ClientError(
                            "idempotency_key_reused",
                            "this idempotency key was used for a different request",
                        )
                    answer = _answer_decoder.decode(first[1])
                    return Answer(answer.seq, answer.events, replay=True)
                if ik in self._inflight:  # queued by another caller while we looked
                    raise ClientError(
                        "idempotency_in_flight", "a request with this key is still being applied"
                    )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        item = _Item(command, future, principal, key, fp)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Overloaded() from None
        if ik is not None and fp is not None:
            self._inflight[ik] = fp
        try:
            return await future
        finally:
            if ik is not None:
                self._inflight.pop(ik, None)

    async def drain(self) -> None:
        """Wait until everything queued has been applied and committed (for shutdown)."""
        while not self._queue.empty() or self._inflight:
            await asyncio.sleep(0.01)
        await self._pipe.join()

    async def _first_answer(self, ik: tuple[str, str]) -> tuple[str, bytes] | None:
        """``(fingerprint, answer)`` of the request first made with this key, or None if
        the key is not (or no longer) known: a digest collision, or pruned."""
        recent = self._answers.get(ik)
        if recent is not None:
            return recent[0], recent[2]
        assert self.journal is not None  # keys are only kept with a journal
        stored = await self.journal.idempotent_answer(*ik)
        if stored is not None:
            return stored[0], stored[1].encode()
        recent = self._answers.get(ik)  # committed while the database was asked?
        return (recent[0], recent[2]) if recent is not None else None

    # -- the writer --------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock.now()
        if self._last is not None and now < self._last:
            now = self._last
        self._last = now
        return now

    def subscribe(self, subscriber: Publish) -> None:
        """Call ``subscriber`` with every committed batch's events, in journal order, on
        the event loop; it must return at once (queue the work, never wait)."""
        self._subscribers.append(subscriber)

    def watch(self, capture: Capture, deliver: Deliver) -> None:
        """Like ``subscribe``, for a subscriber that must see the engine as each batch
        left it: ``capture(published)`` runs right after the batch is applied (the engine
        may be a batch further on by the time it is committed), and ``deliver(published,
        captured)`` once it is committed.  A batch whose commit failed is never
        delivered."""
        self._watchers.append((capture, deliver))

    async def run(self) -> None:
        """Apply batches and fire deadlines until cancelled.

        Two stages: this task applies batch N+1 to the engine while ``_commit_loop``
        commits batch N (the database works in its own thread or process).  Commits stay
        in order; a failed commit dooms every batch applied after it, since they were
        applied on top of it, and the engine is rebuilt before anything else.
        """
        committer = asyncio.create_task(self._commit_loop())
        carried: list[_Item] = []  # taken from the queue just as a commit failed
        try:
            while True:
                if committer.done():
                    committer.result()  # a broken invariant in the committer stops us too
                if not self._healthy:
                    await self._pipe.join()  # the committer answers what is left: try again
                    await self._heal()
                    continue
                if carried:
                    items, carried = carried, []
                else:
                    first = await self._next_item()
                    if first is _BROKEN:
                        continue
                    items = [first or _Item(ExpireDue(), None, None, None, None)]
                while len(items) < self._max_batch and not self._queue.empty():
                    items.append(self._queue.get_nowait())
                if not self._healthy:  # the commit of the batch before failed meanwhile
                    carried = items
                    continue
                pending = self._apply_batch(items)
                await self._pipe.put(pending)
                if self._snapshot_due():
                    await self._pipe.join()
                    if self._healthy:
                        self._write_snapshot()
        finally:
            committer.cancel()
            await asyncio.gather(committer, return_exceptions=True)

    def _apply_batch(self, items: list[_Item]) -> _Pending:
        """Apply ``items`` to the engine and build their batch; nothing is answered yet."""
        pending = _Pending(Batch(), [], [], self._generation)
        batch = pending.batch
        for item in items:
            now = self._now()
            item.command = _with_id(item.command, self.engine._last_order_id + 1)
            events = self.engine.apply(item.command, now)
            changed = bool(events) and not (len(events) == 1 and isinstance(events[0], Rejected))
            seq = None
            if changed and self.journal is not None:
                seq = self._journal_row(batch, item, now, events)
            answer = Answer(seq, events)
            if self.journal is not None and item.key is not None and item.fingerprint:
                batch.idempotency.append(
                    {
                        "principal": item.principal or "",
                        "key": item.key,
                        "fingerprint": item.fingerprint,
                        "seq": seq,
                        "answer": _answer_encoder.encode(answer).decode(),
                        "created_us": to_us(now),
                    }
                )
            pending.answers.append((item, answer))
            if changed:
                pending.published.append((seq or 0, events))
        if pending.published and self._watchers:
            pending.captured = [capture(pending.published) for capture, _ in self._watchers]
        return pending

    async def _commit_loop(self) -> None:
        while True:
            pending = await self._pipe.get()
            try:
                await self._commit(pending)
            finally:
                self._pipe.task_done()

    async def _commit(self, pending: _Pending) -> None:
        if pending.generation != self._generation:
            for item, _ in pending.answers:  # applied on top of a batch that failed
                _refuse(item)
            return
        batch = pending.batch
        if self.journal is not None and batch:
            try:
                fault("before_commit")
                await self.journal.commit(batch)
                fault("after_commit")
            except Exception as err:
                log.error("journal commit failed, refusing the batch: %r", err)
                for item, _ in pending.answers:
                    _refuse(item)
                self._generation += 1
                self._healthy = False
                self._broken.set()  # wake the writer to rebuild
                return
            for row in batch.idempotency:
                ik = (row["principal"], row["key"])
                self._known.add(*ik, row["created_us"])
                self._answers[ik] = (row["fingerprint"], row["created_us"], row["answer"].encode())
                if len(self._answers) > 10_000:
                    self._answers.popitem(last=False)
        for item, answer in pending.answers:
            if item.future is not None and not item.future.done():
                item.future.set_result(answer)
        if pending.published:
            for subscriber in self._subscribers:
                subscriber(pending.published)
            for (_, deliver), captured in zip(self._watchers, pending.captured, strict=False):
                deliver(pending.published, captured)
        await self._maybe_prune()

    async def _maybe_prune(self) -> None:
        """Once an hour (of the injected clock), forget keys older than the retention."""
        now = self._last
        if self.journal is None or now is None:
            return
        if self._pruned_at is None:
            self._pruned_at = now
        if now - self._pruned_at < timedelta(hours=1):
            return
        self._pruned_at = now
        cutoff = to_us(now - self._retention)
        self._known.forget_before(cutoff)
        for ik in [ik for ik, (_, created, _) in self._answers.items() if created < cutoff]:
            del self._answers[ik]
        try:
            await self.journal.prune_idempotency(cutoff)
        except Exception as err:  # pruning can wait for the next hour
            log.warning("could not prune idempotency keys: %r", err)

    def _journal_row(self, batch: Batch, item: _Item, now: datetime, events: list[AnyEvent]) -> int:
        self._seq += 1
        seq = self._seq
        command = encode_command(item.command).decode()
        at_us = to_us(now)
        action = str(type(item.command).__struct_config__.tag)
        digest = hashlib.sha256(command.encode()).hexdigest()
        new_hash = audit_hash(self._audit_hash, seq, at_us, item.principal, action, digest)
        batch.journal.append(
            {
                "seq": seq,
                "at_us": at_us,
                "principal": item.principal,
                "idem_key": item.key,
                "command": command,
            }
        )
        batch.audit.append(
            {
                "seq": seq,
                "at_us": at_us,
                "principal": item.principal,
                "action": action,
                "digest": digest,
                "prev_hash": self._audit_hash,
                "hash": new_hash,
            }
        )
        self._audit_hash = new_hash
        self._project(batch, events, seq, at_us)
        return seq

    def _project(self, batch: Batch, events: list[AnyEvent], seq: int, at_us: int) -> None:
        """Read-table changes for ``events`` (the engine's state is just after them)."""
        for ev in events:
            lot_id = getattr(ev, "lot_id", None)
            if lot_id is not None:
                lot = self.engine.lot(lot_id)
                if lot is not None:
                    batch.lots[lot_id] = {
                        "lot_id": lot_id,
                        "market": lot.market,
                        "owner": lot.owner,
                        "org": lot.org,
                        "weight_kg": lot.weight_kg,
                        "kind": lot.kind,
                        "state": lot.state,
                        "updated_seq": seq,
                    }
            match ev:
                case BidPlaced():
                    batch.new_bids[ev.bid_id] = {
                        "bid_id": ev.bid_id,
                        "market": ev.market,
                        "owner": ev.owner,
                        "org": ev.org,
                        "price_fen_per_t": ev.price_fen_per_t,
                        "open_kg": ev.qty_kg,
                        "min_lot_kg": ev.min_lot_kg,
                        "state": "open",
                        "updated_seq": seq,
                    }
                case BidAmended():
                    self._bid_change(batch, ev.bid_id, seq, ev.qty_kg, "open", ev.price_fen_per_t)
                case Traded():
                    left = ev.bid_remaining_kg
                    state = "open" if left else "filled"
                    self._bid_change(batch, ev.bid_id, seq, left, state, None)
                    batch.trades.append(
                        {
                            "trade_id": ev.trade_id,
                            "seq": seq,
                            "at_us": at_us,
                            "market": ev.market,
                            "bid_id": ev.bid_id,
                            "lot_id": ev.lot_id,
                            "buyer": ev.buyer,
                            "seller": ev.seller,
                            "price_fen_per_t": ev.price_fen_per_t,
                            "weight_kg": ev.weight_kg,
                            "amount_fen": ev.amount_fen,
                        }
                    )
                case BidCancelled():
                    self._bid_change(batch, ev.bid_id, seq, 0, "cancelled", None)
                case BidExpired():
                    self._bid_change(batch, ev.bid_id, seq, 0, "expired", None)
                case Awarded():
                    batch.awards.append(
                        {
                            "lot_id": ev.lot_id,
                            "seq": seq,
                            "at_us": at_us,
                            "market": ev.market,
                            "buyer": ev.buyer,
                            "seller": ev.seller,
                            "price_fen_per_t": ev.price_fen_per_t,
                            "weight_kg": ev.weight_kg,
                            "amount_fen": ev.amount_fen,
                            "deposit_fen": ev.deposit_fen,
                            "via": ev.via,
                        }
                    )
                case PricePublished():
                    batch.prices.append(
                        {
                            "seq": seq,
                            "at_us": at_us,
                            "day": shanghai_day(ev.at).isoformat(),
                            "kind": ev.kind,
                            "key": ev.key,
                            "publisher": ev.publisher,
                            "price_fen_per_t": ev.price_fen_per_t,
                            "vat_included": ev.vat_included,
                        }
                    )
                case BuyingPowerChanged():
                    batch.buying_power[ev.bidder] = {
                        "bidder": ev.bidder,
                        "limit_fen": ev.limit_fen,
                        "reserved_fen": ev.reserved_fen,
                        "available_fen": ev.available_fen,
                        "updated_seq": seq,
                    }
                case _:
                    pass

    @staticmethod
    def _bid_change(
        batch: Batch, bid_id: int, seq: int, open_kg: int, state: str, price: int | None
    ) -> None:
        row = batch.new_bids.get(bid_id)
        if row is None:
            row = batch.bid_updates.setdefault(bid_id, {"price_fen_per_t": None})
        row["open_kg"] = open_kg
        row["state"] = state
        row["updated_seq"] = seq
        if price is not None:
            row["price_fen_per_t"] = price

    def _snapshot_due(self) -> bool:
        return bool(
            self._snapshot_path
            and self._snapshot_every
            and self._seq - self._snapshot_seq >= self._snapshot_every
        )

    def _write_snapshot(self) -> None:
        """Only when everything applied is committed (the pipe is empty)."""
        assert self._snapshot_path is not None
        snapshot.write(self._snapshot_path, self.engine, self._seq)
        self._snapshot_seq = self._seq

    async def _heal(self) -> None:
        """After a failed commit: rebuild from the journal once the database answers."""
        delay = 0.05
        while True:
            try:
                await self.recover()
                log.warning("journal reachable again; engine rebuilt at seq %d", self._seq)
                return
            except InvariantBroken:
                raise
            except Exception as err:
                log.error("journal still unavailable: %r", err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _next_item(self) -> _Item | None:
        """The next command; None when a deadline is due first; ``_BROKEN`` when a commit
        failed and the engine must be rebuilt first."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        self._broken.clear()
        getter = asyncio.ensure_future(self._queue.get())
        others: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._broken.wait())}
        deadline = self.engine.next_deadline()
        if deadline is not None:
            others.add(asyncio.ensure_future(self.clock.sleep_until(deadline)))
        try:
            await asyncio.wait({getter, *others}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in others:
                waiter.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        if not self._healthy:
            return _BROKEN  # type: ignore[no-any-return]
        return None
