"""The batch path: whole traffic batches priced with numpy, for DSPs whose prices are formulas.

When every DSP of a run is a :class:`~gavel.sim.bidders.StrategyBidder` whose strategy has a
vectorised formula (:mod:`gavel.sim.vector`), a batch of arrivals is priced at once (pCTRs from
:meth:`GroundTruth.p_click_batch`), late and failed calls are drawn from the same latency models,
and the batch is auctioned by :func:`exchange.auction_batch.second_price_batch`, which the exchange's
tests prove equivalent to :func:`exchange.auction.run_auction` for open auctions. Budgets stay
exact: the batch is cut at the first auction where a DSP could no longer afford its bid, and the
rest is re-auctioned without it. Views and clicks come from the same ground truth; two
simplifications against the per-request path, documented in docs/simulation.md: no ad fatigue
(exposures are not counted) and no feedback hooks (these strategies learn nothing).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

import numpy as np

from exchange.auction_batch import second_price_batch
from exchange.openrtb import MICROS
from gavel.sim.bidders import StrategyBidder
from gavel.sim.latency import ERROR, HANG, INVALID, OK, TIMEOUT
from gavel.sim.market import Market, SimDsp
from gavel.sim.metrics import bins_of
from gavel.sim.vector import price_batch, vectorised
from ssp.world import taxonomy
from ssp.world.intent import DORMANT, RESEARCHING
from ssp.world.render import DEFAULT_ORDER_VALUE, Conversion
from ssp.world.traffic import Batch, TrafficGenerator
from ssp.world.truth import GroundTruth

_VALUE_SIGMA = 0.5


class BatchTraffic(TrafficGenerator):
    """The world's traffic without the ``/ad`` JSON bodies, which the batch path never reads."""

    def _bodies(self, *args: Any) -> list[bytes]:
        return []


def batchable(dsps: Sequence[SimDsp]) -> bool:
    return all(type(d.bidder) is StrategyBidder and vectorised(d.bidder.strategy_) for d in dsps)


class BatchMarket(Market):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cat = self.world.catalog
        self.np_rng = np.random.default_rng([kwargs.get("seed", 0), 0xBA7C4])
        self.floors = np.array(
            [round(s.floor * self.floor_scale * MICROS) for s in cat.slots], dtype=np.int64
        )
        self.p_view = np.array([self.world.truth.viewability(p) for p in range(8)])
        self.cat_idx = [taxonomy.index_of(d.bidder.cat) for d in self.dsps]

    def run_batch(self, batch: Batch) -> None:
        n = batch.ts.size
        if n == 0:
            return
        world, cat, t = self.world, self.world.catalog, self.tally
        slot, users = batch.slot, batch.user
        floors = self.floors[slot]
        w, h, pos = cat.slot_w[slot], cat.slot_h[slot], cat.slot_pos[slot]
        site_cat = cat.site_cat[cat.slot_site[slot]]
        n_d = len(self.dsps)
        bids = np.zeros((n, n_d), dtype=np.int64)
        p_click = np.zeros((n, n_d))
        p_conv = np.zeros((n, n_d))  # P(conversion | click): the expectations' (exp_*) only
        for j, d in enumerate(self.dsps):
            b: StrategyBidder = d.bidder
            outcome = d.latency.draw(d.rng, n, self.budget_s)
            truth = world.truth.p_click_batch(
                users=users,
                w=w,
                h=h,
                pos=pos,
                ad_cat=np.full(n, self.cat_idx[j]),
                site_cat=site_cat,
            )
            p_click[:, j] = truth
            p_conv[:, j] = p_convert_batch(world.truth, users, self.cat_idx[j])
            pctr = truth if b.pctr == "oracle" else np.full(n, b.ctr)
            price = price_batch(b.strategy_, pctr, value_per_click=b.value_per_click, rng=d.rng)
            assert price is not None
            ok_price = np.isfinite(price) & (price > 0)
            micros = np.where(ok_price, np.round(np.where(ok_price, price, 0) * MICROS), 0)
            micros = micros.astype(np.int64)
            if b.max_bid_micros_:
                np.minimum(micros, b.max_bid_micros_, out=micros)
            micros[micros < floors] = 0
            counts = np.bincount(outcome, minlength=5)
            tally = d.tally
            tally.requests += n
            tally.timeouts += int(counts[TIMEOUT] + counts[HANG])
            tally.errors += int(counts[ERROR])
            tally.invalid += int(counts[INVALID])
            micros[outcome != OK] = 0
            bids[:, j] = micros
        t.auctions += n
        t.imps += n
        self._auction_all(bids, floors, p_click, p_conv, batch)
        self.deliver_conversions(float(batch.ts[-1]))

    def _auction_all(
        self,
        bids: np.ndarray,
        floors: np.ndarray,
        p_click: np.ndarray,
        p_conv: np.ndarray,
        batch: Batch,
    ) -> None:
        n = bids.shape[0]
        rng = self.np_rng
        viewed_all = (
            rng.random(n) < self.p_view[np.clip(self.world.catalog.slot_pos[batch.slot], 0, 7)]
        )
        u_click = np.asarray(rng.random(n))
        budgeted = [j for j, d in enumerate(self.dsps) if d.bidder.budget_micros_]
        start = 0
        while start < n:
            sub = bids[start:]
            for j in budgeted:
                left = self.dsps[j].bidder.remaining_micros
                col = sub[:, j]
                col[col > left] = 0
            winners, prices = second_price_batch(
                sub, floors[start:], rng=rng, increment=self.increment, first_price=self.at == 1
            )
            stop = sub.shape[0]
            for j in budgeted:
                left = self.dsps[j].bidder.remaining_micros
                cost = np.where(winners == j, prices, 0)
                before = np.cumsum(cost) - cost
                bad = (sub[:, j] > 0) & (sub[:, j] > left - before)
                if bad.any():
                    stop = min(stop, int(bad.argmax()))
            self._commit(
                sub[:stop],
                winners[:stop],
                prices[:stop],
                start,
                viewed_all,
                u_click,
                p_click,
                p_conv,
                batch,
            )
            start += stop

    def _commit(
        self,
        bids: np.ndarray,
        winners: np.ndarray,
        prices: np.ndarray,
        start: int,
        viewed_all: np.ndarray,
        u_click: np.ndarray,
        p_click: np.ndarray,
        p_conv: np.ndarray,
        batch: Batch,
    ) -> None:
        m = winners.size
        if m == 0:
            return
        t = self.tally
        rows = np.arange(start, start + m)
        sold = winners >= 0
        t.filled += int(sold.sum())
        t.price_sum += int(prices[sold].sum())
        t.price_hist += np.bincount(bins_of(prices[sold]), minlength=t.price_hist.size)
        hours = ((batch.ts[rows] - t.start_ts) // 3600).astype(np.int64)
        viewed = viewed_all[rows] & sold
        clicked = viewed & (u_click[rows] < p_click[rows, np.maximum(winners, 0)])
        for j, d in enumerate(self.dsps):
            tally, col = d.tally, bids[:, j]
            bid = col > 0
            tally.bids += int(bid.sum())
            tally.bid_hist += np.bincount(bins_of(col[bid]), minlength=tally.bid_hist.size)
            won = winners == j
            if not won.any():
                continue
            tally.wins += int(won.sum())
            cost = int(prices[won].sum())
            tally.won_cost += cost
            d.bidder.spent_micros_ += cost
            tally.win_hist += np.bincount(bins_of(col[won]), minlength=tally.win_hist.size)
            tally.price_hist += np.bincount(bins_of(prices[won]), minlength=tally.price_hist.size)
            seen = won & viewed
            tally.impressions += int(seen.sum())
            tally.spend += int(prices[seen].sum())
            if seen.any():
                self._expect(d, p_click[rows[seen], j], p_conv[rows[seen], j])
                sums = np.bincount(hours[seen], weights=prices[seen].astype(float))
                for hour in np.flatnonzero(sums):
                    tally.add_spend(int(hour), round(sums[hour]))
            for k in np.flatnonzero(won & clicked).tolist():
                tally.clicks += 1
                self._maybe_convert(d, j, int(rows[k]), batch)

    def _expect(self, d: SimDsp, p_click: np.ndarray, p_conv: np.ndarray) -> None:
        """The ground truth's expectations over a DSP's seen impressions (metrics.DspTally.exp_*),
        as on the per-request path."""
        x = float(np.dot(p_click, p_conv))
        adv = self.world.advertisers.find([d.bidder.adomain])
        mean = adv.order_value if adv else DEFAULT_ORDER_VALUE
        d.tally.add_expected(float(p_click.sum()), x, x * mean)

    def _maybe_convert(self, d: SimDsp, j: int, row: int, batch: Batch) -> None:
        truth, rng = self.world.truth, self.np_rng
        user, ts, ad_cat = int(batch.user[row]), float(batch.ts[row]), self.cat_idx[j]
        p = truth.p_convert(user=user, ad_cat=ad_cat, t=ts)
        if not (p > 0 and rng.random() < p):
            return
        adv = self.world.advertisers.find([d.bidder.adomain])
        mean = adv.order_value if adv else DEFAULT_ORDER_VALUE
        c = Conversion(
            ts=ts + rng.exponential(truth.settings.conversion_delay_min * 60),
            user=user,
            cat=ad_cat,
            advertiser=d.bidder.adomain,
            value=round(mean * rng.lognormal(-(_VALUE_SIGMA**2) / 2, _VALUE_SIGMA), 2),
            bidder=d.name,
            auction=f"b{row}",
            imp="1",
            bid=f"b{row}-1",
        )
        self._seq += 1
        heapq.heappush(self.conversions, (c.ts, self._seq, c))


def p_convert_batch(truth: GroundTruth, users: np.ndarray, ad_cat: int) -> np.ndarray:
    """P(conversion | click) of an ad of category ``ad_cat`` for each of ``users`` (population
    indexes): :meth:`GroundTruth.p_convert` vectorised over the intent as of the book's last
    ``advance``, as :meth:`GroundTruth.p_click_batch` reads it (no pair is settled)."""
    if ad_cat < 0:
        return np.zeros(users.size)
    s = truth.settings
    hit = truth.population.seg_cat[users] == ad_cat
    state = truth.intent.state[users, hit.argmax(axis=1)]
    cvr = np.zeros(4)
    cvr[DORMANT], cvr[RESEARCHING] = s.cvr_dormant, s.cvr_researching  # bought: 0
    return np.where(hit.any(axis=1), cvr[state], 0.0)
