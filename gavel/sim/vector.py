"""Vectorised prices of the built-in pricing strategies whose price is a formula of pCTR.

:func:`price_batch` answers a whole batch of opportunities at once with numpy, the same formulas
as the strategies' ``price(ctx)`` (dsp/strategies/), or ``None`` when the strategy has no formula
here (it learns, paces itself or is not a built-in): the simulator then calls ``price`` one
opportunity at a time. ``random`` draws from the run's numpy generator rather than the strategy's
``rng_``, so its individual bids differ from the per-call path (same distribution).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dsp.strategies.constant import ConstantPrice
from dsp.strategies.lin import Linear
from dsp.strategies.mcpc import Mcpc
from dsp.strategies.ortb1 import Ortb1
from dsp.strategies.ortb2 import Ortb2
from dsp.strategies.random_price import RandomPrice
from dsp.strategies.truthful import Truthful

VECTORISED = (ConstantPrice, Linear, Mcpc, Ortb1, Ortb2, RandomPrice, Truthful)


def vectorised(strategy: Any) -> bool:
    """Whether :func:`price_batch` has ``strategy``'s formula (exact classes, not subclasses)."""
    return type(strategy) in VECTORISED


def price_batch(
    strategy: Any, pctr: np.ndarray, *, value_per_click: float, rng: np.random.Generator
) -> np.ndarray | None:
    """CPM bids for a batch of pCTRs (NaN: no bid), or None when there is no formula."""
    n = pctr.size
    kind = type(strategy)
    if kind is ConstantPrice:
        return np.full(n, float(strategy.cpm))
    if kind is RandomPrice:
        return np.asarray(rng.uniform(strategy.low, strategy.high, n))
    if kind is Linear:
        if strategy.avg_ctr <= 0:
            return np.full(n, np.nan)
        return np.asarray(strategy.base_bid * pctr / strategy.avg_ctr)
    if kind in (Truthful, Mcpc):
        value = strategy.value if kind is Truthful else strategy.ecpc
        value = value_per_click if value is None else value
        if not value or value <= 0:
            return np.full(n, np.nan)
        return np.asarray(1000.0 * value * pctr)
    if kind in (Ortb1, Ortb2):
        c, lam = strategy.c, strategy.lam
        if c <= 0 or lam <= 0:
            return np.full(n, np.nan)
        if kind is Ortb1:
            return np.asarray(np.sqrt(c / lam * pctr + c * c) - c)
        cl = c * lam
        u = pctr + np.sqrt(cl * cl + pctr * pctr)
        return np.asarray(c * (np.cbrt(u / cl) - np.cbrt(cl / u)))
    return None
