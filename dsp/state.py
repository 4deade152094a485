"""The campaign state that must be right under concurrency, behind one small interface.

:class:`CampaignState` is what a campaign bidder reads and writes between requests and notices:

- **budgets**: a bid *reserves* its price; a win notice lowers the hold to the clearing price; the
  billing notice turns it into spend; a loss, or no notice within a TTL, *releases* it. A bid is
  only made if spend + everything held + its price fits the total and the daily budget, so spend
  can exceed a budget by no more than the bids in flight whose notices outlive their TTL;
- **frequency**: impressions (billing) per user per campaign per calendar hour and day;
- **audiences**: retargeting lists fed by the advertiser's ``/pixel`` (visits, purchases);
- **counters** for ``/stats``.

Money here is in **CPM micro-units**, like the exchange's books: an impression at a CPM of ``p``
adds ``round(p * 1_000_000)``, and the money it costs is that / 1000 / 1_000_000, so sums are exact
integers (a budget of 1.00 is 1_000_000_000 of these). :func:`budget_units` and :func:`money` convert.

The in-memory implementation is :class:`dsp.memory_state.MemoryState`; one over Redis, shared by
several workers, can follow the same interface. Every method is synchronous and quick: an
implementation must never block the event loop (a networked one pipelines or caches).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

log = logging.getLogger(__name__)

#: A bid's identity in notices: (auction id = the request id, bid id).
BidKey = tuple[str, str]

PENDING = "pending"  # bid sent, no notice yet
WON = "won"  # win notice: holds the clearing price until billing
BILLED = "billed"  # spent
RELEASED = "released"  # lost
EXPIRED = "expired"  # no notice within its TTL

UNITS_PER_MONEY = 1_000_000_000  # CPM micro-units per unit of money


def budget_units(money_amount: float) -> int:
    """An amount of money (``12.5`` dollars) in CPM micro-units."""
    return round(money_amount * UNITS_PER_MONEY)


def money(units: int) -> float:
    """CPM micro-units as money."""
    return units / UNITS_PER_MONEY


@dataclass(slots=True)
class Reservation:
    """One bid in flight, and afterwards the record of its impression.

    The bidder fills the fields above ``held``; the state sets the rest. ``features`` (what the
    CTR model learns from) and ``note`` (what the pricing strategy attached to the bid) travel
    with it to the feedback hooks; a shared implementation stores them serialised, so keep them
    plain data.
    """

    key: BidKey
    campaign: str
    bid_micros: int  # the bid, CPM micro-units
    ts: float  # the bidder's clock when it bid
    day: int  # the campaign's calendar day at ``ts``
    user: str | None = None
    imp_id: str = ""
    crid: str = ""
    pctr: float | None = None  # the pCTR it was priced with, if its strategy asked for one
    features: Any = None
    note: Any = None
    clicks: int = 0  # clicks seen on this impression
    held: int = 0  # CPM micro-units held against the budget now
    price_micros: int | None = None  # the clearing price, once a notice said it
    status: str = PENDING
    expires: float = 0.0


class BudgetView(NamedTuple):
    """A campaign's budget on one day, in CPM micro-units (0 limit = none)."""

    total: int
    daily: int
    spent: int
    spent_today: int
    held: int

    @property
    def remaining_total(self) -> int | None:
        return None if not self.total else max(0, self.total - self.spent - self.held)

    @property
    def remaining_today(self) -> int | None:
        return None if not self.daily else max(0, self.daily - self.spent_today - self.held)


class CampaignState(Protocol):
    """Budgets, frequency, audiences and counters of a set of campaigns (see the module doc)."""

    # -- budgets: the life of a bid ---------------------------------------------------------------
    def open(self, campaign: str, *, total: int, daily: int) -> None:
        """Set a campaign's limits (CPM micro-units, 0 = none); what it spent is kept."""

    def reserve(self, r: Reservation, *, now: float, ttl: float) -> bool:
        """Hold ``r.bid_micros`` for ``ttl`` seconds if it fits the budgets; False if not."""

    def win(self, key: BidKey, price_micros: int, *, now: float, ttl: float) -> Reservation | None:
        """A win at ``price_micros``: hold that instead, for ``ttl`` more seconds. None if the bid
        is unknown or already won or billed."""

    def bill(self, key: BidKey, price_micros: int) -> Reservation | None:
        """The impression is billed: spend ``price_micros``, count it for frequency. None if the bid
        is unknown or already billed (a notice repeated)."""

    def release(self, key: BidKey) -> Reservation | None:
        """A loss: release the hold. None unless the bid was pending."""

    def sweep(self, now: float) -> list[Reservation]:
        """Release the reservations whose TTL ran out by ``now``; return them."""

    def budget(self, campaign: str, day: int) -> BudgetView:
        """The campaign's budget on ``day`` (a new day starts with nothing spent today)."""

    def shown(self, key: BidKey) -> Reservation | None:
        """The bid ``key`` if it may have been shown (won, billed, or never told it lost), for
        clicks and conversions; None if unknown or lost. Recent bids only: memory is bounded."""

    # -- frequency ---------------------------------------------------------------------------------
    def frequency(self, campaign: str, user: str, hour: int, day: int) -> tuple[int, int]:
        """Impressions of ``campaign`` to ``user`` in calendar ``hour`` and ``day``."""

    def last_touch(self, campaign: str, user: str) -> tuple[float, BidKey] | None:
        """The time and bid of ``campaign``'s latest impression to ``user``."""

    # -- audiences ---------------------------------------------------------------------------------
    def visit(self, advertiser: str, user: str, ts: float, category: str | None) -> None:
        """``user`` visited ``advertiser``'s site (a ``category`` page) at ``ts``."""

    def purchase(self, advertiser: str, user: str, ts: float) -> None:
        """``user`` bought from ``advertiser`` at ``ts``: off its retargeting list until a new visit."""

    def in_audience(
        self, advertiser: str, user: str, since: float, categories: frozenset[str]
    ) -> bool:
        """Whether ``user`` visited ``advertiser`` (one of ``categories``, if any) at or after
        ``since`` and has not purchased after that visit."""

    # -- counters ----------------------------------------------------------------------------------
    def add(self, campaign: str, counter: str, n: int = 1) -> None:
        """Add ``n`` to a counter of the campaign (bids, clicks, ...)."""

    def counters(self, campaign: str) -> dict[str, int]:
        """The campaign's counters."""
