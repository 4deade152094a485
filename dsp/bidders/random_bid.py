"""``random``: a price drawn uniformly in ``[low, high]`` for each banner imp, seeded by ``reset``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dsp.bidders.banner import BannerBidder
from exchange.openrtb import BidRequest, Imp

log = logging.getLogger(__name__)


class RandomBidder(BannerBidder):
    """Draws a CPM uniformly in ``[low, high]`` from ``self.rng_`` for every open banner imp (in
    request order, floor or not, so the stream of draws depends only on the requests) and bids it
    where it reaches the floor. The same ``reset(seed)`` gives the same bids."""

    def __init__(
        self,
        *,
        low: float = 0.1,
        high: float = 2.0,
        seat: str = "random",
        advertiser: str = "Random Gadgets",
        adomain: str | Sequence[str] = ("random-gadgets.example",),
        crid: str = "random-banner-1",
        cat: str | Sequence[str] = ("IAB19",),
    ) -> None:
        self.low = low
        self.high = high
        self.seat = seat
        self.advertiser = advertiser
        self.adomain = adomain
        self.crid = crid
        self.cat = cat

    def price_for(self, request: BidRequest, imp: Imp) -> float:
        return round(self.rng_.uniform(self.low, self.high), 6)
