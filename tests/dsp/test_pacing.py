"""Pacing: a daily budget spent evenly over a simulated day, and the controller's parts.

The simulated day drives the campaign bidder in-process with requests whose event time walks
through a day, against a market of competing bids (log-normal, median CPM 1.50) in second-price
auctions, with win and billing notices at the clearing price: the bidder could spend about twice
its daily budget if it bid on everything.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from dsp.bidders.campaign import CampaignBidder
from dsp.pacing import Pacer
from exchange.openrtb import parse_bid_request

from .helpers import bidder, campaign, event

DAY0 = 1_749_081_600.0  # Thursday 2025-06-05 00:00 UTC
DAILY = 8.0
FLOOR = 0.5


def simulate_day(
    b: CampaignBidder, *, requests: int = 12_000, seed: int = 3
) -> list[tuple[float, float]]:
    """(share of the day, spend so far) every 1/48 of the day."""
    rng = random.Random(seed)
    times = sorted(rng.uniform(0, 86_400) for _ in range(requests))
    marks: list[tuple[float, float]] = []
    next_mark = 0.0
    for i, t in enumerate(times):
        raw: dict[str, Any] = {
            "id": f"r{i}",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": FLOOR}],
            "user": {"id": f"u{rng.randrange(5000)}"},
            "ext": {"gavel": {"ts": DAY0 + t}},
        }
        request = parse_bid_request(raw)
        market = math.exp(rng.gauss(math.log(1.5), 0.5))
        response = b.bid(request)
        if response is not None:
            price = response["seatbid"][0]["bid"][0]["price"]
            if price > market:
                clearing = min(price, round(max(market, FLOOR) + 0.01, 6))
                b.on_win(event("win", request.id, price=clearing))
                b.on_billing(event("billing", request.id, price=clearing))
            else:
                b.on_loss(
                    event("loss", request.id, price=market, loss=102, min_to_win=market + 0.01)
                )
        if t / 86_400 >= next_mark:
            marks.append((t / 86_400, b.stats()["campaigns"]["c1"]["spend"]))
            next_mark += 1 / 48
    marks.append((1.0, b.stats()["campaigns"]["c1"]["spend"]))
    return marks


def assert_even(marks: list[tuple[float, float]]) -> None:
    for share, spent in marks:
        assert abs(spent - DAILY * share) <= 0.1 * DAILY, (
            f"at {share * 24:.1f} h spent {spent:.3f}, the even line is {DAILY * share:.3f}"
        )
    assert 0.9 * DAILY <= marks[-1][1] <= DAILY


@pytest.mark.parametrize("mode", ["throttle", "bid"])
def test_even_pacing_spends_the_daily_budget_within_10_percent_of_even(mode: str) -> None:
    b = bidder(campaign(budget_daily=DAILY, pacing=mode, params={"cpm": 3.0}))
    assert_even(simulate_day(b))
    pacer = b.campaigns_[0].pacer
    if mode == "throttle":
        assert pacer.rate_ < 0.9 and pacer.multiplier_ == 1.0
    else:
        assert pacer.multiplier_ < 0.95 and pacer.rate_ == 1.0


def test_asap_spends_the_budget_early_and_never_more() -> None:
    b = bidder(campaign(budget_daily=DAILY, pacing="asap", params={"cpm": 3.0}))
    marks = simulate_day(b)
    assert max(spent for _, spent in marks) <= DAILY
    by_noon = [spent for share, spent in marks if share <= 0.5][-1]
    assert by_noon >= 0.9 * DAILY  # gone by noon: why even pacing exists


def test_pid_strategy_paces_by_itself() -> None:
    b = bidder(
        campaign(
            budget_daily=DAILY,
            pacing="asap",
            strategy="pid",
            params={"target": 2.0, "metric": "cpm", "interval_s": 300.0},
        )
    )
    assert_even(simulate_day(b))
    assert b.campaigns_[0].strategy.phi_ < 0  # it had to bid under the target to spend evenly


# -- the controller ------------------------------------------------------------------------------


def test_guard_holds_spend_to_the_even_line() -> None:
    p = Pacer(mode="throttle", ahead=0.01)
    assert p.allows(0.5, 500, 1000)
    assert not p.allows(0.5, 510, 1000)  # 51% committed at 50% of the day, 1% ahead allowed
    assert Pacer(mode="asap").allows(0.0, 10_000, 1000)


def test_rate_follows_spend_slot_by_slot() -> None:
    p = Pacer(mode="throttle", slot_s=3600)  # 24 slots
    p.observe(1, 0.0, 0, 2400)
    p.observe(1, 1 / 24, 400, 2400)  # spent 400 in a slot that should have spent 100
    assert p.rate_ == 0.5  # at most halved per step
    p.observe(1, 2 / 24, 400, 2400)  # then nothing at all
    assert p.rate_ == 1.0
    p.observe(2, 0.0, 0, 2400)  # a new day keeps what was learnt
    assert p.rate_ == 1.0 and p.day_ == 2
    bid = Pacer(mode="bid", slot_s=3600)
    bid.observe(1, 0.0, 0, 2400)
    bid.observe(1, 1 / 24, 400, 2400)
    assert bid.multiplier_ == pytest.approx(math.sqrt(0.5))
