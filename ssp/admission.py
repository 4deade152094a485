"""Admission control: shed new auctions while the event loop runs late.

When the CPU is saturated, every timer fires late, including the one that ends an auction at its
deadline, so auctions that are let in all answer late. A :class:`LagMonitor` ticks every
``interval_s`` and keeps a smoothed measure of how late its ticks wake up; while that lag is over
the limit the SSP answers new auctions at once with 204 (counted as overload), which costs almost
nothing and lets the auctions already running finish on time.
"""

from __future__ import annotations

import asyncio
import time

from ssp.tasks import stop_task


class LagMonitor:
    def __init__(self, *, interval_s: float = 0.01, smoothing: float = 0.3) -> None:
        self.interval_s = interval_s
        self.smoothing = smoothing
        #: Smoothed event-loop lag (seconds): how late a tick wakes up, on average of late.
        self.lag = 0.0
        #: The largest single lag seen since start.
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        interval = self.interval_s
        a = self.smoothing
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(interval)
            late = max(0.0, time.perf_counter() - t0 - interval)
            self.lag += a * (late - self.lag)
            if late > self.max_lag:
                self.max_lag = late
