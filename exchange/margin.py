"""The deadline margin: how long before ``tmax`` the auction stops waiting for bidders.

The exchange keeps ``exchange.margin_ms`` of each auction's time budget for its own work: the
auction, the answer, and the moment between the cutoff timer falling due and the event loop
running it. That moment is not fixed: on a busy machine the loop is late, by a garbage collection,
a burst of arrivals, or the operating system running another process. When the auctions that
waited until their cutoff answer later than the margin allows, a fixed margin makes them answer
past ``tmax``.

An :class:`AdaptiveMargin` watches how late those auctions finish after their cutoff (their
*overshoot*) and keeps the margin at the longest overshoot of the last ``horizon_s`` seconds (10 by
default), never below the configured floor nor above the cap. The longest, not a high quantile:
the deadline is hard, so the statistic that matters is the slowest answer, and on a shared machine
the stalls that make it (a collection, another process taking the CPU) come every few seconds, too
rarely for a quantile of a short window to remember them. The margin rises at the overshoot that
calls for it and falls back as that overshoot ages out, a slot (a tenth of the horizon) at a time. A
quiet exchange keeps the floor (5 ms); a busy one gives bidders a few milliseconds less and answers
on time.

A reactive margin learns of a stall only from the answers it made late. On a busy exchange the
first stall after a quiet spell then costs a late answer: the margin has fallen back to its floor
and the stall is longer than it. How late a busy event loop runs is foreseeable, though: any burst
of work (a collection, a clump of arrivals, the machine taking the CPU) leaves a queue behind, and
the busier the loop, the longer that queue takes to drain, roughly as ``busy / (1 - busy)`` (the
queueing delay of a server that busy). So the margin is also kept at least at
``per_load_s * busy / (1 - busy)``, ``busy`` being the share of the time the exchange's thread
was lately on the CPU (given by the caller through :meth:`AdaptiveMargin.load`). With the default
3 ms: 3 ms at half busy (under the floor), 7 ms at 70%, 12 ms at 80%, the 15 ms cap from 83%. Pure
logic: the caller measures the times and the load.
"""

from __future__ import annotations

from collections import deque


class AdaptiveMargin:
    def __init__(
        self,
        *,
        floor_s: float,
        cap_s: float,
        horizon_s: float = 10.0,
        slots: int = 10,
        per_load_s: float = 0.0,
    ) -> None:
        if not 0 <= floor_s <= cap_s:
            raise ValueError("the margin's floor must be >= 0 and <= its cap")
        if not horizon_s > 0 or slots < 1:
            raise ValueError("the margin's horizon must be > 0 s, in at least 1 slot")
        if per_load_s < 0:
            raise ValueError("the margin per load must be >= 0")
        self.floor_s = floor_s
        self.cap_s = cap_s
        self.horizon_s = horizon_s
        self.per_load_s = per_load_s
        #: The margin in force (seconds).
        self.current = floor_s
        #: The least margin the load calls for (seconds; see :meth:`load`), never below the floor.
        self.for_load = floor_s
        self._width = horizon_s / slots
        #: The longest overshoot of each slot of the horizon, the newest last.
        self._maxima: deque[float] = deque([0.0], maxlen=slots)
        self._slot: int | None = None

    def observe(self, overshoot_s: float, now: float) -> None:
        """One auction that waited until its cutoff finished ``overshoot_s`` after it, at ``now``
        (seconds on any monotonic clock, the same for every call)."""
        slot = int(now // self._width)
        if slot != self._slot:
            self._roll(slot)
        maxima = self._maxima
        if overshoot_s > maxima[-1]:
            maxima[-1] = overshoot_s
            if overshoot_s > self.current:
                self.current = min(self.cap_s, overshoot_s)

    def load(self, busy: float) -> None:
        """The share of the time (0-1) the exchange's thread was lately on the CPU: the margin is
        kept at least at ``per_load_s * busy / (1 - busy)``, within the floor and the cap."""
        busy = min(max(busy, 0.0), 0.99)
        self.for_load = min(self.cap_s, max(self.floor_s, self.per_load_s * busy / (1 - busy)))
        self._update()

    def _roll(self, slot: int) -> None:
        """Start slot ``slot``: the slots that passed with no auction are empty; the oldest leave."""
        maxima = self._maxima
        passed = 1 if self._slot is None else min(slot - self._slot, maxima.maxlen or 1)
        maxima.extend([0.0] * max(1, passed))
        self._slot = slot
        self._update()

    def _update(self) -> None:
        self.current = min(self.cap_s, max(self.for_load, max(self._maxima)))
