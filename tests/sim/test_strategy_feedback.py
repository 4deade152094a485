"""StrategyBidder passes win, loss, billing, click and conversion notices to its pricing strategy."""

from __future__ import annotations

from typing import Any

from exchange import feedback
from gavel.sim.bidders import StrategyBidder
from gavel.sim.experiment import DspEntry, Experiment, RunSpec
from gavel.sim.market import Market
from gavel.sim.runner import Progress, run_one

from .conftest import ROOT


def _run(dsps: tuple[DspEntry, ...], at: int) -> Market:
    exp = Experiment(users=3000, days=0.05, qps=3.0, dsp=dsps, path="object")
    spec = RunSpec(label="x", variant="x", fraction=None, dsps=dsps, at=at, floor_scale=1.0)
    markets: list[Market] = []
    run_one(exp, spec, 4, base=ROOT, progress=Progress(total=1, quiet=True),
            on_market=markets.append)  # fmt: skip
    return markets[0]


def test_shading_learns_from_wins_and_losses_in_a_simulated_run() -> None:
    dsps = (
        DspEntry(name="shade", strategy="shading", params={"base_cpm": 3.0, "explore": 0.2},
                 cat="IAB17"),
        DspEntry(name="rival", bidder="random", params={"low": 0.3, "high": 2.5}),
    )  # fmt: skip
    market = _run(dsps, at=1)
    shade = market.by_name["shade"]
    assert shade.listens >= {feedback.WIN, feedback.LOSS}
    b: StrategyBidder = shade.bidder
    s: Any = b.strategy_
    fresh: Any = StrategyBidder(strategy="shading", params={"base_cpm": 3.0, "explore": 0.2})
    fresh.reset(0)
    prior = fresh.strategy_
    assert shade.tally.wins > 0 and shade.tally.bids > shade.tally.wins  # won some, lost some
    assert s.tries_ != prior.tries_ and s.wins_ != prior.wins_  # it learnt
    # every notice found its bid: the strategy saw one try per win or loss on each factor level
    n = len(s.factors_)
    assert sum(s.tries_) > n * prior.prior_weight
    assert not b.shown_  # shading has no billing/click/conversion hook: won bids are not kept
    assert len(b.bids_) <= shade.tally.timeouts + shade.tally.errors + 5


def test_pid_gets_billing_and_clicks_and_strategies_without_hooks_get_nothing() -> None:
    dsps = (
        DspEntry(name="pid", strategy="pid", params={"target": 1.2, "interval_s": 60.0},
                 cat="IAB17"),
        DspEntry(name="lin", strategy="lin", params={"base_bid": 1.5}, cat="IAB19"),
        DspEntry(name="rival", bidder="random", params={"low": 0.3, "high": 2.5}),
    )  # fmt: skip
    market = _run(dsps, at=2)
    pid = market.by_name["pid"]
    assert feedback.BILLING in pid.listens and feedback.CLICK in pid.listens
    assert feedback.LOSS not in pid.listens  # no loss hook on PidPacing: no loss events built
    assert pid.tally.impressions > 0
    assert pid.bidder.strategy_.steps_ > 0
    assert pid.bidder.strategy_.phi_ != 0.0  # the controller moved on what it was billed
    lin = market.by_name["lin"]
    assert lin.listens == {feedback.WIN}  # its budget; lin itself learns nothing
    assert not lin.bidder.bids_ and not lin.bidder.shown_


def test_a_strategy_is_told_about_its_own_bids_only() -> None:
    b = StrategyBidder(strategy="shading", params={"base_cpm": 2.0})
    b.reset(1)
    before = list(b.strategy_.tries_)
    b.on_loss(feedback.AuctionEvent(kind=feedback.LOSS, auction_id="nope", imp_id="1",
                                    bid_id="nope-1", loss=102, min_to_win=1.0))  # fmt: skip
    assert b.strategy_.tries_ == before
