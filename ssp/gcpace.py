"""Garbage collection that keeps out of the way of the auctions' cutoffs.

CPython collects its young generation when allocations minus deallocations pass a threshold, at
whatever moment that happens. Each collection walks the young objects still alive, which in an SSP
are mostly the auctions in flight, and stops the event loop while it does: every auction whose
cutoff falls inside the pause answers late by what is left of it. With one hung DSP every auction
waits until its cutoff, so cutoffs come every few milliseconds and a pause of 10-30 ms (measured:
benchmark 3, bench/RESULTS.md) always hits some.

A :class:`GcPacer` turns automatic collection off and collects from a timer instead: the young
generation every ``interval_s`` (10 ms by default), the middle one every ``gen1_every``-th time
(by default once a second), everything every ``gen2_every``-th (every 10 minutes). The objects a
young collection finds alive move to the middle generation, which the next young ones skip, so a
young collection walks only what was born since the last one and still lives: every 10 ms, a tenth
of the auctions in flight, a pause well under a millisecond. Every 100 ms (the default before), each
walked all of them, 3-5 ms at 1,150 auctions/s with a hung DSP, too long for the gaps between the
cutoffs; the window reserved for it (below) came 100 ms later, by when the young generation had
filled for twice as long. At 10 ms, 30 s at that rate had 1-7 event-loop stalls over 5 ms
instead of 9-149 (bench/RESULTS.md).

Before each collection the pacer asks ``next_deadline()`` (the earliest cutoff of the auctions
still waiting) and waits for a gap: it collects only when the pause it expects
(:meth:`GcPacer.expected_pause`) ends no later than ``slack_s`` after that cutoff. A
young collection put off for ``max_defer_s`` (by default one interval) runs regardless: the longer
it waits, the more young objects it has to walk, so waiting long for a gap would only make a
longer pause (measured: put off for seconds on a saturated machine, one took 83 ms). A middle or
full collection, the longer pause and the rarer gap, waits up to ``max_older_defer_s`` (3 s) while
the young collections go on, then runs regardless.

"Regardless" would make late the auctions whose cutoffs fall inside the pause: with a hung DSP
at high load cutoffs come every millisecond, no 20 ms gap ever opens, and the forced middle
collections were what was left of the late answers (bench/RESULTS.md). Given ``pauses``
(:class:`exchange.pauses.PauseWindows`, the exchange's), the pacer makes the gap instead: it
reserves a window ``lead_s`` (the longest auction budget) ahead, so that no auction already
waiting can have its cutoff inside, sized by the pause it expects, and collects when the window
comes. The auctions starting meanwhile whose cutoffs would fall inside it are cut off at its start.

Not for a young collection expected to be short (``force_young_s``, 2 ms): it runs when overdue,
gap or not. Its pause makes the cutoffs inside it late by at most that, which the exchange's
deadline margin (by default at least 5 ms) absorbs. A window instead puts it off by one budget, and
the young generation fills all that time. In one run of benchmark 3 at 80% load (0.92 of the SSP's
core) such collections walked 130 ms of births and took 6-10 ms each, the loop fell behind its
cutoffs after each, so the next collection found no gap either and went to a window too. The pacer
collected every ~135 ms instead of every 10, and the run answered as late as 166 ms
(bench/RESULTS.md).

``gc.enable()`` again on :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from exchange.pauses import PauseWindows
from ssp.tasks import stop_task

#: Overruns kept for /stats (``recent_overruns``).
RECENT_OVERRUNS = 32

#: A middle or full collection is expected to take at least this many times the longest of the
#: last young ones (see :meth:`GcPacer.expected_pause`).
OLDER_OVER_YOUNG = 2.0

#: How often the middle and the full collections come by default (``gen1_every`` and
#: ``gen2_every`` are these over ``interval_s``).
MIDDLE_EVERY_S = 1.0
FULL_EVERY_S = 600.0

#: An overdue young collection expected to take at most this long runs without a gap, instead of
#: in a window reserved ahead (see the module's docstring).
FORCE_YOUNG_S = 0.002

#: A reserved window is this many times the pause it is for (see :meth:`GcPacer._reserve`).
WINDOW_OVER_PAUSE = 1.5


class GcPacer:
    def __init__(
        self,
        *,
        interval_s: float = 0.01,
        gen1_every: int | None = None,
        gen2_every: int | None = None,
        next_deadline: Callable[[], float | None] | None = None,
        slack_s: float = 0.002,
        poll_s: float = 0.005,
        max_defer_s: float | None = None,
        max_older_defer_s: float = 3.0,
        pauses: PauseWindows | None = None,
        lead_s: float = 0.0,
        force_young_s: float = FORCE_YOUNG_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s > 0")
        if gen1_every is None:
            gen1_every = max(1, round(MIDDLE_EVERY_S / interval_s))
        if gen2_every is None:
            gen2_every = max(gen1_every, round(FULL_EVERY_S / interval_s))
        if gen1_every < 1 or gen2_every < gen1_every:
            raise ValueError("1 <= gen1_every <= gen2_every")
        if max_defer_s is None:
            max_defer_s = interval_s
        if min(slack_s, max_defer_s, max_older_defer_s, lead_s, force_young_s) < 0 or poll_s <= 0:
            raise ValueError(
                "poll_s > 0; slack_s, max_defer_s, max_older_defer_s, lead_s, force_young_s >= 0"
            )
        self.interval_s = interval_s
        self.gen1_every = gen1_every
        self.gen2_every = gen2_every
        self.next_deadline = next_deadline
        self.slack_s = slack_s
        self.poll_s = poll_s
        self.max_defer_s = max_defer_s
        self.max_older_defer_s = max_older_defer_s
        self.pauses = pauses
        self.lead_s = lead_s
        self.force_young_s = force_young_s
        #: Collections run, by generation; of those, how many ran late regardless of a cutoff.
        self.collections = [0, 0, 0]
        self.forced = 0
        #: Collections run in a window reserved for them (instead of being forced).
        self.planned = 0
        #: Polls that found a collection due but a cutoff too close.
        self.deferred = 0
        #: Collections that were to end by a time (the next cutoff, or their window's end) and
        #: ended later: a pause longer than expected, which makes those cutoffs' answers late.
        self.overran = 0
        self.max_overrun_s = 0.0
        #: The last overruns, each ``(number, generation, pause_s, cpu_s, over_s)``: ``number``
        #: counts overruns since start (the ``overran`` it made), so that a reader holding an
        #: earlier ``overran`` knows which came since. CPU time well below the pause means the OS
        #: ran something else meanwhile; close to it, the collection itself was long.
        self.overruns: deque[tuple[int, int, float, float, float]] = deque(maxlen=RECENT_OVERRUNS)
        #: Longest single collection and the sum of all, seconds (wall clock); the CPU time of the
        #: longest (less than its wall time when the OS ran something else meanwhile).
        self.max_pause_s = 0.0
        self.max_pause_cpu_s = 0.0
        self.total_pause_s = 0.0
        #: The last few pauses of each generation, each ``(pause_s, age_s)``: ``age_s`` is how
        #: long the young generation had been filling (since the collection before).
        self._recent: list[deque[tuple[float, float]]] = [deque(maxlen=8) for _ in range(3)]
        self._count = 0  # turns taken in the schedule: which generation is due next
        self._older: int | None = None  # a middle or full collection waiting for its gap
        self._older_since = 0.0
        self._due = 0.0
        self._last = 0.0  # when the last collection ran
        #: A reserved window's collection: (generation, when, latest start that still ends in it,
        #: the window's end).
        self._plan: tuple[int, float, float, float] | None = None
        self._was_enabled = True
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._last = time.perf_counter()
        self._due = self._last + self.interval_s
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        if self._was_enabled:
            gc.enable()
        if self.pauses is not None:
            self.pauses.windows.clear()

    def due_generation(self) -> int:
        n = self._count + 1
        if n % self.gen2_every == 0:
            return 2
        return 1 if n % self.gen1_every == 0 else 0

    def expected_pause(self, generation: int, age_s: float | None = None) -> float:
        """The longest of the last few collections of ``generation`` (or of a younger middle
        one), and for a middle or full one at least :data:`OLDER_OVER_YOUNG` times the longest
        recent young one.

        With ``age_s``, how long the young generation will have been filling, each young pause
        is scaled by it over the age it was measured at: a young collection walks what was born
        since the one before, so one put off until a window 100 ms ahead walks ten times what
        one every 10 ms does. Without the scaling, one such pause (4-6 ms) was expected of the
        next eight young ones, so none fitted between the cutoffs, each got a window of its own,
        and each of those walked 110 ms of births: the pacer collected every 110 ms, not every
        10. The scaling is linear: past an auction's budget (its objects die with it) it
        expects too much, which costs a longer window, never a late answer.

        An older collection walks what a younger one does and more. Its own last few ran up to
        8 s ago, at a middle collection a second: when the load has just risen, they are the
        pauses of a lighter load, while the young collections, ten a second, already show the
        new one. In benchmark 3, the first middle collection of each run at 80% load was
        expected to take 1-3 ms, took 9-11 ms, and ended 6.6-10.5 ms past the cutoff it was to
        fit before; the young ones then took 5.6-7.4 ms.
        """
        young = max(
            (p * age_s / a if age_s is not None and a > 0 else p for p, a in self._recent[0]),
            default=0.0,
        )
        if generation == 0:
            return young
        below = max(
            max((p for p, _ in self._recent[g]), default=0.0) for g in range(1, generation + 1)
        )
        return max(below, OLDER_OVER_YOUNG * young)

    def fits(self, generation: int, now: float) -> bool:
        """Would a collection of ``generation`` started ``now`` end in time for the next cutoff?"""
        limit = self._limit()
        return limit is None or now + self.expected_pause(generation, now - self._last) <= limit

    def _limit(self) -> float | None:
        """When a collection must end: the next cutoff plus the slack (None: no auction waits)."""
        deadline = self.next_deadline() if self.next_deadline is not None else None
        return None if deadline is None else deadline + self.slack_s

    def collect(self, generation: int, age_s: float | None = None) -> tuple[float, float]:
        """Run one collection of ``generation`` now, the young generation having filled for
        ``age_s`` (default: one interval); its pause and CPU time in seconds."""
        t0, c0 = time.perf_counter(), time.thread_time()
        gc.collect(generation)
        pause = time.perf_counter() - t0
        cpu = time.thread_time() - c0
        self.collections[generation] += 1
        self._recent[generation].append((pause, self.interval_s if age_s is None else age_s))
        self.total_pause_s += pause
        if pause > self.max_pause_s:
            self.max_pause_s = pause
            self.max_pause_cpu_s = cpu
        return pause, cpu

    def poll(self, now: float) -> int | None:
        """Collect if one is due and fits (or is overdue); the generation collected, or None.

        A middle or full collection that does not fit when its turn comes waits for its gap on its
        own, up to ``max_older_defer_s``, while the young collections go on at their pace: it is
        the longer pause, so the harder gap to find, and waiting costs little while the young
        generation stays small.
        """
        plan = self._plan
        if plan is not None:
            generation, at, latest, end = plan
            if now < at:
                return None
            fits = self.fits(generation, now)
            if not fits and now < latest:
                # Auctions cut off at the window's start, their timers not run yet (a busy loop
                # runs timers late): let them answer first, the window has room.
                self.deferred += 1
                return None
            self._plan = None
            self.planned += 1
            self.forced += not fits
            collected = self._collect_at(generation, now, end if fits else None)
            if self.pauses is not None:
                self.pauses.release(time.perf_counter())
            return collected
        older = self._older
        if older is not None:
            fits = self.fits(older, now)
            if fits or now - self._older_since >= self.max_older_defer_s:
                self._older = None
                if not fits and self._reserve(older, now):
                    return None
                self.forced += not fits
                return self._collect_at(older, now, self._limit() if fits else None)
        if now < self._due:
            return None
        generation = self.due_generation()
        if generation > (older or 0) and self.fits(generation, now):
            self._count += 1
            self._older = None  # a fuller collection does the waiting one's work too
            return self._collect_at(generation, now, self._limit())
        fits = self.fits(0, now)
        if not fits and now - self._due < self.max_defer_s:
            self.deferred += 1
            return None
        self._count += 1
        if generation > (older or 0):
            self._older = generation
            if older is None:
                self._older_since = now
        if not fits and not self._short(now) and self._reserve(0, now):
            return None
        self.forced += not fits
        return self._collect_at(0, now, self._limit() if fits else None)

    def _short(self, now: float) -> bool:
        """Is the young collection due ``now`` expected to take at most ``force_young_s``?"""
        return self.expected_pause(0, now - self._last) <= self.force_young_s

    def _reserve(self, generation: int, now: float) -> bool:
        """Reserve a window for a collection that found no gap; False without ``pauses``.

        The window's length is :data:`WINDOW_OVER_PAUSE` times the pause expected for a young
        generation filling until then, plus the slack on either side: the room over the pause
        lets the auctions cut off at the window's start answer first (a busy loop runs their
        timers late) and leaves some for a pause longer than expected.
        """
        if self.pauses is None:
            return False
        at = now + self.lead_s + self.slack_s  # no cutoff already set falls after at - slack_s
        expected = self.expected_pause(generation, at - self._last)
        length = expected * WINDOW_OVER_PAUSE
        end = at + length + self.slack_s
        self.pauses.reserve(at - self.slack_s, end)
        self._plan = (generation, at, at + length - expected, end)
        return True

    def _collect_at(self, generation: int, now: float, end_by: float | None = None) -> int:
        """Collect ``generation`` now; with ``end_by`` (on ``now``'s clock), count it as overrun
        if it ends later."""
        pause, cpu = self.collect(generation, now - self._last)
        if end_by is not None:
            over = now + pause - end_by
            if over > 0:
                self.overran += 1
                self.max_overrun_s = max(self.max_overrun_s, over)
                self.overruns.append((self.overran, generation, pause, cpu, over))
        self._last = now
        self._due = now + self.interval_s
        return generation

    def snapshot(self) -> dict[str, Any]:
        """For /stats."""
        return {
            "mode": "paced",
            "interval_ms": self.interval_s * 1000,
            "collections": list(self.collections),
            "deferred_polls": self.deferred,
            "forced": self.forced,
            "planned": self.planned,
            "overran": self.overran,
            "max_overrun_ms": round(self.max_overrun_s * 1000, 3),
            "recent_overruns": [
                {
                    "number": n,
                    "generation": g,
                    "pause_ms": round(pause * 1000, 3),
                    "cpu_ms": round(cpu * 1000, 3),
                    "over_ms": round(over * 1000, 3),
                }
                for n, g, pause, cpu, over in self.overruns
            ],
            "cutoffs_moved": self.pauses.moved if self.pauses is not None else 0,
            "max_pause_ms": round(self.max_pause_s * 1000, 3),
            "max_pause_cpu_ms": round(self.max_pause_cpu_s * 1000, 3),
            "total_pause_s": round(self.total_pause_s, 3),
        }

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.next_poll_in(time.perf_counter()))
            self.poll(time.perf_counter())

    def next_poll_in(self, now: float) -> float:
        """Seconds until :meth:`poll` may have something to do.

        A reserved window: when it comes. A collection due, or a middle or full one waiting for
        its gap: ``poll_s``, to look for one. Otherwise nothing is due before ``_due``, and the
        pacer sleeps until then rather than wake every ``poll_s`` for nothing (an idle SSP woke
        ~200 times a second for it, each time taking the CPU from whatever else ran there).
        """
        if self._plan is not None:  # wake when the window comes, not up to poll_s after
            return min(self.poll_s, max(0.001, self._plan[1] - now))
        if self._older is not None:
            return self.poll_s
        return max(self.poll_s, self._due - now)
