"""``shading``: bid shading for first-price auctions, learnt from win/loss feedback.

In a first-price auction the winner pays its bid, so bidding the full value ``v`` leaves no
surplus. With a bid ``b = s v`` (shading factor ``s`` in (0, 1]) the expected surplus is

    (v - b) x P(win | b) = v x (1 - s) x P(win | s v)

and the strategy bids the factor of a grid that maximises ``(1 - s) x W(s)``, where ``W(s)`` is
a win-rate model per factor. ``W`` starts from the prior W(s) = s (weight ``prior_weight``) and
learns from every notice, counterfactually (the OpenRTB ``min_to_win`` of a loss says which factors
would have won):

- loss with min_to_win m: every factor s_j gets a try, and a win if s_j v >= m;
- loss without it: factors <= the one bid get a loss;
- win: factors >= the one bid get a win (a higher bid would have won too).

``W`` is kept non-decreasing in ``s``. With probability ``explore`` a neighbouring factor is tried.
In a second-price auction (``at`` = 2) the value itself is bid: truthful bidding is dominant there.
The value is ``base_cpm`` when given, else 1000 x value per click x pCTR (``value`` or the
campaign's ``value_per_click``). A shaded bid under the floor is raised to the floor if the value
covers it.
"""

from __future__ import annotations

import logging

from dsp.state import Reservation
from dsp.strategy import BidContext, PricingStrategy
from exchange.feedback import AuctionEvent

log = logging.getLogger(__name__)


class BidShading(PricingStrategy):
    """First price: bid s x value, s maximising (1 - s) x W(s); second price: bid the value."""

    def __init__(
        self,
        *,
        value: float | None = None,
        base_cpm: float | None = None,
        levels: int = 15,
        min_factor: float = 0.3,
        explore: float = 0.05,
        prior_weight: float = 2.0,
    ) -> None:
        self.value = value
        self.base_cpm = base_cpm
        self.levels = levels
        self.min_factor = min_factor
        self.explore = explore
        self.prior_weight = prior_weight

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        n = max(2, int(self.levels))
        lo = self.min_factor
        self.factors_ = [lo + (1.0 - lo) * k / (n - 1) for k in range(n)]
        self.wins_ = [s * self.prior_weight for s in self.factors_]
        self.tries_ = [self.prior_weight] * n

    def value_cpm(self, ctx: BidContext) -> float:
        """The impression's value, CPM."""
        if self.base_cpm is not None:
            return self.base_cpm
        value = ctx.value_per_click if self.value is None else self.value
        return 1000.0 * value * ctx.pctr

    def win_rates(self) -> list[float]:
        """W(s) per factor, made non-decreasing."""
        out, best = [], 0.0
        for w, t in zip(self.wins_, self.tries_, strict=True):
            best = max(best, w / t)
            out.append(best)
        return out

    def best_level(self) -> int:
        rates = self.win_rates()
        return max(range(len(rates)), key=lambda k: (1.0 - self.factors_[k]) * rates[k])

    def price(self, ctx: BidContext) -> float | None:
        v = self.value_cpm(ctx)
        if v <= 0:
            return None
        if not ctx.first_price:
            return v
        k = self.best_level()
        if self.explore and self.rng_.random() < self.explore:
            k = min(len(self.factors_) - 1, max(0, k + self.rng_.choice((-1, 1))))
        ctx.note = [k, v]
        b = self.factors_[k] * v
        if b < ctx.floor:
            return ctx.floor if ctx.floor <= v else None
        return b

    def on_win(self, event: AuctionEvent, bid: Reservation) -> None:
        if not bid.note:
            return
        k = bid.note[0]
        for j in range(k, len(self.factors_)):
            self.wins_[j] += 1
            self.tries_[j] += 1

    def on_loss(self, event: AuctionEvent, bid: Reservation) -> None:
        if not bid.note:
            return
        k, v = bid.note
        m = event.min_to_win
        if m is not None and m > 0:
            for j, s in enumerate(self.factors_):
                self.tries_[j] += 1
                if s * v >= m:
                    self.wins_[j] += 1
        else:
            for j in range(k + 1):
                self.tries_[j] += 1
