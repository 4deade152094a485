"""``truthful``: bid the expected value of the impression.

    bid (CPM) = 1000 x value_per_click x pCTR

In a second-price auction bidding one's true value is a dominant strategy (Vickrey, 1961); with
value per click ``v`` and click probability pCTR, an impression is worth ``v x pCTR``, a thousand
of them ``1000 x v x pCTR``.
"""

from __future__ import annotations

import logging

from dsp.strategy import BidContext, PricingStrategy

log = logging.getLogger(__name__)


class Truthful(PricingStrategy):
    """bid = 1000 x ``value`` x pCTR; ``value`` None = the campaign's ``value_per_click``."""

    def __init__(self, *, value: float | None = None) -> None:
        self.value = value

    def price(self, ctx: BidContext) -> float | None:
        value = ctx.value_per_click if self.value is None else self.value
        if not value:
            return None
        return 1000.0 * value * ctx.pctr
