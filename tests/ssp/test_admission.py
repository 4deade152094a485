"""Admission control: a late event loop sheds new auctions at once, counted as overload."""

from __future__ import annotations

import asyncio
import time

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
