"""The campaign bidder's reports and pixels: ``stats()`` for ``/stats``, ``pixel()`` for ``/pixel``.

Kept apart from the bidding path (:mod:`dsp.bidders.campaign`): neither runs per bid request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dsp import clock
from dsp.pixel import CONVERSION, PURCHASE, VISIT, PixelEvent
from dsp.state import Reservation, money

if TYPE_CHECKING:
    from dsp.bidders.campaign import CampaignBidder

log = logging.getLogger(__name__)

_COUNTERS = ("bids", "wins", "losses", "impressions", "clicks", "conversions", "late")


def record_pixel(bidder: CampaignBidder, event: PixelEvent) -> bool:
    """Apply one pixel (see :mod:`dsp.pixel`); False when no campaign serves the advertiser."""
    counts = bidder.pixels_
    campaigns = bidder.by_advertiser_.get(event.advertiser)
    if not campaigns:
        counts["ignored"] = counts.get("ignored", 0) + 1
        return False
    counts[event.event] = counts.get(event.event, 0) + 1
    state = bidder.state_
    ts = event.ts if event.ts is not None else bidder.now()
    if event.event == VISIT:
        state.visit(event.advertiser, event.user, ts, event.category)
    elif event.event == PURCHASE:
        state.purchase(event.advertiser, event.user, ts)
    elif event.event == CONVERSION:
        r = _converted(bidder, event, ts)
        if r is None:
            counts["unattributed"] = counts.get("unattributed", 0) + 1
            return True
        bidder.on_conversion(bidder.conversion_event(r))
        if event.value:
            state.add(r.campaign, "conversion_value_micros", round(event.value * 1_000_000))
    return True


def _converted(bidder: CampaignBidder, event: PixelEvent, ts: float) -> Reservation | None:
    """The impression a conversion goes to: the bid it names, else the user's latest impression
    of one of the advertiser's campaigns within the attribution window (last touch)."""
    state = bidder.state_
    key = event.bid_key
    if key is not None:
        return state.shown(key)
    since = ts - bidder.settings_.attribution_days * clock.DAY_S
    latest: tuple[float, tuple[str, str]] | None = None
    for c in bidder.by_advertiser_.get(event.advertiser, ()):
        touch = state.last_touch(c.id, event.user)
        if touch is not None and since <= touch[0] <= ts and (latest is None or touch > latest):
            latest = touch
    return state.shown(latest[1]) if latest is not None else None


def build_stats(bidder: CampaignBidder) -> dict[str, Any]:
    """Per campaign and in total: bids, wins, impressions, clicks, conversions, spend, budgets."""
    now = bidder.now()
    state = bidder.state_
    campaigns: dict[str, Any] = {}
    totals: dict[str, Any] = {
        name: 0 for name in (*_COUNTERS, "conversion_value", "spend", "spend_today", "in_flight")
    }
    for c in bidder.campaigns_:
        counters = state.counters(c.id)
        view = state.budget(c.id, clock.day_index(now, c.utcoffset))
        row: dict[str, Any] = {name: counters.get(name, 0) for name in _COUNTERS}
        row["conversion_value"] = counters.get("conversion_value_micros", 0) / 1_000_000
        row["spend"] = _m(view.spent)
        row["spend_today"] = _m(view.spent_today)
        row["in_flight"] = _m(view.held)
        row["budget_total"] = _m(view.total) if view.total else None
        row["budget_daily"] = _m(view.daily) if view.daily else None
        row["remaining_total"] = None if view.remaining_total is None else _m(view.remaining_total)
        row["remaining_today"] = None if view.remaining_today is None else _m(view.remaining_today)
        row.update(_ratios(row))
        pacer = c.pacer
        row["pacing"] = {
            "mode": pacer.mode,
            "rate": round(pacer.rate_, 6),
            "multiplier": round(pacer.multiplier_, 6),
        }
        row["strategy"] = {"name": c.config.strategy, "params": c.strategy.get_params()}
        campaigns[c.id] = row
        for name in totals:
            totals[name] += row[name]
    for name in ("conversion_value", "spend", "spend_today", "in_flight"):
        totals[name] = round(totals[name], 9)
    totals.update(_ratios(totals))
    return {
        "dsp": bidder.settings_.name,
        "seat": bidder.seat_,
        "currency": bidder.settings_.currency,
        "now": now,
        "campaigns": campaigns,
        "totals": totals,
        "pixels": dict(bidder.pixels_),
    }


def _m(units: int) -> float:
    return round(money(units), 9)


def _ratios(row: dict[str, Any]) -> dict[str, float | None]:
    """Win rate, CTR, CPM, eCPC and CPA; None where the denominator is 0."""
    imps, clicks, convs, spend = row["impressions"], row["clicks"], row["conversions"], row["spend"]
    return {
        "win_rate": round(row["wins"] / row["bids"], 6) if row["bids"] else None,
        "ctr": round(clicks / imps, 6) if imps else None,
        "cpm": round(1000 * spend / imps, 6) if imps else None,
        "ecpc": round(spend / clicks, 6) if clicks else None,
        "cpa": round(spend / convs, 6) if convs else None,
    }
