"""The lot lifecycle: every state a lot can be in and every move between them, in one table.

::

    listed ──open_one_click──► open ──sold──────────────────────────► awarded ─► (deposit_paid
      │                         │ └─cancel / expire──► cancelled / expired        ─► weighed
      ├──open_auction──► in_auction ──close: award / buy_now──────────► awarded     ─► settled;
      │                    │   └─close: reserve not met─► awaiting_acceptance       disputed)
      │                    │                              ├─accept──► awarded
      │                    │                              └─decline / lapse─► declined / lapsed
      │                    ├─close: no bids──► expired
      │                    └─cancel (before the first bid)──► cancelled
      └──open_offers──► taking_offers ──accept_offer──► awarded
                           └─cancel (before the first offer) / expire──► cancelled / expired

    expired / cancelled / declined / lapsed ──relist──► relisted   (a new lot carries on)

Rules:

* A move not in ``TRANSITIONS`` is an ``illegal_transition`` and changes nothing.
* Guards that need more than the state (for example "before the first bid") are checked
  by the engine before it asks for the move; the table holds the shape only.
* The states after ``awarded`` are here so that later steps (deposit, weighing,
  settlement, disputes) slot in without reshaping anything; no command reaches them yet.
"""

from __future__ import annotations

from typing import Final, Literal

from auction.errors import ClientError

LotState = Literal[
    "listed",
    "open",
    "in_auction",
    "taking_offers",
    "awaiting_acceptance",
    "awarded",
    "expired",
    "cancelled",
    "declined",
    "lapsed",
    "relisted",
    "deposit_paid",
    "weighed",
    "settled",
    "disputed",
]

Move = Literal[
    "open_one_click",
    "open_auction",
    "open_offers",
    "sold",
    "award",
    "buy_now",
    "reserve_not_met",
    "accept",
    "decline",
    "lapse",
    "accept_offer",
    "cancel",
    "expire",
    "relist",
    "pay_deposit",
    "weigh",
    "settle",
    "dispute",
    "resolve",
]

TRANSITIONS: Final[dict[tuple[LotState, Move], LotState]] = {
    ("listed", "open_one_click"): "open",
    ("listed", "open_auction"): "in_auction",
    ("listed", "open_offers"): "taking_offers",
    # one-click: resting in the book at its floor
    ("open", "sold"): "awarded",
    ("open", "cancel"): "cancelled",
    ("open", "expire"): "expired",
    # competitive sale
    ("in_auction", "award"): "awarded",
    ("in_auction", "buy_now"): "awarded",
    ("in_auction", "reserve_not_met"): "awaiting_acceptance",
    ("in_auction", "expire"): "expired",
    ("in_auction", "cancel"): "cancelled",
    ("awaiting_acceptance", "accept"): "awarded",
    ("awaiting_acceptance", "decline"): "declined",
    ("awaiting_acceptance", "lapse"): "lapsed",
    # negotiated sale
    ("taking_offers", "accept_offer"): "awarded",
    ("taking_offers", "cancel"): "cancelled",
    ("taking_offers", "expire"): "expired",
    # another try
    ("expired", "relist"): "relisted",
    ("cancelled", "relist"): "relisted",
    ("declined", "relist"): "relisted",
    ("lapsed", "relist"): "relisted",
    # after the sale (later issues drive these)
    ("awarded", "pay_deposit"): "deposit_paid",
    ("deposit_paid", "weigh"): "weighed",
    ("weighed", "settle"): "settled",
    ("weighed", "dispute"): "disputed",
    ("disputed", "resolve"): "settled",
}

TERMINAL: Final[frozenset[LotState]] = frozenset({"relisted", "settled"})


def next_state(state: LotState, move: Move) -> LotState:
    """The state ``move`` leads to from ``state``; ``illegal_transition`` if none."""
    to = TRANSITIONS.get((state, move))
    if to is None:
        raise ClientError(
            "illegal_transition",
            f"a lot that is {state.replace('_', ' ')} cannot {move.replace('_', ' ')}",
        )
    return to


def can(state: LotState, move: Move) -> bool:
    return (state, move) in TRANSITIONS
