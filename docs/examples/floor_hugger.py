"""A bidder in twenty lines: bid a little over the floor, up to a cap, and learn nothing.

Run it behind a DSP server (from the folder holding this file):

    gavel dsp --port 9001 --strategy floor_hugger:FloorHugger --param margin=0.05 --param cap=2.0
"""

from __future__ import annotations

from dsp.bidder import Bidder
from dsp.creative import banner_html
from dsp.response import make_bid, make_response, may_bid, open_banner_imps


class FloorHugger(Bidder):
    def __init__(self, *, margin: float = 0.05, cap: float = 2.0, seat: str = "hugger") -> None:
        self.margin = margin
        self.cap = cap
        self.seat = seat

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.wins_ = 0

    def bid(self, request):
        if not may_bid(request, seat=self.seat):  # the request's currency, seat blocks
            return None
        bids = []
        for imp in open_banner_imps(request):
            price = imp.bidfloor + self.margin
            if price <= self.cap:
                adm = banner_html("Floor Hugger", imp.w or 300, imp.h or 250)
                bids.append(make_bid(request, imp, price=price, adm=adm, crid="hug-1"))
        return make_response(request, bids, seat=self.seat)

    def on_win(self, event):
        self.wins_ += 1
