"""``constant``: the same price on every banner imp whose floor it reaches."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dsp.bidders.banner import BannerBidder
from exchange.openrtb import BidRequest, Imp

log = logging.getLogger(__name__)


class ConstantBidder(BannerBidder):
    """Bids ``price`` (CPM) on every open banner imp whose floor is at or below it."""

    def __init__(
        self,
        *,
        price: float = 1.0,
        seat: str = "constant",
        advertiser: str = "Constant Shoes",
        adomain: str | Sequence[str] = ("constant-shoes.example",),
        crid: str = "constant-banner-1",
        cat: str | Sequence[str] = ("IAB18",),
    ) -> None:
        self.price = price
        self.seat = seat
        self.advertiser = advertiser
        self.adomain = adomain
        self.crid = crid
        self.cat = cat

    def price_for(self, request: BidRequest, imp: Imp) -> float:
        return self.price
