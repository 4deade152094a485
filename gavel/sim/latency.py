"""DSP response times in virtual time, and what they mean against the deadline.

A DSP's latency model is a :class:`dsp.faults.Faults` (the shape ``gavel dsp`` injects live):
``fixed``, ``uniform``, ``exponential`` or ``lognormal`` latency plus hang, error and garbage
rates. :meth:`LatencyModel.draw` draws a batch of calls with numpy; :func:`outcomes` compares them
with the time each bidder has (``min(tmax, exchange.tmax_ms) - margin_ms``, as
:meth:`exchange.engine.Exchange.budget_s` and the fan-out do): a call that answers after it is a
timeout and its bids are discarded, as live; a hang is always a timeout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.faults import Faults
from exchange.settings import ExchangeSettings

OK, TIMEOUT, ERROR, INVALID, HANG = 0, 1, 2, 3, 4
OUTCOMES = ("ok", "timeout", "error", "invalid", "hang")


def bidder_budget_s(settings: ExchangeSettings, tmax_ms: int | None) -> float:
    """Seconds a bidder has: the request's ``tmax`` capped by the exchange's, minus the margin."""
    cap = settings.tmax_ms
    budget_ms = min(tmax_ms, cap) if tmax_ms else cap
    return max(0.0, (budget_ms - settings.margin_ms) / 1000.0)


@dataclass(frozen=True, slots=True)
class LatencyModel:
    faults: Faults

    def latency_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` latencies in seconds, the distributions of :meth:`Faults.latency_s`."""
        f = self.faults
        base, jitter = f.latency_ms, f.latency_jitter_ms
        if f.latency_dist == "fixed" or not jitter:
            ms = np.full(n, base)
        elif f.latency_dist == "uniform":
            ms = np.maximum(0.0, base + (2 * rng.random(n) - 1) * jitter)
        elif f.latency_dist == "exponential":
            ms = base + rng.exponential(jitter, n)
        else:  # lognormal with mean ``base`` and standard deviation ``jitter``
            sigma2 = math.log1p((jitter / base) ** 2)
            ms = rng.lognormal(math.log(base) - sigma2 / 2, math.sqrt(sigma2), n)
        return np.asarray(ms / 1000.0)

    def draw(self, rng: np.random.Generator, n: int, budget_s: float) -> np.ndarray:
        """The outcome code (OK, TIMEOUT, ERROR, INVALID, HANG: a timeout never answered) of ``n`` calls given ``budget_s``."""
        f = self.faults
        if not f.active:
            return np.zeros(n, dtype=np.int8)
        u = rng.random(n)
        late = self.latency_s(rng, n) > budget_s
        out = np.full(n, OK, dtype=np.int8)
        out[u < f.hang_rate + f.error_rate + f.garbage_rate] = INVALID
        out[u < f.hang_rate + f.error_rate] = ERROR
        out[late] = TIMEOUT  # an error or garbage sent after the deadline is never read
        out[u < f.hang_rate] = HANG
        return out
