"""The shared shape of the simple built-in bidders: one HTML banner, open auctions, floors kept.

A subclass stores ``seat``, ``advertiser``, ``adomain``, ``crid`` and ``cat`` as constructor
parameters and says what to pay for an imp in :meth:`BannerBidder.price_for`; the rest (which imps,
floors, blocked seats/advertisers/categories, the creative, the response) is here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from dsp.bidder import Bidder
from dsp.creative import DEFAULT_SIZE, banner_html
from dsp.response import make_bid, make_response, may_bid, open_banner_imps
from exchange.openrtb import MICROS, BidRequest, Imp

log = logging.getLogger(__name__)


class BannerBidder(Bidder):
    """Bids on every open-auction banner imp whose floor its price reaches; skips the others."""

    seat: str
    advertiser: str
    adomain: str | Sequence[str]
    crid: str
    cat: str | Sequence[str]

    def price_for(self, request: BidRequest, imp: Imp) -> float:
        """The CPM to bid on ``imp`` (called once per open banner imp, in request order)."""
        raise NotImplementedError(f"{type(self).__name__} must implement price_for(request, imp)")

    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        adomain, cat = _strs(self.adomain), _strs(self.cat)
        if not may_bid(request, seat=self.seat, adomain=adomain, cat=cat):
            return None
        bids = []
        for imp in open_banner_imps(request):
            price = self.price_for(request, imp)
            if not math.isfinite(price):
                continue
            micros = round(price * MICROS)
            if micros <= 0 or micros < imp.floor_micros:
                continue
            w, h = (imp.w, imp.h) if imp.w and imp.h else DEFAULT_SIZE
            bids.append(
                make_bid(
                    request,
                    imp,
                    price=micros / MICROS,
                    adm=banner_html(self.advertiser, w, h),
                    crid=self.crid,
                    adomain=adomain,
                    cat=cat,
                    w=w,
                    h=h,
                )
            )
        return make_response(request, bids, seat=self.seat)


def _strs(value: str | Sequence[str]) -> tuple[str, ...]:
    """A parameter holding one string or several, as a tuple."""
    return (value,) if isinstance(value, str) else tuple(value)
