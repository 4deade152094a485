"""A pricing strategy in twenty lines: linear bidding, scaled to win a target share of auctions.

The campaign bidder does the rest (targeting, budgets, pacing, frequency caps, creatives). Serve
the campaign file next to this one (from this folder, so that ``win_rate`` is importable):

    gavel dsp --port 9001 --config win_rate.toml
"""

from __future__ import annotations

from dsp.strategy import PricingStrategy


class WinRateTarget(PricingStrategy):
    """bid = scale x base_bid x pCTR / avg_ctr; each win lowers the scale a little, each loss
    raises it, so that it settles where the win rate is ``target``."""

    def __init__(self, *, base_bid=1.0, avg_ctr=0.001, target=0.3, step=0.05):
        self.base_bid = base_bid
        self.avg_ctr = avg_ctr
        self.target = target
        self.step = step

    def reset(self, seed=None):
        super().reset(seed)
        self.scale_ = 1.0

    def price(self, ctx):
        return self.scale_ * self.base_bid * ctx.pctr / self.avg_ctr

    def on_win(self, event, bid):
        self.scale_ *= 1 - self.step * (1 - self.target)

    def on_loss(self, event, bid):
        self.scale_ *= 1 + self.step * self.target
