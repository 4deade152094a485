"""``campaign``: the standard campaign bidder, serving the campaigns of a campaign file.

For each open-auction banner imp it finds the campaigns the request can go to (targeting through
the :mod:`dsp.index`, then flight dates, dayparts in the user's local time, geofences, frequency
caps, retargeting lists, budgets and pacing), asks each one's pricing strategy for a price, and bids
the highest, after reserving its price against that campaign's budget (:mod:`dsp.state`). Notices
settle the reservation: a win holds the clearing price, billing spends it and counts the
impression for frequency caps, a loss or silence past the TTL releases it. Clicks train the CTR
model. ``/pixel`` events feed retargeting lists and conversions; ``/stats`` reports per campaign.

The clock is the request's event time (``ext.gavel.ts``) when it has one, else the wall clock;
notices, which carry no time, use the latest request time seen (a simulated world's "now").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dsp import clock
from dsp.bidder import Bidder
from dsp.bidders.campaign_report import build_stats, record_pixel
from dsp.bidders.campaign_turn import PctrCache, Turn, imp_sizes
from dsp.campaign import Campaign, Creative, compile_campaigns
from dsp.config import DspConfig, load_dsp_config
from dsp.ctr import CtrModel, Truth, make_ctr_model
from dsp.index import bits
from dsp.memory_state import MemoryState
from dsp.pacing import BID, THROTTLE
from dsp.pixel import PixelEvent
from dsp.registry import load_object
from dsp.response import make_response
from dsp.state import CampaignState, Reservation
from dsp.strategy import BidContext
from dsp.targeting import RequestFacts, read_request
from exchange.config import ConfigError
from exchange.feedback import CONVERSION, HOOKS, AuctionEvent, listens
from exchange.openrtb import MICROS, BidRequest, Imp

log = logging.getLogger(__name__)


class CampaignBidder(Bidder):
    """Serves the campaigns of ``config`` (a campaign file's path, or the same as a mapping).

    ``ctr`` replaces the file's CTR model with a model object (a trained one, say); ``truth`` is
    the ground truth an ``oracle`` model reads (``truth(request, imp, creative) -> float``);
    ``state`` shares budgets, frequency and audiences (default: a fresh
    :class:`~dsp.memory_state.MemoryState` per run). An injected ``ctr`` or ``state`` is used as
    it is: ``reset`` does not clear it.
    """

    def __init__(
        self,
        *,
        config: str | Path | Mapping[str, Any] | DspConfig = "",
        ctr: CtrModel | None = None,
        truth: Truth | None = None,
        state: CampaignState | None = None,
    ) -> None:
        self.config = config
        self.ctr = ctr
        self.truth = truth
        self.state = state

    # -- the run -----------------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        cfg = load_dsp_config(self.config)
        self.settings_ = cfg.dsp
        self.seat_ = cfg.dsp.seat_id
        try:
            self.campaigns_, self.index_ = compile_campaigns(cfg.campaigns)
            for c in self.campaigns_:
                try:
                    c.strategy.reset(None if seed is None else seed * 1_000_003 + c.index)
                except ValueError as exc:
                    raise ConfigError(f"campaign {c.id!r}: {exc}") from None
        except ValueError as exc:  # a strategy's name or parameters: say which file
            source = self.config if isinstance(self.config, str | Path) else "campaign config"
            raise ConfigError(f"{source}: {exc}") from None
        self.by_id_ = {c.id: c for c in self.campaigns_}
        #: What the pricing loop reads of each campaign, in one tuple (one unpack, not 8 lookups).
        self.hot_ = [
            (
                c,
                c.first_creative,
                c.utcoffset,
                c.strategy.price,
                c.paced and c.pacer.mode == BID,
                c.max_bid_micros,
                c.value_per_click,
                c.cpc_goal,
            )
            for c in self.campaigns_
        ]
        #: Campaigns with targeting the index cannot do (see ``_special``), as a bit mask.
        self.special_ = sum(c.bit for c in self.campaigns_ if c.special)
        self.by_advertiser_: dict[str, list[Campaign]] = {}
        for c in self.campaigns_:
            self.by_advertiser_.setdefault(c.adomain, []).append(c)
        self.hooks_ = {c.id: listens(c.strategy) for c in self.campaigns_}
        if self.ctr is not None:
            self.ctr_: CtrModel = self.ctr
        else:
            self.ctr_ = self._make_ctr(cfg)
            self.ctr_.reset(seed)
        #: pCTRs can be shared by creatives of the same categories (the model reads no more).
        self._by_category = bool(getattr(self.ctr_, "by_category", False))
        self.state_ = self.state if self.state is not None else MemoryState()
        for c in self.campaigns_:
            self.state_.open(c.id, total=c.budget_total, daily=c.budget_daily)
        self.clock_: float | None = None
        self.pixels_: dict[str, int] = {}
        self.ctx_ = BidContext()
        self.ctx_._budget_fn = self.state_.budget

    def _make_ctr(self, cfg: DspConfig) -> CtrModel:
        s = cfg.dsp.ctr
        truth = self.truth
        if truth is None and s.truth:
            truth = load_object(s.truth, what="dsp.ctr.truth")
        return make_ctr_model(
            s.model,
            ctr=s.ctr,
            learning_rate=s.learning_rate,
            l2=s.l2,
            bits=s.bits,
            truth=truth,
        )

    def now(self) -> float:
        """The bidder's clock between requests: the latest request time, or the wall clock."""
        return self.clock_ if self.clock_ is not None else time.time()

    # -- bidding -----------------------------------------------------------------------------------

    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        now = request.ts
        if now is None:
            now = time.time()
        else:
            self.clock_ = now
        seat = self.seat_
        if request.cur and self.settings_.currency not in request.cur:
            return None
        if seat in request.bseat or (request.wseat and seat not in request.wseat):
            return None
        for r in self.state_.sweep(now):
            r.features = r.note = None  # expired: nothing more will be learnt from it
        facts = read_request(request)
        index = self.index_
        eligible, needs_fence = index.match(facts, request.badv)
        if not eligible:
            return None
        imps = []
        wanted = 0
        for imp in request.imp:
            if imp.private or "banner" not in imp.media:
                continue
            sizes = imp_sizes(imp)
            m = eligible & index.size_mask(sizes)
            if m:
                imps.append((imp, sizes, m))
                wanted |= m
        turn = Turn(now)
        special = wanted & self.special_
        if special:
            campaigns = self.campaigns_
            for i in bits(special):
                if not self._special(campaigns[i], needs_fence, facts, turn):
                    wanted &= ~(1 << i)
        if not wanted:
            return None
        bids = []
        for imp, sizes, m in imps:
            if m & wanted:
                bid = self._bid_imp(request, imp, sizes, m & wanted, facts, turn)
                if bid is not None:
                    bids.append(bid)
        return make_response(request, bids, seat=seat, cur=self.settings_.currency)

    def _special(self, c: Campaign, needs_fence: int, facts: RequestFacts, turn: Turn) -> bool:
        """The targeting the index cannot do: flight dates, geofences, dayparts, and for campaigns
        that need the user, frequency caps and retargeting."""
        now = turn.now
        if (c.start is not None or c.end is not None) and not c.live(now):
            return False
        if c.bit & needs_fence:
            lat, lon = facts.lat, facts.lon
            assert lat is not None and lon is not None  # the index asks only when both are known
            for fence in c.fences:
                if fence.contains(lat, lon):
                    break
            else:
                return False
        if c.dayparts is not None:
            offset = facts.utcoffset if facts.utcoffset is not None else c.utcoffset
            if not c.dayparts.contains(turn.minute_of_week(offset)):
                return False
        if not c.needs_user:
            return True
        user = facts.user
        if user is None:
            return False
        state = self.state_
        if c.per_hour or c.per_day:
            day = turn.zone(c.utcoffset)[0]
            n_hour, n_day = state.frequency(c.id, user, clock.hour_index(now), day)
            if (c.per_hour and n_hour >= c.per_hour) or (c.per_day and n_day >= c.per_day):
                return False
        window = c.audience_window_s
        return window is None or state.in_audience(c.adomain, user, now - window, c.audience_cats)

    def _admit(self, c: Campaign, turn: Turn) -> bool:
        """Budget and pacing: whether ``c`` may bid now (decided once per request)."""
        done = turn.admitted.get(c.index)
        if done is not None:
            return done
        day, share = turn.zone(c.utcoffset)
        total, daily, spent, spent_today, held = self.state_.budget(c.id, day)
        ok = not (total and spent + held >= total) and not (daily and spent_today + held >= daily)
        if ok and c.paced:
            pacer = c.pacer
            pacer.observe(day, share, spent_today, daily)
            ok = pacer.allows(share, spent_today + held, daily) and (
                pacer.mode != THROTTLE or self.rng_.random() < pacer.rate_
            )
        turn.admitted[c.index] = ok
        return ok

    def _bid_imp(
        self,
        request: BidRequest,
        imp: Imp,
        sizes: list[tuple[int, int]],
        mask: int,
        facts: RequestFacts,
        turn: Turn,
    ) -> dict[str, Any] | None:
        """Price every targeted campaign for ``imp``, then bid the best one that its budget and
        pacing admit and whose price its budget can hold."""
        floor = imp.floor_micros
        bcat, badv = request.bcat, request.badv
        now = turn.now
        pctrs = PctrCache(
            model=self.ctr_,
            by_category=self._by_category,
            request=request,
            imp=imp,
            facts=facts,
            now=now,
        )
        ctx = self.ctx_  # one context, re-pointed: bid() is synchronous, nothing interleaves
        ctx.request = request
        ctx.at = request.at
        ctx.now = now
        ctx.imp = imp
        ctx.floor = imp.bidfloor
        ctx._pctr_fn = pctrs
        point = ctx._point
        zones = turn.zones
        plain = not bcat and not badv and len(sizes) == 1
        size = sizes[0]
        hot = self.hot_
        candidates: list[tuple[int, int, Campaign, Creative, Any, float | None]] = []
        m = mask
        while m:  # the set bits of the mask, lowest first (as dsp.index.bits, inlined: hot loop)
            low = m & -m
            m ^= low
            i = low.bit_length() - 1
            c, first, offset, price_of, bid_paced, max_bid, value, goal = hot[i]
            creative = first.get(size) if plain else c.creative_for(sizes, bcat, badv)
            if creative is None:
                continue
            z = zones.get(offset)
            day, share = z if z is not None else turn.zone(offset)
            point(c.id, creative, value, goal, share, day)
            price = price_of(ctx)
            if price is None or not (price > 0 and price < _INF):
                continue
            if bid_paced:
                price *= c.pacer.multiplier_
            micros = round(price * MICROS)
            if max_bid and micros > max_bid:
                micros = max_bid
            if micros <= 0 or micros < floor:
                continue
            candidates.append((micros, -i, c, creative, ctx.note, ctx._pctr))
        candidates.sort(reverse=True)  # by price, then file order: (micros, -i) never tie
        for micros, _, c, creative, note, pctr in candidates:
            if not self._admit(c, turn):
                continue
            bid_id = f"{request.id}-{imp.id}"  # as dsp.response.bid_id; built inline (hot path)
            bid = {
                "id": bid_id,
                "impid": imp.id,
                "price": micros / MICROS,
                "adm": creative.adm,
                "adid": creative.id,
                "crid": creative.id,
                "adomain": list(creative.adomain),
                "cat": list(creative.cat),
                "w": creative.w,
                "h": creative.h,
            }
            reservation = Reservation(
                key=(request.id, bid_id),
                campaign=c.id,
                bid_micros=micros,
                ts=now,
                day=turn.zone(c.utcoffset)[0],
                user=facts.user,
                imp_id=imp.id,
                crid=creative.id,
                pctr=pctr,
                features=pctrs.features(creative),
                note=note,
            )
            if self.state_.reserve(reservation, now=now, ttl=self.settings_.bid_ttl_s):
                self.state_.add(c.id, "bids")
                return bid
        return None

    # -- feedback ----------------------------------------------------------------------------------

    def on_win(self, event: AuctionEvent) -> None:
        price = _micros(event.price)
        if price is None:  # notices without a price are refused upstream (dsp.notices)
            return
        key = (event.auction_id, event.bid_id)
        r = self.state_.win(key, price, now=self.now(), ttl=self.settings_.win_ttl_s)
        self._tell(r, event)

    def on_loss(self, event: AuctionEvent) -> None:
        r = self.state_.release((event.auction_id, event.bid_id))
        if r is not None:
            self.state_.add(r.campaign, "losses")
            self._tell(r, event)
            r.features = r.note = None  # a lost bid's record keeps no more than it needs

    def on_billing(self, event: AuctionEvent) -> None:
        price = _micros(event.price)
        if price is None:
            return
        r = self.state_.bill((event.auction_id, event.bid_id), price)
        if r is None:
            return
        if r.features is not None:
            self.ctr_.learn(r.features, False)
        self._tell(r, event)

    def on_click(self, event: AuctionEvent) -> None:
        r = self.state_.shown((event.auction_id, event.bid_id))
        if r is None:
            return
        self.state_.add(r.campaign, "clicks")
        r.clicks += 1
        if r.clicks == 1 and r.features is not None:
            self.ctr_.learn(r.features, True)
        self._tell(r, event)

    def on_conversion(self, event: AuctionEvent) -> None:
        r = self.state_.shown((event.auction_id, event.bid_id))
        if r is None:
            return
        self.state_.add(r.campaign, "conversions")
        self._tell(r, event)

    def _tell(self, r: Reservation | None, event: AuctionEvent) -> None:
        """Pass the event to the strategy of the bid's campaign, if it listens."""
        if r is None:
            return
        c = self.by_id_.get(r.campaign)
        if c is not None and event.kind in self.hooks_[c.id]:
            getattr(c.strategy, HOOKS[event.kind])(event, r)

    # -- pixels and stats --------------------------------------------------------------------------

    def pixel(self, event: PixelEvent) -> bool:
        """An advertiser-site event (see :mod:`dsp.pixel`); False if no campaign serves that
        advertiser (the pixel is then ignored)."""
        return record_pixel(self, event)

    def conversion_event(self, r: Reservation) -> AuctionEvent:
        """The conversion event of an impression, as the hooks get it."""
        return AuctionEvent(kind=CONVERSION, auction_id=r.key[0], imp_id=r.imp_id, bid_id=r.key[1])

    def stats(self) -> dict[str, Any]:
        """Per campaign: bids, wins, impressions, clicks, conversions, spend, remaining budgets."""
        return build_stats(self)


def _micros(price: float | None) -> int | None:
    if price is None or not math.isfinite(price) or price < 0:
        return None
    return round(price * MICROS)


_INF = math.inf
