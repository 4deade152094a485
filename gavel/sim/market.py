"""The in-process exchange loop: the world's ad requests through the live rules, in virtual time.

For each ad request of a traffic batch, in time order (:meth:`Market.run_batch`):

1. the world's ``/ad`` body becomes the SSP's OpenRTB request (:func:`ssp.adrequest.to_openrtb`,
   then :func:`exchange.openrtb.parse_bid_request`), with the experiment's auction type and floors;
2. each DSP's call outcome is drawn from its latency model against the bidder's time
   (:mod:`gavel.sim.latency`); a DSP that answers in time has its answer validated by
   :func:`exchange.bids.parse_bid_response` (an answer that is no BidResponse for the request,
   such as a wrong ``id``, counts as invalid, as live); a late answer is computed (the DSP did the
   work) and discarded as a timeout; hangs, errors and garbage never reach the bidder, as behind
   ``gavel dsp``;
3. each imp is auctioned by :func:`exchange.auction.run_auction`; win and loss events
   (:class:`exchange.feedback.AuctionEvent`, loss code and ``min_to_win``) go to the bidders'
   hooks; the world's :class:`ssp.world.render.Renderer` says whether the ad was seen (billing
   event), clicked (click event) and bought later (a conversion, delivered when the virtual clock
   reaches it, as a ``/pixel`` conversion to bidders that take pixels, else ``on_conversion``);
   a billed impression also adds the ground truth's expected clicks and conversions to its DSP's
   tally (:class:`gavel.sim.metrics.DspTally`, ``exp_*``);
4. advertiser pixel events (visits, purchases) reach the DSPs holding the pixel at their time.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsp.pixel import PixelEvent
from exchange import feedback, loss
from exchange.auction import group_by_imp, run_auction
from exchange.bids import Bid, parse_bid_response
from exchange.errors import InvalidResponse
from exchange.openrtb import MICROS, BidRequest, parse_bid_request
from exchange.settings import ExchangeSettings
from gavel.sim.latency import ERROR, INVALID, OK, TIMEOUT, LatencyModel, bidder_budget_s
from gavel.sim.metrics import BIN_CPM, N_BINS, DspTally, MarketTally
from gavel.sim.requests import PageView, RequestBuilder
from ssp.adrequest import parse_ad_request, to_openrtb
from ssp.world import taxonomy
from ssp.world.render import DEFAULT_ORDER_VALUE, Conversion, Renderer
from ssp.world.traffic import PIXEL_EVENTS, Batch
from ssp.world.world import SimWorld

log = logging.getLogger(__name__)
_BIN = round(BIN_CPM * MICROS)
_LAST = N_BINS - 1
_ZEROS = (0,) * N_BINS


@dataclass(slots=True)
class SimDsp:
    """A DSP of a run: its name, bidder object, latency model and tally."""

    name: str
    bidder: Any
    latency: LatencyModel
    tally: DspTally
    rng: np.random.Generator
    listens: frozenset[str] = frozenset()


class Market:
    def __init__(
        self,
        *,
        world: SimWorld,
        dsps: Sequence[SimDsp],
        settings: ExchangeSettings,
        tally: MarketTally,
        at: int = 2,
        floor_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.world = world
        self.dsps = list(dsps)
        self.by_name = {d.name: d for d in self.dsps}
        self.settings = settings
        self.tally = tally
        self.at = at
        self.floor_scale = floor_scale
        self.rng = random.Random(seed)  # the auction's tie-break
        self.renderer = Renderer(world=world, seed=seed)
        self.sites = {s.id: s for s in world.catalog.sites}
        self.budget_s = bidder_budget_s(settings, settings.tmax_ms)
        self.increment = round(settings.increment * MICROS)
        self.conversions: list[tuple[float, int, Conversion]] = []
        self._seq = 0
        for d in self.dsps:
            d.listens = feedback.listens(d.bidder)
        cat = world.catalog
        self.tmax_ms = round(self.budget_s * 1000)
        self.builder = RequestBuilder(
            sites=list(cat.sites),
            slots=list(cat.slots),
            slot_site=cat.slot_site.tolist(),
            currency=settings.currency,
            tmax_ms=self.tmax_ms,
            at=at,
            floor_scale=floor_scale,
        )
        # the DSPs that have a loss hook: no loss event is built for the others
        self._loss_listeners = {d.name for d in self.dsps if feedback.LOSS in d.listens}
        # histogram counts of the current batch, added to the tallies' arrays at its end:
        # per DSP (bids, wins by bid, clearing prices of wins), and the market's prices
        self._hists = [([0] * N_BINS, [0] * N_BINS, [0] * N_BINS) for _ in self.dsps]
        self._hists_of = {d.name: h for d, h in zip(self.dsps, self._hists, strict=True)}
        self._price_hist = [0] * N_BINS
        self._ads: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[int, float]] = {}
        self._interests: dict[int, frozenset[int]] = {}  # a user's interest categories

    # -- the loop ----------------------------------------------------------------------------------

    def run_batch(self, batch: Batch) -> None:
        n = len(batch)
        draws = [d.latency.draw(d.rng, n, self.budget_s).tolist() for d in self.dsps]
        outcomes = list(zip(*draws, strict=True)) if draws else [()] * n
        pixels = batch.pixels
        p = 0
        n_pixels = len(pixels)
        pixel_dues = pixels.due.tolist()
        conversions = self.conversions
        auction = self._auction
        for d in self.dsps:
            d.tally.requests += n  # every DSP is asked for every ad request
        for body, outcome, due, ts, user, slot in zip(
            batch.bodies,
            outcomes,
            batch.due.tolist(),
            batch.ts.tolist(),
            batch.user.tolist(),
            batch.slot.tolist(),
            strict=True,
        ):
            while p < n_pixels and pixel_dues[p] <= due:
                self._pixel(pixels, p)
                p += 1
            if conversions and conversions[0][0] <= ts:
                self.deliver_conversions(ts)
            auction(body, outcome, user, slot, ts)
        while p < n_pixels:
            self._pixel(pixels, p)
            p += 1
        self._flush_hists()

    def _flush_hists(self) -> None:
        """Add the batch's histogram counts (Python lists: cheap per bid) to the tallies."""
        for d, hists in zip(self.dsps, self._hists, strict=True):
            for arr, counts in zip((d.tally.bid_hist, d.tally.win_hist, d.tally.price_hist),
                                   hists, strict=True):  # fmt: skip
                arr += counts
                counts[:] = _ZEROS
        self.tally.price_hist += self._price_hist
        self._price_hist[:] = _ZEROS

    def _request(self, body: PageView | bytes, rid: str, slot: int) -> BidRequest:
        """The OpenRTB request of one ad request: built directly from a :class:`SimTraffic`
        page view, or through the SSP's ``/ad`` parsing for a plain ``/ad`` body."""
        if type(body) is PageView:
            return self.builder.build(rid, body, slot)
        raw = to_openrtb(
            parse_ad_request(body, self.sites),  # type: ignore[arg-type]
            request_id=rid,
            tmax_ms=self.tmax_ms,
            currency=self.settings.currency,
        )
        raw["at"] = self.at
        if self.floor_scale != 1.0:
            for imp in raw["imp"]:
                imp["bidfloor"] = round(imp["bidfloor"] * self.floor_scale, 6)
        return parse_bid_request(raw, currency=self.settings.currency)

    def _auction(
        self, body: PageView | bytes, outcomes: Sequence[int], user: int, slot: int, ts: float
    ) -> None:
        t = self.tally
        rid = f"a{t.auctions:x}"
        if type(body) is PageView:
            request = self.builder.build(rid, body, slot)
        else:
            request = self._request(body, rid, slot)
        t.auctions += 1
        bids: list[Bid] = []
        for d, outcome, hists in zip(self.dsps, outcomes, self._hists, strict=True):
            tally = d.tally
            if outcome in (OK, TIMEOUT):
                try:  # the DSP computes its answer, in time or not
                    answer = d.bidder.bid(request)
                except Exception:  # a bidder raising is an error outcome, as live
                    log.debug("bidder raised", exc_info=True)
                    answer = _FAILED
                if answer is not None and type(answer) is not dict and answer is not _FAILED:
                    answer = _resolve(answer)  # a coroutine (async def bid), or anything else
                if outcome == TIMEOUT:
                    tally.timeouts += 1
                elif answer is None:  # a no-bid: nothing to validate
                    tally.nobids += 1
                elif answer is _FAILED:
                    tally.errors += 1
                else:
                    try:
                        got, dropped = parse_bid_response(answer, request, d.name)
                    except InvalidResponse:  # not a BidResponse at all: invalid, as live
                        tally.invalid += 1
                        continue
                    if got:
                        tally.bids += 1
                        bid_hist = hists[0]
                        for b in got:
                            bid_hist[min(b.price_micros // _BIN, _LAST)] += 1
                        bids += got
                    elif dropped:
                        tally.invalid += 1
                    else:
                        tally.nobids += 1
            elif outcome == ERROR:
                tally.errors += 1
            elif outcome == INVALID:
                tally.invalid += 1
            else:  # a hang: the DSP never answers, its bidder is never called
                tally.timeouts += 1
        imps = request.imp
        # the simulated world's ad requests have one imp each: every valid bid is for it
        by_imp = {imps[0].id: bids} if len(imps) == 1 else group_by_imp(bids)
        for imp in imps:
            t.imps += 1
            res = run_auction(
                imp,
                by_imp.get(imp.id, ()),
                at=self.at,
                rng=self.rng,
                increment_micros=self.increment,
            )
            if self._loss_listeners:
                for b, code in res.losers:
                    if b.bidder in self._loss_listeners:
                        self._event(
                            b, feedback.LOSS, rid, res.price_micros, code, res.min_to_win_micros
                        )
            w = res.winner
            if w is None:
                continue
            price = res.price_micros
            t.filled += 1
            t.price_sum += price
            bin_ = min(price // _BIN, _LAST)
            self._price_hist[bin_] += 1
            d = self.by_name[w.bidder]
            d.tally.wins += 1
            d.tally.won_cost += price
            _, win_hist, price_hist = self._hists_of[w.bidder]
            win_hist[min(w.price_micros // _BIN, _LAST)] += 1
            price_hist[bin_] += 1
            if feedback.WIN in d.listens:
                self._event(w, feedback.WIN, rid, price, loss.WON, price)
            self._render(d, w, rid, price, user, slot, ts)

    def _render(
        self, d: SimDsp, w: Bid, rid: str, price: int, user: int, slot: int, ts: float
    ) -> None:
        answer = {"adomain": list(w.adomain), "cat": list(w.cat), "crid": w.crid, "w": w.w,
                  "h": w.h, "bidder": w.bidder, "auction": rid, "imp": w.impid, "bid_id": w.id}  # fmt: skip
        out = self.renderer.render(user=user, slot=slot, ts=ts, answer=answer)
        if not out.viewed:
            return
        tally = d.tally
        tally.impressions += 1
        tally.spend += price
        tally.add_spend(self.tally.hour(ts), price)
        # the ground truth's expectations (metrics.DspTally.exp_clicks): P(click), and P(click) *
        # P(conversion | click) as the renderer draws it, for this ad (no random draw here)
        ad_cat, order_value = self._ad_of(w)
        x = 0.0  # P(conversion | click) is 0 outside the user's interests (GroundTruth.p_convert)
        if user >= 0 and ad_cat in self._interests_of(user):
            x = out.p_click * self.world.truth.p_convert(user=user, ad_cat=ad_cat, t=ts)
        tally.add_expected(out.p_click, x, x * order_value)
        listens = d.listens
        if feedback.BILLING in listens:
            self._event(w, feedback.BILLING, rid, price, loss.WON, price)
        if out.clicked:
            tally.clicks += 1
            if feedback.CLICK in listens:
                self._event(w, feedback.CLICK, rid, price, loss.WON, price)
        if out.conversion is not None:
            self._seq += 1
            heapq.heappush(self.conversions, (out.conversion.ts, self._seq, out.conversion))

    def _interests_of(self, user: int) -> frozenset[int]:
        found = self._interests.get(user)
        if found is None:
            found = self._interests[user] = frozenset(self.world.population.seg_cat[user].tolist())
        return found

    def _ad_of(self, w: Bid) -> tuple[int, float]:
        """The ad's category index and its advertiser's mean order value, as the renderer
        reads them from the served ad (cached per ``adomain`` and ``cat``)."""
        key = (w.adomain, w.cat)
        found = self._ads.get(key)
        if found is None:
            advertisers = self.world.advertisers
            advertiser = advertisers.find(w.adomain)
            mean = advertiser.order_value if advertiser else DEFAULT_ORDER_VALUE
            found = self._ads[key] = (advertisers.category_of(w.adomain, w.cat), mean)
        return found

    def _event(self, b: Bid, kind: str, rid: str, price: int, code: int, mtw: int) -> None:
        d = self.by_name[b.bidder]
        if kind not in d.listens:
            return
        event = feedback.AuctionEvent(
            kind=kind,
            auction_id=rid,
            imp_id=b.impid,
            bid_id=b.id,
            seat=b.seat,
            ad_id=b.adid,
            price=price / MICROS,
            currency=self.settings.currency,
            loss=code if kind == feedback.LOSS else None,
            min_to_win=mtw / MICROS if kind == feedback.LOSS else None,
        )
        feedback.deliver(d.bidder, event)

    # -- conversions and pixels --------------------------------------------------------------------

    def deliver_conversions(self, until: float) -> None:
        """Purchases after clicks whose time has come: attributed to the DSP that served the ad."""
        heap = self.conversions
        while heap and heap[0][0] <= until:
            _, _, c = heapq.heappop(heap)
            if not self.renderer.convert(c):
                continue  # bought meanwhile: a lost conversion
            d = self.by_name.get(c.bidder)
            if d is None:
                continue
            d.tally.conversions += 1
            d.tally.conversion_value += c.value
            pixel = getattr(d.bidder, "pixel", None)
            if callable(pixel):
                pixel(PixelEvent(event="conversion", user=f"u{c.user}", advertiser=c.advertiser,
                                 category=taxonomy.IDS[c.cat], ts=c.ts, value=c.value,
                                 auction=c.auction, imp=c.imp, bid=c.bid))  # fmt: skip
            elif feedback.CONVERSION in d.listens:
                feedback.deliver(d.bidder, feedback.AuctionEvent(
                    kind=feedback.CONVERSION, auction_id=c.auction, imp_id=c.imp, bid_id=c.bid))  # fmt: skip

    def _pixel(self, pixels: Any, k: int) -> None:
        adv = self.world.advertisers.advertisers[int(pixels.advertiser[k])]
        event = None
        for name in adv.pixel:
            d = self.by_name.get(name)
            take = getattr(d.bidder, "pixel", None) if d is not None else None
            if not callable(take):
                continue
            if event is None:
                kind = PIXEL_EVENTS[int(pixels.kind[k])]
                value = float(pixels.value[k]) if kind == "purchase" else None
                event = PixelEvent(event=kind, user=f"u{int(pixels.user[k])}",
                                   advertiser=adv.domain.lower(), category=adv.cat,
                                   ts=float(pixels.ts[k]), value=value)  # fmt: skip
            take(event)


_FAILED = object()


def _resolve(answer: Any) -> Any:
    """A bidder's answer other than a dict or None: a coroutine (``async def bid``) is driven to
    its end without a loop; anything else is returned as it is, for the validation to judge."""
    try:
        if not hasattr(answer, "send"):
            return answer
        try:
            answer.send(None)
        except StopIteration as stop:
            return stop.value
        answer.close()
    except Exception:  # raised while it ran: an error outcome, as live
        log.debug("bidder raised", exc_info=True)
        return _FAILED
    log.warning("an async bidder awaited something: the simulator has no event loop")
    return _FAILED
