"""Admission control: a late event loop sheds new auctions at once, counted as overload."""

from __future__ import annotations

import asyncio
import time

import pytest

from ssp.admission import LagMonitor
from ssp.config import SspSettings
from ssp.server import STATE
from tests.conftest import StartDsp, StartSsp, bid_request, stats


async def test_lag_monitor_sees_a_blocked_loop() -> None:
    monitor = LagMonitor(interval_s=0.005, smoothing=1.0)
    monitor.start()
    await asyncio.sleep(0.02)
    time.sleep(0.08)  # block the loop, as a CPU-bound burst would
    await asyncio.sleep(0.02)
    await monitor.stop()
    assert monitor.max_lag >= 0.05


def _spin(cpu_s: float) -> None:
    """Hold the loop on the CPU for ``cpu_s`` of this thread's CPU time (a long callback)."""
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass


async def test_a_stall_says_whether_the_loop_was_on_the_cpu() -> None:
    monitor = LagMonitor(interval_s=0.005, stall_s=0.02)
    monitor.start()
    try:
        await asyncio.sleep(0.02)
        assert monitor.stalls == 0
        _spin(0.06)  # the SSP's own work
        await asyncio.sleep(0.02)
        time.sleep(0.06)  # off the CPU, as when the OS runs something else
        await asyncio.sleep(0.02)
    finally:
        await monitor.stop()
    # (A busy machine may add a stall of its own: look for the two made here, in order.)
    long = [r for r in monitor.recent if r[1] >= 0.05]
    assert monitor.stalls == len(monitor.recent) >= len(long) == 2
    (n1, late1, gap1, cpu1), (n2, late2, gap2, cpu2) = long
    assert n1 < n2
    assert gap1 >= late1 and cpu1 >= 0.06  # on the CPU the whole time
    assert gap2 >= late2 and cpu2 < 0.03  # off it
    snap = monitor.snapshot()
    assert snap["stalls"] == monitor.stalls and snap["stall_ms"] == 20.0
    numbers = [s["number"] for s in snap["recent_stalls"]]  # type: ignore[attr-defined]
    assert numbers == list(range(1, monitor.stalls + 1))


async def test_the_monitor_measures_how_busy_the_loop_is() -> None:
    shares: list[float] = []
    monitor = LagMonitor(interval_s=0.005, busy_window_s=0.05, on_busy=shares.append)
    monitor.start()
    try:
        await asyncio.sleep(0.02)
        _spin(0.2)  # on the CPU for 4 windows: the next tick weighs in fully
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        busy = monitor.busy
        await asyncio.sleep(0.3)  # idle for 6 windows
    finally:
        await monitor.stop()
    assert busy > 0.5  # (1.0 unless the machine took the CPU meanwhile)
    assert monitor.busy < 0.2
    assert shares and shares[-1] == monitor.busy and max(shares) >= busy
    assert monitor.snapshot()["busy"] == monitor.busy


async def test_a_busy_loop_keeps_a_longer_margin(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    dsp = await start_dsp("a", price=2.0)
    client = await start_ssp(dsps=[dsp])
    lag = client.app[STATE].lag
    lag.busy_window_s = 0.05
    _spin(0.2)  # the test shares the SSP's loop: keep it on the CPU
    await asyncio.sleep(0)
    await asyncio.sleep(0.001)
    await lag.stop()  # hold the measure still
    busy = lag.busy
    assert busy > 0.5
    s = await stats(client)
    margin_ms = min(15.0, max(5.0, 3.0 * busy / (1 - busy)))
    assert s["loop_lag_s"]["busy"] == busy
    assert s["margin_ms"] == pytest.approx(margin_ms)
    metrics = await (await client.get("/metrics")).text()
    gauges = dict(
        line.split()
        for line in metrics.splitlines()
        if line.startswith(("gavel_deadline_margin_", "gavel_event_loop_busy_"))
    )
    assert float(gauges["gavel_event_loop_busy_ratio"]) == pytest.approx(busy)
    assert float(gauges["gavel_deadline_margin_seconds"]) == pytest.approx(margin_ms / 1000)
    resp = await client.post("/openrtb2/auction", json=bid_request())
    assert resp.status == 200
    assert dsp.bidder.seen_[-1].tmax <= 100 - margin_ms  # the bidder was told


async def test_stats_list_the_loops_recent_stalls(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=[await start_dsp("a", price=2.0)])
    before = (await stats(client))["loop_lag_s"]
    time.sleep(0.05)  # the test shares the SSP's loop: hold it
    await asyncio.sleep(0.05)
    after = (await stats(client))["loop_lag_s"]
    assert after["stalls"] > before["stalls"]
    # the one made here: the longest since (a busy machine may add shorter ones around it)
    new = [s for s in after["recent_stalls"] if s["number"] > before["stalls"]]
    stall = max(new, key=lambda s: s["late_ms"])
    assert before["stalls"] < stall["number"] <= after["stalls"]
    assert stall["late_ms"] >= 30 and stall["gap_ms"] >= stall["late_ms"]
    assert 0 <= stall["cpu_ms"] < stall["gap_ms"]
    metrics = await (await client.get("/metrics")).text()
    counted = [
        line for line in metrics.splitlines() if line.startswith("gavel_event_loop_stalls_total")
    ]
    assert counted and float(counted[0].split()[-1]) >= after["stalls"]


async def test_auctions_are_shed_while_the_loop_lags(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(
        dsps=[await start_dsp("a", price=2.0)], ssp=SspSettings(gc_freeze=False, max_loop_lag_ms=5)
    )
    resp = await client.post("/openrtb2/auction", json=bid_request())
    assert resp.status == 200
    lag = client.app[STATE].lag
    await lag.stop()  # hold the measure still: as if the loop had been 50 ms late on average
    lag.lag = 0.050
    resp = await client.post("/openrtb2/auction", json=bid_request())
    assert resp.status == 204
    assert resp.headers["x-gavel-nbr"] == "1"
    s = await stats(client)
    assert s["overload"] == 1
    assert s["loop_lag_s"]["smoothed"] >= 0.0
    lag.lag = 0.0
    resp = await client.post("/openrtb2/auction", json=bid_request())
    assert resp.status == 200


async def test_zero_turns_the_lag_check_off(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    client = await start_ssp(
        dsps=[await start_dsp("a", price=2.0)], ssp=SspSettings(gc_freeze=False, max_loop_lag_ms=0)
    )
    await client.app[STATE].lag.stop()
    client.app[STATE].lag.lag = 1.0
    resp = await client.post("/openrtb2/auction", json=bid_request())
    assert resp.status == 200


async def test_the_gc_threshold_is_set_at_start_up(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    import gc

    before = gc.get_threshold()
    try:
        await start_ssp(
            dsps=[await start_dsp("a", price=2.0)],
            ssp=SspSettings(gc_freeze=False, gc_interval_ms=0, gc_threshold=12_345),
        )
        assert gc.get_threshold()[0] == 12_345
    finally:
        gc.set_threshold(*before)


async def test_the_ssp_tracks_cutoffs_for_answers_first(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(
        dsps=[await start_dsp("a", price=2.0)], ssp=SspSettings(gc_freeze=False, gc_interval_ms=0)
    )
    assert client.app[STATE].gc is None  # no pacer: the cutoffs are tracked all the same
    assert client.app[STATE].exchange.fanout.track_cutoffs
    resp = await client.post("/openrtb2/auction", json=bid_request())
    assert resp.status == 200
    assert (await stats(client))["answers_first"] == 0  # nothing was past its cutoff
