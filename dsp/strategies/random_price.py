"""``random``: a CPM drawn uniformly in [low, high] (a baseline in the RTB literature)."""

from __future__ import annotations

import logging

from dsp.strategy import BidContext, PricingStrategy

log = logging.getLogger(__name__)


class RandomPrice(PricingStrategy):
    """bid ~ U(``low``, ``high``), drawn from ``self.rng_``: the same seed gives the same bids."""

    def __init__(self, *, low: float = 0.1, high: float = 2.0) -> None:
        self.low = low
        self.high = high

    def price(self, ctx: BidContext) -> float | None:
        return self.rng_.uniform(self.low, self.high)
