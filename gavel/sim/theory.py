"""Auction theory through the simulator's auction path: Monte-Carlo revenue of iid U[0,1] values.

Values are drawn as CPM micro-units (1.0 CPM = 1,000,000) and auctioned by
:func:`exchange.auction_batch.second_price_batch` with no increment, so that the textbook results
hold exactly: truthful second price earns (n-1)/(n+1); a reserve of 0.5 with n = 2 earns 5/12
and leaves the item unsold with probability r^2 = 1/4; first
price with the equilibrium bids (n-1)/n v earns the same as second price (revenue equivalence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from exchange.auction_batch import second_price_batch

SCALE = 1_000_000


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    half_width: float  # 99.9% confidence interval (z = 3.29)
    unsold: float

    def covers(self, value: float) -> bool:
        return abs(self.mean - value) <= self.half_width


def simulate_revenue(
    n: int, *, samples: int, seed: int, reserve: float = 0.0, first_price: bool = False
) -> Estimate:
    """Mean revenue per auction (in value units) of ``samples`` auctions of ``n`` bidders."""
    rng = np.random.default_rng(seed)
    values = rng.random((samples, n))
    bids = values * ((n - 1) / n) if first_price else values
    micros = np.maximum(1, np.round(bids * SCALE)).astype(np.int64)
    floors = np.full(samples, round(reserve * SCALE), dtype=np.int64)
    winners, prices = second_price_batch(
        micros, floors, rng=rng, increment=0, first_price=first_price
    )
    revenue = prices / SCALE
    sd = float(revenue.std(ddof=1))
    return Estimate(mean=float(revenue.mean()), half_width=3.29 * sd / math.sqrt(samples),
                    unsold=float((winners < 0).mean()))  # fmt: skip
