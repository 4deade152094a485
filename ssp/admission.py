"""Admission control: shed new auctions while the event loop runs late.

When the CPU is saturated, every timer fires late, including the one that ends an auction at its
deadline, so auctions that are let in all answer late. A :class:`LagMonitor` ticks every
``interval_s`` and keeps a smoothed measure of how late its ticks wake up; while that lag is over
the limit the SSP answers new auctions at once with 204 (counted as overload), which costs almost
nothing and lets the auctions already running finish on time.

A tick more than ``stall_s`` late is also kept as a *stall*, with the CPU time the loop's thread
used from the tick's sleep to its waking. A stall the thread spent on the CPU was the SSP's own
work (a long callback, a garbage collection); one it did not was time the OS gave something else,
or the hypervisor took from the machine. An answer late by the one is the SSP's to fix; by the
other, the machine's.

The monitor also keeps how busy the loop's thread is: its share of the time on the CPU, smoothed
over about ``busy_window_s`` (1 s), given to ``on_busy`` at every tick. The exchange's margin grows
with it (exchange/margin.py): the busier the loop, the longer the queue any burst of work leaves.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from ssp.tasks import stop_task

#: Stalls kept for /stats (``recent_stalls``).
RECENT_STALLS = 32


class LagMonitor:
    def __init__(
        self,
        *,
        interval_s: float = 0.01,
        smoothing: float = 0.3,
        stall_s: float = 0.005,
        busy_window_s: float = 1.0,
        on_stall: Callable[[], object] | None = None,
        on_busy: Callable[[float], object] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.smoothing = smoothing
        self.stall_s = stall_s
        self.busy_window_s = busy_window_s
        #: Called at each stall (the SSP counts them in ``gavel_event_loop_stalls_total``).
        self.on_stall = on_stall
        #: Called at each tick with :attr:`busy` (the SSP gives it to the exchange's margin).
        self.on_busy = on_busy
        #: The share of the time (0-1) the loop's thread was on the CPU, smoothed over about
        #: ``busy_window_s``: each tick weighs in by its length.
        self.busy = 0.0
        #: Smoothed event-loop lag (seconds): how late a tick wakes up, on average of late.
        self.lag = 0.0
        #: The largest single lag seen since start.
        self.max_lag = 0.0
        #: Ticks more than ``stall_s`` late since start, and the last of them, each
        #: ``(number, late_s, gap_s, cpu_s)``: how late the tick woke, the time from its sleep to
        #: its waking, and the thread's CPU time in that gap. ``number`` counts stalls since start
        #: (the ``stalls`` it made), so that a reader holding an earlier count knows which are new.
        self.stalls = 0
        self.recent: deque[tuple[int, float, float, float]] = deque(maxlen=RECENT_STALLS)
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
            t0, c0 = time.perf_counter(), time.thread_time()
            await asyncio.sleep(interval)
            gap = time.perf_counter() - t0
            cpu = time.thread_time() - c0
            late = max(0.0, gap - interval)
            self.lag += a * (late - self.lag)
            if late > self.max_lag:
                self.max_lag = late
            if late > self.stall_s:
                self.stalls += 1
                self.recent.append((self.stalls, late, gap, cpu))
                if self.on_stall is not None:
                    self.on_stall()
            if gap > 0:
                weight = min(1.0, gap / self.busy_window_s)
                self.busy += weight * (min(1.0, cpu / gap) - self.busy)
                if self.on_busy is not None:
                    self.on_busy(self.busy)

    def snapshot(self) -> dict[str, object]:
        """For /stats ``loop_lag_s``."""
        return {
            "smoothed": self.lag,
            "busy": self.busy,
            "max": self.max_lag,
            "stall_ms": self.stall_s * 1000,
            "stalls": self.stalls,
            "recent_stalls": [
                {
                    "number": n,
                    "late_ms": round(late * 1000, 3),
                    "gap_ms": round(gap * 1000, 3),
                    "cpu_ms": round(cpu * 1000, 3),
                }
                for n, late, gap, cpu in self.recent
            ],
        }
