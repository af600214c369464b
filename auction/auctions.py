"""A competitive sale (竞价投售) of one lot: an English auction with proxy bids.  Pure data.

Rules (the engine applies them in this order; ``Auction`` holds the state):

* **Proxy bids.**  A bidder gives a maximum; the engine bids for it.  The leader is the
  highest maximum; of two equal maximums the earlier one leads.  A bidder has one
  maximum per lot; a new one replaces it and must be higher.
* **Visible price** = the start price while one bidder is in; otherwise one increment
  (of the ladder, at the runner-up's maximum) above the runner-up's maximum, but never
  above the leader's maximum.  Once the leader's maximum meets the hidden reserve, the
  visible price is at least the reserve.
* **Minimum next bid** = the start price before any bid, then the visible price plus
  one increment (at the visible price).  A bidder who does not lead must bid at least
  that; the leader may only raise its own maximum, which does not move the price unless
  it makes the reserve met.
* **Soft close.**  A bid that changes the leader within the last ``soft_close_s``
  seconds before the close moves the close ``soft_close_s`` later, never more than
  ``max_extension_s`` past the original close.  Bids that do not change the leader, and
  refused bids, never extend.
* **Close.**  The close happens at ``closes_at`` exactly: a bid at that instant or later
  is refused.  No bids: no sale.  Reserve met (or none): the leader is awarded at the
  visible price.  Reserve not met: the store may accept or decline the best bid until
  the acceptance window lapses.
* **Buy now** is possible until the first bid, at the buy-now price.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from auction.catalogue import SaleRules
from auction.types import MarketId, OrderId, OrgId, PrincipalId


class Proxy(msgspec.Struct, gc=False):
    bidder: PrincipalId
    org: OrgId
    max_price: int
    seq: int
    auto: bool = False


class Auction(msgspec.Struct):
    lot_id: OrderId
    market: MarketId
    owner: PrincipalId
    org: OrgId
    weight_kg: int
    start_price: int
    reserve: int | None
    buy_now: int | None
    rules: SaleRules
    opened_at: datetime
    original_close: datetime
    closes_at: datetime
    proxies: dict[str, Proxy] = {}
    leader: Proxy | None = None
    runner_up: int | None = None  # the second-highest maximum
    bids: int = 0
    seq: int = 0
    accept_by: datetime | None = None

    visible: int | None = None  # kept by ``place``: the visible price
    next_min: int = 0  # kept by ``place``: the minimum next bid; the start price at first

    # -- prices ------------------------------------------------------------------------

    def visible_price(self) -> int | None:
        return self.visible

    def min_next_bid(self) -> int:
        return self.next_min

    def reserve_met(self) -> bool:
        return self.leader is not None and (
            self.reserve is None or self.leader.max_price >= self.reserve
        )

    def buy_now_open(self) -> bool:
        return self.buy_now is not None and self.bids == 0

    # -- changes -----------------------------------------------------------------------

    def place(
        self, bidder: PrincipalId, org: OrgId, max_price: int, *, auto: bool = False
    ) -> Proxy | None:
        """Enter a validated maximum; returns the leader it displaced, if it did.

        The caller has checked ``check_bid`` first; this cannot fail.
        """
        self.seq += 1
        self.bids += 1
        leader = self.leader
        mine = self.proxies.get(bidder)
        if mine is None:
            mine = self.proxies[bidder] = Proxy(bidder, org, max_price, self.seq, auto)
        else:
            mine.max_price = max_price
            mine.seq = self.seq
            mine.auto = auto
        displaced = None
        if leader is None:
            self.leader = mine
        elif leader is mine:
            pass  # the leader raised its own maximum
        elif max_price > leader.max_price:
            self.runner_up = leader.max_price
            self.leader = mine
            displaced = leader
        elif self.runner_up is None or max_price > self.runner_up:
            self.runner_up = max_price
        top = self.leader
        assert top is not None
        price = visible_price(
            top.max_price, self.runner_up, self.start_price, self.reserve, self.rules
        )
        self.visible = price
        self.next_min = price + self.rules.increment(price)
        return displaced

    def extend_for_leader_change(self, now: datetime) -> bool:
        """Soft close after a change of leader at ``now``; True if the close moved."""
        window = timedelta(seconds=self.rules.soft_close_s)
        if self.closes_at - now > window:
            return False
        cap = self.original_close + timedelta(seconds=self.rules.max_extension_s)
        new_close = min(self.closes_at + window, cap)
        if new_close <= self.closes_at:
            return False
        self.closes_at = new_close
        return True


def visible_price(
    leader_max: int, runner_up: int | None, start: int, reserve: int | None, rules: SaleRules
) -> int:
    if runner_up is None:
        price = start
    else:
        price = min(leader_max, max(start, runner_up + rules.increment(runner_up)))
    if reserve is not None and leader_max >= reserve:
        price = max(price, reserve)
    return price
