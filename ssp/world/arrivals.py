"""Arrival times: a Poisson process in real time whose rate follows a curve in simulated time.

``intensity(t) = rate * curve(sim(t)) * burst(t)``, drawn window by window by thinning: a
homogeneous process at the window's upper bound, each point kept with probability
``intensity(t) / bound``. ``curve`` is the diurnal curve of the world's population (mean 1 over a
simulated day), ``burst(t)`` the largest factor of the bursts active at ``t`` (1 outside).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ssp.world.clock import SimClock
from ssp.world.settings import Burst

Curve = Callable[[np.ndarray], np.ndarray]


class Arrivals:
    """Arrival times (real seconds since the start), window after window."""

    def __init__(
        self,
        *,
        rate: float,
        clock: SimClock,
        rng: np.random.Generator,
        curve: Curve | None = None,
        peak: float = 1.0,
        bursts: Sequence[Burst] = (),
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.rng = rng
        #: The curve over simulated unix time (None: flat), and its maximum.
        self.curve = curve
        self.peak = peak if curve is not None else 1.0
        self.bursts = list(bursts)

    def burst(self, *, factor: float, seconds: float, at: float) -> Burst:
        """Add a burst: ``factor`` times the rate from ``at`` for ``seconds`` (real time)."""
        b = Burst(at_s=at, seconds=seconds, factor=factor)
        self.bursts.append(b)
        return b

    def burst_factor(self, t: np.ndarray) -> np.ndarray:
        out = np.ones(t.shape)
        for b in self.bursts:
            inside = (t >= b.at_s) & (t < b.at_s + b.seconds)
            out = np.where(inside, np.maximum(out, b.factor), out)
        return out

    def intensity(self, t: np.ndarray) -> np.ndarray:
        """Arrivals per real second at real times ``t``."""
        out = self.rate * self.burst_factor(t)
        if self.curve is not None:
            out = out * self.curve(self.clock.sim_array(t))
        return out

    def window(self, r0: float, r1: float) -> np.ndarray:
        """The sorted arrival times in ``[r0, r1)``."""
        if r1 <= r0:
            return np.empty(0)
        top = max(
            [1.0] + [b.factor for b in self.bursts if b.at_s < r1 and b.at_s + b.seconds > r0]
        )
        bound = self.rate * self.peak * top
        n = self.rng.poisson(bound * (r1 - r0))
        t = np.sort(self.rng.uniform(r0, r1, n))
        keep = self.rng.random(n) * bound < self.intensity(t)
        return t[keep]
