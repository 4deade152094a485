"""The in-process exchange loop: the world's ad requests through the live rules, in virtual time.

For each ad request of a traffic batch, in time order (:meth:`Market.run_batch`):

1. the world's ``/ad`` body becomes the SSP's OpenRTB request (:func:`ssp.adrequest.to_openrtb`,
   then :func:`exchange.openrtb.parse_bid_request`), with the experiment's auction type and floors;
2. each DSP's call outcome is drawn from its latency model against the bidder's time
   (:mod:`gavel.sim.latency`); a DSP that answers in time has its answer validated by
   :func:`exchange.bids.parse_bid_response`; a late answer is computed (the DSP did the work) and
   discarded as a timeout; hangs, errors and garbage never reach the bidder, as behind ``gavel dsp``;
3. each imp is auctioned by :func:`exchange.auction.run_auction`; win and loss events
   (:class:`exchange.feedback.AuctionEvent`, loss code and ``min_to_win``) go to the bidders'
   hooks; the world's :class:`ssp.world.render.Renderer` says whether the ad was seen (billing
   event), clicked (click event) and bought later (a conversion, delivered when the virtual clock
   reaches it, as a ``/pixel`` conversion to bidders that take pixels, else ``on_conversion``);
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
from exchange.openrtb import MICROS, BidRequest, parse_bid_request
from exchange.settings import ExchangeSettings
from gavel.sim.latency import ERROR, INVALID, OK, TIMEOUT, LatencyModel, bidder_budget_s
from gavel.sim.metrics import BIN_CPM, N_BINS, DspTally, MarketTally
from gavel.sim.requests import PageView, RequestBuilder
from ssp.adrequest import parse_ad_request, to_openrtb
from ssp.world import taxonomy
from ssp.world.render import Conversion, Renderer
from ssp.world.traffic import PIXEL_EVENTS, Batch
from ssp.world.world import SimWorld

log = logging.getLogger(__name__)
_BIN = round(BIN_CPM * MICROS)


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
        request = self._request(body, rid, slot)
        t.auctions += 1
        bids: list[Bid] = []
        for d, outcome in zip(self.dsps, outcomes, strict=True):
            tally = d.tally
            tally.requests += 1
            if outcome in (OK, TIMEOUT):
                answer = _call(d.bidder, request)
                if outcome == TIMEOUT:
                    tally.timeouts += 1
                    continue
                if answer is _FAILED:
                    tally.errors += 1
                    continue
                got, _dropped = parse_bid_response(answer, request, d.name)
                if got:
                    tally.bids += 1
                    for b in got:
                        tally.bid_hist[min(b.price_micros // _BIN, N_BINS - 1)] += 1
                    bids += got
                elif _dropped:
                    tally.invalid += 1
                else:
                    tally.nobids += 1
            elif outcome == ERROR:
                tally.errors += 1
            elif outcome == INVALID:
                tally.invalid += 1
            else:  # a hang: the DSP never answers, its bidder is never called
                tally.timeouts += 1
        by_imp = group_by_imp(bids)
        hour = t.hour(ts)
        for imp in request.imp:
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
            t.price_hist[min(price // _BIN, N_BINS - 1)] += 1
            d = self.by_name[w.bidder]
            d.tally.wins += 1
            d.tally.won_cost += price
            d.tally.win_hist[min(w.price_micros // _BIN, N_BINS - 1)] += 1
            d.tally.price_hist[min(price // _BIN, N_BINS - 1)] += 1
            self._event(w, feedback.WIN, rid, price, loss.WON, price)
            self._render(d, w, rid, price, user, slot, ts, hour)

    def _render(
        self, d: SimDsp, w: Bid, rid: str, price: int, user: int, slot: int, ts: float, hour: int
    ) -> None:
        answer = {"adomain": list(w.adomain), "cat": list(w.cat), "crid": w.crid, "w": w.w,
                  "h": w.h, "bidder": w.bidder, "auction": rid, "imp": w.impid, "bid_id": w.id}  # fmt: skip
        out = self.renderer.render(user=user, slot=slot, ts=ts, answer=answer)
        if not out.viewed:
            return
        tally = d.tally
        tally.impressions += 1
        tally.spend += price
        tally.add_spend(hour, price)
        self._event(w, feedback.BILLING, rid, price, loss.WON, price)
        if out.clicked:
            tally.clicks += 1
            self._event(w, feedback.CLICK, rid, price, loss.WON, price)
        if out.conversion is not None:
            self._seq += 1
            heapq.heappush(self.conversions, (out.conversion.ts, self._seq, out.conversion))

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


def _call(bidder: Any, request: Any) -> Any:
    """The bidder's answer; a coroutine (``async def bid``) is driven to its end without a loop."""
    try:
        answer = bidder.bid(request)
        if hasattr(answer, "send"):
            try:
                answer.send(None)
            except StopIteration as stop:
                return stop.value
            answer.close()
            log.warning("an async bidder awaited something: the simulator has no event loop")
            return _FAILED
        return answer
    except Exception:  # a bidder raising is an error outcome, as live
        log.debug("bidder raised", exc_info=True)
        return _FAILED
