"""The virtual clock of a simulation: simulated unix time that only moves when the loop moves it.

Nothing sleeps and nothing reads the wall clock: a day of traffic takes as long as its auctions
take to compute, and the same seed gives the same times.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class VirtualClock:
    """Simulated unix seconds; ``start`` is the simulated time of the run's first instant."""

    start: float
    now: float = 0.0

    def __post_init__(self) -> None:
        if not self.now:
            self.now = self.start

    @property
    def elapsed(self) -> float:
        """Simulated seconds since the start."""
        return self.now - self.start

    def advance_to(self, ts: float) -> None:
        """Move to ``ts``; the clock never goes back."""
        if ts > self.now:
            self.now = ts

    def label(self) -> str:
        """``Wed 16:04`` (UTC): for progress lines."""
        return time.strftime("%a %H:%M", time.gmtime(self.now))
