"""Pause windows: planned stops of the event loop that the auctions' cutoffs keep out of.

A stop of the event loop (a garbage collection) makes late every auction whose cutoff falls inside
it. When one cannot be avoided, its owner reserves its window here at least one auction budget
ahead; from then on, an auction whose cutoff would fall inside a window is cut off at the window's
start instead. Only the auctions starting after the reservation can have such a cutoff (a cutoff
is at most one budget after its auction's start), so none already waiting is in the way: the pause
delays no answer past its deadline, and those few auctions lose the window's length of waiting for
their bidders, no more. Pure logic, no I/O: :mod:`ssp.gcpace` reserves, :mod:`exchange.engine`
adjusts.
"""

from __future__ import annotations


class PauseWindows:
    def __init__(self) -> None:
        #: Reserved windows, ``(start, end)`` in ``time.perf_counter()`` seconds, in the order
        #: reserved. Usually none: the engine checks the list before calling :meth:`adjust`.
        self.windows: list[tuple[float, float]] = []
        #: Cutoffs moved to a window's start.
        self.moved = 0

    def reserve(self, start: float, end: float) -> None:
        if not start < end:
            raise ValueError(f"a pause window must start before it ends, not {start} >= {end}")
        self.windows.append((start, end))

    def release(self, now: float) -> None:
        """Forget the windows that have ended by ``now``."""
        self.windows = [w for w in self.windows if w[1] > now]

    def adjust(self, cutoff: float) -> float:
        """``cutoff``, or the start of the window it falls in."""
        for start, end in self.windows:
            if start <= cutoff < end:
                self.moved += 1
                return start
        return cutoff
