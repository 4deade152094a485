"""``mcpc``: bid the campaign's eCPC goal times the pCTR (Mcpc in the RTB literature).

    bid (CPM) = 1000 x eCPC goal x pCTR

An advertiser that will pay up to ``eCPC`` per click can afford ``eCPC x pCTR`` per impression
(the baseline "Mcpc" of Zhang, Yuan, Wang, "Optimal real-time bidding for display advertising",
KDD 2014, and of the iPinYou benchmark).
"""

from __future__ import annotations

import logging

from dsp.strategy import BidContext, PricingStrategy

log = logging.getLogger(__name__)


class Mcpc(PricingStrategy):
    """bid = 1000 x ``ecpc`` x pCTR; ``ecpc`` None = the campaign's ``cpc_goal``."""

    def __init__(self, *, ecpc: float | None = None) -> None:
        self.ecpc = ecpc

    def price(self, ctx: BidContext) -> float | None:
        ecpc = ctx.cpc_goal if self.ecpc is None else self.ecpc
        if not ecpc:
            return None
        return 1000.0 * ecpc * ctx.pctr
