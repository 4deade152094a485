"""``lin``: linear bidding on the pCTR.

    bid (CPM) = base_bid x pCTR / avg_CTR

Perlich, Dalessandro, Hook, Stitelman, Raeder, Provost, "Bid optimizing and inventory scoring in
targeted online advertising", KDD 2012: scale a base bid by how much better than average the
opportunity is. An average opportunity gets ``base_bid``.
"""

from __future__ import annotations

import logging

from dsp.strategy import BidContext, PricingStrategy

log = logging.getLogger(__name__)


class Linear(PricingStrategy):
    """bid = ``base_bid`` x pCTR / ``avg_ctr``."""

    def __init__(self, *, base_bid: float = 1.0, avg_ctr: float = 0.001) -> None:
        self.base_bid = base_bid
        self.avg_ctr = avg_ctr

    def price(self, ctx: BidContext) -> float | None:
        if self.avg_ctr <= 0:
            return None
        return self.base_bid * ctx.pctr / self.avg_ctr
