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
from dsp.response import CURRENCY, may_bid
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
        adomain, cat = self.adomain, self.cat  # each one string or several: as tuples
        adomain = (adomain,) if isinstance(adomain, str) else tuple(adomain)
        cat = (cat,) if isinstance(cat, str) else tuple(cat)
        if not may_bid(request, seat=self.seat, adomain=adomain, cat=cat):
            return None
        bids = []
        for imp in request.imp:
            if imp.private or "banner" not in imp.media:  # open_banner_imps(), inlined: hot path
                continue
            price = self.price_for(request, imp)
            if not math.isfinite(price):
                continue
            micros = round(price * MICROS)
            if micros <= 0 or micros < imp.floor_micros:
                continue
            w, h = (imp.w, imp.h) if imp.w and imp.h else DEFAULT_SIZE
            # make_bid(request, imp, price=, adm=, crid=, adomain=, cat=, w=, h=) and
            # make_response(), built inline as the campaign bidder does (hot path);
            # tests/dsp/test_bidders.py checks they are the helpers' dicts
            bids.append(
                {
                    "id": f"{request.id}-{imp.id}",
                    "impid": imp.id,
                    "price": micros / MICROS,
                    "adm": banner_html(self.advertiser, w, h),
                    "adid": self.crid,
                    "crid": self.crid,
                    "adomain": list(adomain),
                    "cat": list(cat),
                    "w": w,
                    "h": h,
                }
            )
        if not bids:
            return None
        return {"id": request.id, "cur": CURRENCY, "seatbid": [{"seat": self.seat, "bid": bids}]}
