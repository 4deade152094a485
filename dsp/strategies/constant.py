"""``constant``: the same CPM for every opportunity (the classic fixed-CPM buy)."""

from __future__ import annotations

import logging

from dsp.strategy import BidContext, PricingStrategy

log = logging.getLogger(__name__)


class ConstantPrice(PricingStrategy):
    """bid = ``cpm``, whatever the opportunity."""

    def __init__(self, *, cpm: float = 1.0) -> None:
        self.cpm = cpm

    def price(self, ctx: BidContext) -> float | None:
        return self.cpm
