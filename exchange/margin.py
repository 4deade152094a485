"""The deadline margin: how long before ``tmax`` the auction stops waiting for bidders.

The exchange keeps ``exchange.margin_ms`` of each auction's time budget for its own work: the
auction, the answer, and the moment between the cutoff timer falling due and the event loop
running it. That moment is not fixed: on a busy machine the loop is late, by a garbage collection,
a burst of arrivals, or the operating system running another process. When the auctions that
waited until their cutoff answer later than the margin allows, a fixed margin makes them answer
past ``tmax``.

An :class:`AdaptiveMargin` watches how late those auctions finish after their cutoff (their
*overshoot*) and keeps the margin at the chosen quantile of the recent overshoots (99.9% of the last
1,024 by default: all but the longest one, since the deadline is meant to be hard), never below
the configured floor nor above the cap. A quiet exchange keeps the floor (5 ms); a busy one gives
bidders a few milliseconds less and answers on time. Pure logic: the caller measures the times.
"""

from __future__ import annotations


class AdaptiveMargin:
    def __init__(
        self,
        *,
        floor_s: float,
        cap_s: float,
        quantile: float = 0.999,
        window: int = 1024,
        every: int = 64,
    ) -> None:
        if not 0 <= floor_s <= cap_s:
            raise ValueError("the margin's floor must be >= 0 and <= its cap")
        if not 0 < quantile <= 1 or window < 1 or every < 1:
            raise ValueError("quantile in (0, 1], window >= 1 and every >= 1")
        self.floor_s = floor_s
        self.cap_s = cap_s
        self.quantile = quantile
        self.window = window
        self.every = every
        #: The margin in force (seconds).
        self.current = floor_s
        self._recent: list[float] = []
        self._next = 0  # where the next overshoot goes once the window is full
        self._seen = 0

    def observe(self, overshoot_s: float) -> None:
        """One auction that waited until its cutoff finished ``overshoot_s`` after it."""
        if len(self._recent) < self.window:
            self._recent.append(overshoot_s)
        else:
            self._recent[self._next] = overshoot_s
            self._next = (self._next + 1) % self.window
        self._seen += 1
        if self._seen % self.every == 0:
            self._update()

    def _update(self) -> None:
        ordered = sorted(self._recent)
        q = ordered[min(len(ordered) - 1, int(self.quantile * len(ordered)))]
        self.current = min(self.cap_s, max(self.floor_s, q))
