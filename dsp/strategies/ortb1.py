"""``ortb1``: optimal real-time bidding, first form.

    b(theta) = sqrt(c / lambda x theta + c^2) - c

Zhang, Yuan, Wang, "Optimal real-time bidding for display advertising", KDD 2014 (ORTB1): the
bid that maximises the KPI (here clicks, theta = pCTR) under a budget, when the win rate is
w(b) = b / (c + b). ``c`` (CPM) fits the market's win-rate curve and ``lam`` (lambda) is the
Lagrange multiplier of the budget constraint: a larger ``lam`` bids lower. The bid is concave in
theta: it favours many cheap impressions over a few expensive ones.
"""

from __future__ import annotations

import logging
import math

from dsp.strategy import BidContext, PricingStrategy

log = logging.getLogger(__name__)


class Ortb1(PricingStrategy):
    """bid = sqrt(``c`` / ``lam`` x pCTR + ``c``^2) - ``c``."""

    def __init__(self, *, c: float = 2.0, lam: float = 1e-4) -> None:
        self.c = c
        self.lam = lam

    def price(self, ctx: BidContext) -> float | None:
        c, lam = self.c, self.lam
        if c <= 0 or lam <= 0:
            return None
        return math.sqrt(c / lam * ctx.pctr + c * c) - c
