"""Paced garbage collection: automatic collection off, young collections on a clock, restored after."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from exchange.pauses import PauseWindows
from ssp.config import SspSettings
from ssp.gcpace import OLDER_OVER_YOUNG, WINDOW_OVER_PAUSE, GcPacer
from ssp.server import STATE
from tests.conftest import StartDsp, StartSsp, bid_request, eventually, stats


def remember(pacer: GcPacer, generation: int, *pauses: float, age: float = 0.1) -> None:
    """Recent pauses of ``generation``, each after the young generation filled for ``age``."""
    pacer._recent[generation].extend((p, age) for p in pauses)


def windowed(cutoff: list[float | None], pauses: PauseWindows, **settings: Any) -> GcPacer:
    """A pacer whose next cutoff is ``cutoff[0]``, reserving its windows in ``pauses`` one budget
    (100 ms) ahead."""
    return GcPacer(next_deadline=lambda: cutoff[0], pauses=pauses, lead_s=0.1, **settings)


def taking(pacer: GcPacer, young: float, middle: float) -> None:
    """Collections that take ``young`` and ``middle`` seconds, and collect nothing: tests whose
    arithmetic is about the pauses expected, which this process's own collections would change
    (on a busy machine one can take several ms)."""

    def collect(generation: int, age_s: float | None = None) -> tuple[float, float]:
        pause = young if generation == 0 else middle
        pacer.collections[generation] += 1
        pacer._recent[generation].append((pause, pacer.interval_s if age_s is None else age_s))
        return pause, pause

    pacer.collect = collect  # type: ignore[method-assign]


def test_collections_go_young_then_middle_then_everything() -> None:
    pacer = GcPacer(interval_s=1, gen1_every=3, gen2_every=6)
    pacer._due = 0.0
    order = [pacer.poll(float(t)) for t in range(1, 13)]
    assert order == [0, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 2]
    assert pacer.collections == [8, 2, 2]
    assert pacer.max_pause_s > 0 and pacer.total_pause_s >= pacer.max_pause_s


def test_a_middle_collection_waits_for_its_gap_while_young_ones_go_on() -> None:
    cutoff: list[float | None] = [None]
    pacer = GcPacer(
        interval_s=0.1, gen1_every=2, next_deadline=lambda: cutoff[0], max_older_defer_s=1
    )
    remember(pacer, 0, 0.001)  # young collections: 1 ms; middle ones: 15 ms
    remember(pacer, 1, 0.015)
    taking(pacer, 0.001, 0.015)
    pacer._due, pacer._last = 0.0, 9.9
    assert pacer.poll(10.0) == 0
    cutoff[0] = 10.1 + 0.005  # the middle one's turn, a cutoff in 5 ms: only a young one fits
    assert pacer.poll(10.1) == 0 and pacer._older == 1
    assert pacer.poll(10.12) is None  # no gap yet, and no young one due
    cutoff[0] = 10.2 + 0.005
    assert pacer.poll(10.2) == 0  # young ones keep their pace meanwhile
    cutoff[0] = 10.25 + 0.02  # a 20 ms gap: the middle collection takes it
    assert pacer.poll(10.25) == 1 and pacer._older is None and pacer.forced == 0
    cutoff[0] = 20.0 + 0.001
    pacer._due, pacer._last = 20.0, 19.9
    pacer._count = 1  # the next turn is a middle collection's again
    assert pacer.poll(20.0) == 0 and pacer._older == 1  # parked again
    cutoff[0] = 21.0 + 0.001
    assert pacer.poll(21.0) == 1 and pacer.forced >= 1  # waited max_older_defer_s: runs anyway


def test_a_collection_waits_for_a_gap_between_cutoffs_but_not_forever() -> None:
    cutoff: list[float | None] = [None]
    pacer = GcPacer(interval_s=0.1, next_deadline=lambda: cutoff[0], slack_s=0.002, max_defer_s=1)
    remember(pacer, 0, 0.010)  # young collections have taken 10 ms, one interval after the last
    pacer._due, pacer._last = 100.0, 99.9
    assert pacer.poll(99.95) is None  # not due yet
    cutoff[0] = 100.005  # a cutoff in 5 ms: a 10 ms pause would make it 5 ms late
    assert pacer.poll(100.0) is None and pacer.deferred == 1
    # 20 ms later the young generation has filled for 120 ms: a 12 ms pause. The next cutoff is
    # 11.5 ms away, with 2 ms of slack: it fits.
    cutoff[0] = 100.02 + 0.0115
    assert pacer.poll(100.02) == 0 and pacer.forced == 0
    pacer._due, pacer._last = 200.0, 199.9
    cutoff[0] = 200.0
    assert pacer.poll(200.9) is None  # still within max_defer_s
    assert pacer.poll(201.0) == 0 and pacer.forced == 1  # overdue: collected regardless
    cutoff[0] = None  # nothing waiting: any time is a good time
    pacer._due = 0.0
    assert pacer.poll(300.0) == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        GcPacer(interval_s=0)
    with pytest.raises(ValueError):
        GcPacer(interval_s=0.1, gen1_every=10, gen2_every=5)
    with pytest.raises(ValueError):
        GcPacer(interval_s=0.1, poll_s=0)
    with pytest.raises(ValueError, match="force_young_s"):
        GcPacer(interval_s=0.1, force_young_s=-0.001)
    with pytest.raises(ValueError, match="gc_interval_ms"):
        SspSettings(gc_interval_ms=-1)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


async def test_the_pacer_frees_cycles_with_automatic_collection_off() -> None:
    assert gc.isenabled()
    pacer = GcPacer(interval_s=0.01)
    pacer.start()
    try:
        assert not gc.isenabled()
        node = _Node()
        ref = weakref.ref(node)
        del node
        await eventually(lambda: ref() is None, timeout=5, what="the cycle to be collected")
        assert pacer.collections[0] >= 1
    finally:
        await pacer.stop()
    assert gc.isenabled()  # as it was before


async def test_the_ssp_paces_its_collections_and_says_so_in_stats(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(
        dsps=[await start_dsp("a", price=2.0)],
        ssp=SspSettings(gc_freeze=False, gc_interval_ms=20),  # the fixture turns the default off
    )
    try:
        assert not gc.isenabled()
        resp = await client.post("/openrtb2/auction", json=bid_request())
        assert resp.status == 200

        async def collected() -> bool:
            return (await stats(client))["gc"]["collections"][0] >= 2

        await eventually(collected, what="paced collections")
        gc_stats = (await stats(client))["gc"]
        assert gc_stats["mode"] == "paced" and gc_stats["interval_ms"] == 20
        await client.app[STATE].gc.stop()  # type: ignore[union-attr]
        assert gc.isenabled()
    finally:
        gc.enable()
        await asyncio.sleep(0)


def test_the_pacer_sleeps_until_a_collection_is_due_unless_one_waits_for_its_gap() -> None:
    pacer = GcPacer(interval_s=0.1, poll_s=0.005)
    pacer._due = 10.1
    assert pacer.next_poll_in(10.0) == pytest.approx(0.1)  # nothing to do before it is due
    assert pacer.next_poll_in(10.1) == 0.005  # due: look for a gap every poll_s
    assert pacer.next_poll_in(10.3) == 0.005
    pacer._older = 1  # a middle collection waits for its gap
    assert pacer.next_poll_in(10.0) == 0.005
    pacer._plan = (0, 10.002, 10.004, 10.010)  # a window reserved: wake when it comes
    assert pacer.next_poll_in(10.0) == pytest.approx(0.002)


async def test_an_idle_pacer_polls_once_an_interval_not_every_poll() -> None:
    pacer = GcPacer(interval_s=0.1, poll_s=0.005)
    polls = 0
    poll = pacer.poll

    def counting(now: float) -> int | None:
        nonlocal polls
        polls += 1
        return poll(now)

    pacer.poll = counting  # type: ignore[method-assign]
    pacer.start()
    try:
        await eventually(lambda: pacer.collections[0] >= 3, timeout=5, what="3 collections")
    finally:
        await pacer.stop()
    # Polling every 5 ms, 3 intervals of 100 ms took 60 polls; now about one each.
    assert polls <= 3 * 3


def test_an_older_generation_expects_twice_the_longest_young_pause_at_least() -> None:
    pacer = GcPacer(interval_s=0.1)
    assert pacer.expected_pause(2) == 0.0
    remember(pacer, 0, 0.003, 0.004)
    assert pacer.expected_pause(0) == 0.004
    assert pacer.expected_pause(1) == pacer.expected_pause(2) == OLDER_OVER_YOUNG * 0.004
    remember(pacer, 1, 0.012)
    assert (pacer.expected_pause(1), pacer.expected_pause(2)) == (0.012, 0.012)
    remember(pacer, 2, 0.040)
    assert (pacer.expected_pause(1), pacer.expected_pause(2)) == (0.012, 0.040)
    # The young generation filling twice as long: twice the young pause, for the older ones too.
    assert pacer.expected_pause(0, 0.2) == pytest.approx(0.008)
    assert pacer.expected_pause(1, 0.2) == pytest.approx(max(0.012, OLDER_OVER_YOUNG * 0.008))


def test_the_young_pause_expected_scales_with_how_long_the_generation_filled() -> None:
    """A young collection walks what was born since the one before. One put off until a window
    100 ms ahead walked ~11 intervals of births (4 ms); the next, 10 ms after it, walks one. Were
    it expected to take the 4 ms, it would find no gap at high load and get a window of its own,
    and so would the next: every collection 110 ms of births (benchmark 3, bench/RESULTS.md)."""
    cutoff: list[float | None] = [None]
    pacer = GcPacer(interval_s=0.01, next_deadline=lambda: cutoff[0], slack_s=0.002)
    remember(pacer, 0, 0.0004, 0.0005, age=0.01)
    remember(pacer, 0, 0.004, age=0.11)  # the planned one
    assert pacer.expected_pause(0) == 0.004  # no age: the longest, as measured
    assert pacer.expected_pause(0, 0.01) == pytest.approx(0.0005)
    assert pacer.expected_pause(0, 0.11) == pytest.approx(0.0055)  # 0.5 ms a 10 ms, 11 of them
    pacer._last = 100.0
    cutoff[0] = 100.011  # a cutoff 1 ms after the next collection is due, 2 ms of slack
    assert pacer.fits(0, 100.01)  # 0.5 ms: it fits
    assert not pacer.fits(0, 100.1)  # put off 90 ms more: 5 ms, it would not


def test_the_middle_and_full_collections_come_every_second_and_every_ten_minutes() -> None:
    pacer = GcPacer()
    assert (pacer.interval_s, pacer.gen1_every, pacer.gen2_every) == (0.01, 100, 60_000)
    pacer = GcPacer(interval_s=0.1)
    assert (pacer.gen1_every, pacer.gen2_every) == (10, 6000)
    pacer = GcPacer(interval_s=2)  # longer than a second: each collection a middle one
    assert (pacer.gen1_every, pacer.gen2_every) == (1, 300)
    assert GcPacer(interval_s=0.01, gen1_every=5).gen2_every == 60_000


def test_a_middle_collection_after_a_quiet_spell_expects_the_new_load() -> None:
    """Benchmark 3: middle collections of a quiet spell took ~1 ms; the load rose and the young
    collections took 6 ms; the next middle one took 11 ms. Expected at 1 ms, it fit a gap of a few
    ms and ended 10 ms past the cutoff it was to fit before; it must wait for a longer gap."""
    cutoff: list[float | None] = [None]
    pacer = GcPacer(interval_s=0.1, gen1_every=2, next_deadline=lambda: cutoff[0], slack_s=0.0)
    remember(pacer, 1, *[0.001] * 8)  # the quiet spell's middle collections
    remember(pacer, 0, *[0.001] * 4 + [0.006] * 4)  # the load is back
    pacer._count = 1  # the next collection is a middle one
    pacer._due, pacer._last = 100.0, 99.9
    cutoff[0] = 100.004  # a 4 ms gap: room for the old 1 ms, not for 6 ms or more
    assert pacer.due_generation() == 1 and not pacer.fits(1, 100.0)
    cutoff[0] = 100.013  # 13 ms: room for twice the young pauses
    assert pacer.fits(1, 100.0)


def test_a_collection_that_finds_no_gap_reserves_a_window_instead_of_forcing() -> None:
    """Given the exchange's pause windows, an overdue collection is not forced into the cutoffs:
    it reserves a window one budget (lead_s) ahead, sized by the pause it expects, and runs then."""
    cutoff: list[float | None] = [None]
    pauses = PauseWindows()
    pacer = windowed(cutoff, pauses, interval_s=0.1, slack_s=0.002, max_defer_s=0.1)
    remember(pacer, 0, 0.004)  # young collections take 4 ms, one interval after the last
    pacer._due, pacer._last = 100.0, 99.9
    cutoff[0] = 100.001  # cutoffs every millisecond from now on: never a gap
    assert pacer.poll(100.0) is None and pacer.deferred == 1
    assert pacer.poll(100.11) is None  # overdue: a window instead of a forced collection
    # Collected at 100.212, when the young generation will have filled for 312 ms: 3.12 x 4 ms
    # expected, the window half as long again, and the slack on either side. The collection may
    # start as late as leaves the 12.48 ms in the window.
    pause = 0.004 * 3.12
    length = pause * WINDOW_OVER_PAUSE
    plan = pytest.approx((0, 100.212, 100.212 + length - pause))
    assert pacer.forced == 0 and pacer._plan[:3] == plan  # type: ignore[index]
    ((start, end),) = pauses.windows
    assert (start, end) == (pytest.approx(100.21), pytest.approx(100.212 + length + 0.002))
    assert pacer.poll(100.15) is None  # not yet
    cutoff[0] = start  # cut off at the window's start, but not answered yet (a late timer)
    assert pacer.poll(100.212) is None  # they go first: the window has room
    cutoff[0] = end  # answered; the next cutoff is past the window
    assert pacer.poll(100.213) == 0
    assert (pacer.planned, pacer.forced, pacer.collections[0]) == (1, 0, 1)
    assert not pauses.windows  # released once the pause is over
    assert pacer.snapshot()["planned"] == 1


def test_an_overdue_young_collection_expected_short_runs_without_a_gap() -> None:
    """Benchmark 3 at 80% load (0.92 of the core): young collections sent to windows a budget
    ahead walked 130 ms of births (6-10 ms each) and the loop, behind its cutoffs after each,
    found no gap for the next one either. One expected to take at most ``force_young_s`` runs
    when overdue instead: the deadline margin absorbs that much, and the generation stays one
    interval young."""
    cutoff: list[float | None] = [None]
    pauses = PauseWindows()
    pacer = windowed(cutoff, pauses, interval_s=0.01, slack_s=0.002)
    taking(pacer, 0.0015, 0.01)
    # The last one was planned: 7 ms after 130 ms of births, ~0.5 ms an interval.
    remember(pacer, 0, 0.007, age=0.13)
    pacer._due, pacer._last = 100.0, 99.99
    cutoff[0] = 99.99  # the loop runs behind: a cutoff past, its answer not made yet
    assert not pacer.fits(0, 100.0)
    assert pacer.poll(100.0) is None and pacer.deferred == 1  # put off, one interval at most
    # Overdue, 20 ms of births: ~1.1 ms expected, under the 2 ms: collected now, not planned.
    assert pacer.expected_pause(0, 0.02) == pytest.approx(0.007 * 0.02 / 0.13)
    assert pacer.poll(100.01) == 0
    assert (pacer.forced, pacer.planned, pacer._plan) == (1, 0, None)
    assert not pauses.windows
    # Young pauses of 1.5 ms an interval: 30 ms of births would take 4.5 ms, over the 2 ms, so
    # that one gets a window.
    pacer._recent[0].clear()
    remember(pacer, 0, 0.0015, age=0.01)
    pacer._due = 100.02
    cutoff[0] = 100.019
    assert pacer.poll(100.02) is None and pacer.deferred == 2
    assert pacer.poll(100.04) is None and pacer._plan is not None and pauses.windows
    assert pacer.forced == 1
    # force_young_s = 0: every overdue young collection gets its window, as before.
    strict = windowed([99.0], PauseWindows(), interval_s=0.01, force_young_s=0)
    remember(strict, 0, 0.0001, age=0.01)
    strict._due, strict._last = 100.0, 99.99
    assert strict.poll(100.01) is None and strict._plan is not None


def test_a_parked_older_collection_is_planned_when_its_wait_is_over() -> None:
    cutoff: list[float | None] = [None]
    pauses = PauseWindows()
    pacer = windowed(cutoff, pauses, interval_s=0.1, gen1_every=2, max_older_defer_s=1)
    remember(pacer, 0, 0.001)
    remember(pacer, 1, 0.015)
    taking(pacer, 0.001, 0.015)
    pacer._due, pacer._last = 0.0, 9.9
    assert pacer.poll(10.0) == 0
    cutoff[0] = 10.105  # the middle one's turn; only a young one fits
    assert pacer.poll(10.1) == 0 and pacer._older == 1
    cutoff[0] = 11.1 + 0.001
    assert pacer.poll(11.1) is None  # waited max_older_defer_s: planned, not forced
    # At 11.202 the young generation will have filled for 1.102 s: 11.02 times the 1 ms of a
    # young collection, twice that for a middle one (more than its own last 15 ms).
    pause = OLDER_OVER_YOUNG * 0.001 * 11.02
    plan = pytest.approx((1, 11.202, 11.202 + pause * (WINDOW_OVER_PAUSE - 1)))
    assert pacer._plan[:3] == plan  # type: ignore[index]
    assert pacer._older is None
    assert pauses.windows[0][1] - pauses.windows[0][0] >= 0.015 + 0.004
    cutoff[0] = pauses.windows[0][1]
    assert pacer.poll(11.21) == 1 and (pacer.planned, pacer.forced) == (1, 0)


def test_a_planned_collection_runs_regardless_once_its_window_has_no_room_left() -> None:
    cutoff: list[float | None] = [None]
    pauses = PauseWindows()
    pacer = windowed(cutoff, pauses, interval_s=0.1)
    remember(pacer, 0, 0.004)
    pacer._last = 99.9
    assert pacer._reserve(0, 100.0)
    _, at, latest, _ = pacer._plan  # type: ignore[misc]
    cutoff[0] = at - 0.01  # an auction still waiting, long past its cutoff: it will not clear
    assert pacer.poll(at) is None
    assert pacer.poll(latest) == 0 and (pacer.planned, pacer.forced) == (1, 1)
    assert pacer.overran == 0  # forced: counted as such, not as an overrun


def test_a_collection_longer_than_its_gap_counts_as_overrun() -> None:
    """A pause that ends past the cutoff it was to fit before (its expected length was too short)
    is what makes answers late without a forced collection: /stats counts it."""
    cutoff: list[float | None] = [None]
    pacer = GcPacer(interval_s=0.1, next_deadline=lambda: cutoff[0], slack_s=0.0)
    remember(pacer, 0, 0.0)  # expected: no pause at all
    pacer._due = 100.0
    cutoff[0] = 100.0  # the next cutoff is now: any real pause ends past it
    assert pacer.poll(100.0) == 0 and pacer.forced == 0
    assert pacer.overran == 1 and pacer.max_overrun_s > 0
    snap = pacer.snapshot()
    assert snap["overran"] == 1 and snap["max_overrun_ms"] == round(pacer.max_overrun_s * 1000, 3)
    (recent,) = snap["recent_overruns"]
    assert recent["number"] == 1 and recent["generation"] == 0
    assert recent["over_ms"] == snap["max_overrun_ms"] and recent["pause_ms"] >= recent["over_ms"]
    assert recent["cpu_ms"] >= 0
    cutoff[0] = 200.0  # far away: no overrun
    pacer._due = 100.2
    assert pacer.poll(100.2) == 0 and pacer.overran == 1
