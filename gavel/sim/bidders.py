"""``StrategyBidder``: the simplest DSP of an experiment, one pricing strategy on every banner imp.

It bids the strategy's price (``dsp.strategy.PricingStrategy.price``) for every open banner imp
whose floor it reaches, with a pCTR from the world's ground truth (``pctr = "oracle"``: the oracle
the issue's research baselines use) or a constant, for an ad of one IAB category. Its budget is
kept in CPM micro-units, charged at the win (as the iPinYou protocol does): it never bids more than
what is left, so its spend never passes the budget. The simulator prices whole batches of it with
numpy (:mod:`gavel.sim.vector`) when its strategy has a formula; this class is the per-request
path, and what any other exchange (or ``gavel dsp``) would run.

Feedback reaches the strategy as in a campaign DSP (:mod:`dsp.bidders.campaign`): each bid is
recorded as a :class:`dsp.state.Reservation` (bid, time, pCTR, the strategy's ``note``) and the
strategy's ``on_win``, ``on_loss``, ``on_billing``, ``on_click`` and ``on_conversion`` get the
event with it, so learning strategies (``shading``, ``pid``) learn here too. Only the kinds the
strategy has a hook for are recorded and asked for (:func:`exchange.feedback.listens`): a strategy
that learns nothing costs no record and no event. Bids never answered by a notice (a timeout) are
forgotten after :data:`BID_TTL_S` of the bidder's clock, won ones after :data:`WIN_TTL_S`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from dsp.bidder import Bidder
from dsp.registry import make_strategy
from dsp.state import Reservation
from dsp.strategy import BidContext
from exchange import feedback
from exchange.feedback import AuctionEvent
from exchange.openrtb import MICROS, BidRequest, Imp

Truth = Callable[[BidRequest, Imp, Any], float]
#: Seconds (the bidder's clock) a bid waits for its win or loss notice, then is forgotten.
BID_TTL_S = 60.0
#: Seconds a won bid is kept for its billing, click and conversion notices (attribution window).
WIN_TTL_S = 7 * 86_400.0
_AFTER_WIN = frozenset({feedback.BILLING, feedback.CLICK, feedback.CONVERSION})


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
        # feedback to the strategy: only the kinds it has a hook for
        self.hooks_ = feedback.listens(self.strategy_)
        self.bids_: dict[tuple[str, str], Reservation] = {}  # waiting for a win or loss notice
        self.shown_: dict[tuple[str, str], Reservation] = {}  # won, for later notices
        self.now_ = 0.0
        for kind in (feedback.LOSS, feedback.BILLING, feedback.CLICK, feedback.CONVERSION):
            name = feedback.HOOKS[kind]
            if kind in self.hooks_:  # an instance hook: feedback.listens(self) then sees it
                self.__dict__[name] = self._tell
            else:
                self.__dict__.pop(name, None)

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
        record = bool(self.hooks_)
        if record:
            now = request.ts if request.ts is not None else time.time()
            self._forget(now)
        truth = self.truth if self.pctr == "oracle" else None
        for imp in request.imp:
            if imp.private or "banner" not in imp.media:
                continue
            ctx = BidContext(
                # the oracle is asked only if the strategy reads ctx.pctr (reading it changes
                # nothing in the world): constant and random prices cost no ground truth
                pctr=partial(truth, request, imp, self.creative_)
                if truth is not None
                else self.ctr,
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
            bid_id = f"{request.id}-{imp.id}"
            if record:
                pctr = ctx.pctr
                self.bids_[(request.id, bid_id)] = Reservation(
                    key=(request.id, bid_id), campaign=self.seat, bid_micros=micros, ts=now,
                    day=int(now // 86_400), user=(request.user or {}).get("id"), imp_id=imp.id,
                    crid=self.crid, pctr=pctr, note=ctx.note,
                )  # fmt: skip
            bids.append(
                {
                    "id": bid_id,
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
        if self.hooks_:
            self._tell(event)

    def _tell(self, event: AuctionEvent) -> None:
        """Pass ``event`` to the strategy's hook with the bid's record (none: not ours, or too
        old, and the strategy is not told)."""
        key = (event.auction_id, event.bid_id)
        kind = event.kind
        if kind in (feedback.WIN, feedback.LOSS):
            r = self.bids_.pop(key, None)
            if r is not None and kind == feedback.WIN:
                if event.price is not None:
                    r.price_micros = round(event.price * MICROS)
                if self.hooks_ & _AFTER_WIN:
                    self.shown_[key] = r
        else:
            r = self.shown_.get(key)
            if r is not None and kind == feedback.CLICK:
                r.clicks += 1
        if r is not None and kind in self.hooks_:
            getattr(self.strategy_, feedback.HOOKS[kind])(event, r)

    def _forget(self, now: float) -> None:
        """Drop records past their time (dicts keep insertion order: the oldest come first)."""
        self.now_ = max(self.now_, now)
        for store, ttl in ((self.bids_, BID_TTL_S), (self.shown_, WIN_TTL_S)):
            while store:
                key = next(iter(store))
                if store[key].ts + ttl >= self.now_:
                    break
                del store[key]
