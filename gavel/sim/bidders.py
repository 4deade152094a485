"""``StrategyBidder``: the simplest DSP of an experiment, one pricing strategy on every banner imp.

It bids the strategy's price (``dsp.strategy.PricingStrategy.price``) for every open banner imp
whose floor it reaches, with a pCTR from the world's ground truth (``pctr = "oracle"``: the oracle
the issue's research baselines use) or a constant, for an ad of one IAB category. Its budget is
kept in CPM micro-units, charged at the win (as the iPinYou protocol does): it never bids more than
what is left, so its spend never passes the budget. The simulator prices whole batches of it with
numpy (:mod:`gavel.sim.vector`) when its strategy has a formula; this class is the per-request
path, and what any other exchange (or ``gavel dsp``) would run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dsp.bidder import Bidder
from dsp.registry import make_strategy
from dsp.strategy import BidContext
from exchange.feedback import AuctionEvent
from exchange.openrtb import MICROS, BidRequest, Imp

Truth = Callable[[BidRequest, Imp, Any], float]


class StrategyBidder(Bidder):
    def __init__(
        self,
        *,
        strategy: str = "truthful",
        params: dict[str, Any] | None = None,
        seat: str = "sim",
        adomain: str = "sim.example",
        cat: str = "IAB1",
        value_per_click: float = 1.0,
        budget: float = 0.0,
        max_bid: float = 0.0,
        pctr: str = "oracle",
        ctr: float = 0.001,
        truth: Truth | None = None,
    ) -> None:
        self.strategy = strategy
        self.params = params
        self.seat = seat
        self.adomain = adomain
        self.cat = cat
        self.value_per_click = value_per_click
        self.budget = budget
        self.max_bid = max_bid
        self.pctr = pctr
        self.ctr = ctr
        self.truth = truth

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.strategy_ = make_strategy(self.strategy, self.params or {})
        self.strategy_.reset(seed)
        self.budget_micros_ = round(self.budget * 1000 * MICROS)  # CPM micro-units
        self.max_bid_micros_ = round(self.max_bid * MICROS)
        self.spent_micros_ = 0
        self.creative_ = {"cat": [self.cat], "adomain": [self.adomain], "crid": self.crid}
        self.adm_ = f"<div>{self.adomain}</div>"

    @property
    def crid(self) -> str:
        return f"{self.seat}-ad"

    @property
    def remaining_micros(self) -> int | None:
        """CPM micro-units left, or None without a budget."""
        return self.budget_micros_ - self.spent_micros_ if self.budget_micros_ else None

    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        if request.cur and "USD" not in request.cur:
            return None
        if self.seat in request.bseat or (request.wseat and self.seat not in request.wseat):
            return None
        if self.adomain in request.badv or self.cat in request.bcat:
            return None
        bids = []
        left = self.remaining_micros
        for imp in request.imp:
            if imp.private or "banner" not in imp.media:
                continue
            if self.pctr == "oracle" and self.truth is not None:
                pctr = self.truth(request, imp, self.creative_)
            else:
                pctr = self.ctr
            ctx = BidContext(
                pctr=pctr,
                floor=imp.bidfloor,
                at=request.at,
                now=request.ts or 0.0,
                value_per_click=self.value_per_click,
                cpc_goal=self.value_per_click,
                campaign=self.seat,
                request=request,
                imp=imp,
            )
            price = self.strategy_.price(ctx)
            if price is None or not price > 0:
                continue
            micros = round(price * MICROS)
            if self.max_bid_micros_ and micros > self.max_bid_micros_:
                micros = self.max_bid_micros_
            if micros < imp.floor_micros or (left is not None and micros > left):
                continue
            bids.append(
                {
                    "id": f"{request.id}-{imp.id}",
                    "impid": imp.id,
                    "price": micros / MICROS,
                    "adm": self.adm_,
                    "adid": self.crid,
                    "crid": self.crid,
                    "adomain": [self.adomain],
                    "cat": [self.cat],
                    "w": imp.w,
                    "h": imp.h,
                }
            )
        if not bids:
            return None
        return {"id": request.id, "seatbid": [{"seat": self.seat, "bid": bids}], "cur": "USD"}

    def on_win(self, event: AuctionEvent) -> None:
        if event.price is not None:
            self.spent_micros_ += round(event.price * MICROS)
