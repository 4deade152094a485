"""Pricing strategies: how much to bid for one opportunity, for one campaign.

The campaign bidder decides *what* to bid for (targeting, budgets, pacing, frequency, the
creative); a :class:`PricingStrategy` decides *how much*. It follows the conventions of
:class:`dsp.bidder.Bidder` (scikit-learn's): ``__init__`` only stores keyword parameters,
``get_params`` reads them back, ``reset(seed)`` seeds ``self.rng_`` and clears what was learnt,
learnt attributes end in ``_``, and optional feedback hooks learn from the bid's fate.

``price(ctx)`` gets a :class:`BidContext` and answers a CPM (in the DSP's currency), or ``None``
for no bid. A price below the floor is not sent. Each campaign has its own strategy object.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from dsp.params import Parameterized
from dsp.state import BudgetView, Reservation, money
from exchange.feedback import AuctionEvent, noop_hook
from exchange.openrtb import MICROS, BidRequest, Imp

log = logging.getLogger(__name__)


class BidContext:
    """What a strategy knows about one opportunity for one campaign.

    The bidder reuses one context per request, re-pointing it at each imp and candidate campaign:
    read it during :meth:`PricingStrategy.price`, do not keep it (copy what you need). ``pctr``
    and the budget figures are computed on first use, so a strategy that ignores them costs
    nothing.

    Build one by hand in tests: ``BidContext(pctr=0.002, floor=0.5, value_per_click=1.0)``.
    """

    __slots__ = (
        "_budget",
        "_budget_fn",
        "_day",
        "_pctr",
        "_pctr_fn",
        "at",
        "campaign",
        "cpc_goal",
        "creative",
        "day_elapsed",
        "floor",
        "imp",
        "note",
        "now",
        "request",
        "value_per_click",
    )

    def __init__(
        self,
        *,
        pctr: float | Callable[[], float] = 0.0,
        floor: float = 0.0,
        at: int = 2,
        now: float = 0.0,
        value_per_click: float = 0.0,
        cpc_goal: float = 0.0,
        day_elapsed: float = 0.0,
        budget: BudgetView | Callable[[], BudgetView] | None = None,
        campaign: str = "",
        creative: Any = None,
        request: BidRequest | None = None,
        imp: Imp | None = None,
    ) -> None:
        #: OpenRTB auction type: 1 = first price, 2 = second price.
        self.at = at
        #: The imp's floor, CPM.
        self.floor = floor
        #: The bidder's clock (unix seconds).
        self.now = now
        #: What a click is worth to the campaign, and the cost per click it aims at (money).
        self.value_per_click = value_per_click
        self.cpc_goal = cpc_goal
        #: The share of the campaign's day gone by, in [0, 1).
        self.day_elapsed = day_elapsed
        #: The campaign's id and the creative that would serve (``.id``, ``.w``, ``.h``, ``.cat``).
        self.campaign = campaign
        self.creative = creative
        self.request = request
        self.imp = imp
        #: Set by the strategy to keep something with the bid; its hooks get it back as ``bid.note``.
        self.note: Any = None
        self._pctr: float | None = None
        self._pctr_fn: Callable[[Any], float] | None = None
        if callable(pctr):
            fn = pctr
            self._pctr_fn = lambda _creative: fn()
        else:
            self._pctr = pctr
        self._budget: BudgetView | None = None
        self._budget_fn: Callable[[str, int], BudgetView] | None = None
        self._day = 0
        if callable(budget):
            get = budget
            self._budget_fn = lambda _campaign, _day: get()
        else:
            self._budget = budget

    @property
    def first_price(self) -> bool:
        return self.at == 1

    @property
    def pctr(self) -> float:
        """The predicted probability of a click on this impression (the DSP's CTR model)."""
        p = self._pctr
        if p is None:
            fn = self._pctr_fn
            p = self._pctr = fn(self.creative) if fn is not None else 0.0
        return p

    @property
    def budget(self) -> BudgetView | None:
        """The campaign's budget today (CPM micro-units; see :mod:`dsp.state`), or None if unknown."""
        b = self._budget
        if b is None and self._budget_fn is not None:
            b = self._budget = self._budget_fn(self.campaign, self._day)
        return b

    @property
    def daily_budget(self) -> float | None:
        """Today's budget in money, or None without a daily budget."""
        b = self.budget
        return money(b.daily) if b is not None and b.daily else None

    @property
    def spent_today(self) -> float:
        b = self.budget
        return money(b.spent_today) if b is not None else 0.0

    @property
    def remaining_today(self) -> float | None:
        """Money left today after spend and bids in flight; None without a daily budget."""
        b = self.budget
        r = b.remaining_today if b is not None else None
        return None if r is None else money(r)

    @property
    def remaining_total(self) -> float | None:
        b = self.budget
        r = b.remaining_total if b is not None else None
        return None if r is None else money(r)

    @property
    def floor_micros(self) -> int:
        return round(self.floor * MICROS)

    def _point(
        self,
        campaign: str,
        creative: Any,
        value_per_click: float,
        cpc_goal: float,
        day_elapsed: float,
        day: int,
    ) -> None:
        """Re-point the context at another campaign (the bidder's use; cheap)."""
        self.campaign = campaign
        self.creative = creative
        self.value_per_click = value_per_click
        self.cpc_goal = cpc_goal
        self.day_elapsed = day_elapsed
        self.note = None
        self._pctr = None
        self._budget = None
        self._day = day


class PricingStrategy(Parameterized):
    """Base class of pricing strategies (see the module docstring).

    Hooks get the notice's :class:`~exchange.feedback.AuctionEvent` and the bid's
    :class:`~dsp.state.Reservation`: what was bid (``bid_micros``), when (``ts``), the pCTR it
    was priced with (``pctr``, None if ``price`` did not read it) and the strategy's own ``note``.
    """

    rng_: random.Random

    def reset(self, seed: int | None = None) -> None:
        """Start a run: seed ``self.rng_`` and clear learnt state (extend it: call super first)."""
        self.rng_ = random.Random(seed)

    def price(self, ctx: BidContext) -> float | None:
        """The CPM to bid for this opportunity, or None for no bid."""
        raise NotImplementedError(f"{type(self).__name__} must implement price(ctx)")

    @noop_hook
    def on_win(self, event: AuctionEvent, bid: Reservation) -> None:
        """The bid won (``event.price``: the clearing price, CPM)."""

    @noop_hook
    def on_loss(self, event: AuctionEvent, bid: Reservation) -> None:
        """The bid lost (``event.loss``: the reason code; ``event.min_to_win`` when known)."""

    @noop_hook
    def on_billing(self, event: AuctionEvent, bid: Reservation) -> None:
        """The impression rendered and was charged ``event.price`` (CPM)."""

    @noop_hook
    def on_click(self, event: AuctionEvent, bid: Reservation) -> None:
        """The impression was clicked."""

    @noop_hook
    def on_conversion(self, event: AuctionEvent, bid: Reservation) -> None:
        """The impression led to a conversion."""
