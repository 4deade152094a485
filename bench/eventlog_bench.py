"""CPU per auction with and without the event log and the dashboard's live view (issue 7).

The in-process auction step of bench/cpu.py (five in-process ``random`` bidders, one parsed
request, uvloop), timed with ``time.process_time()`` (every thread of the process, so the event
log's writer thread is counted), in four set-ups: no listener; the live view (``ssp.dashboard``,
on by default), ticked once per ``--rate`` auctions as it would be once a second at that rate;
the event log (encoding and writing included: the timed region ends when the log has written
everything); both. Rounds alternate the set-ups; medians and minima (the least disturbed round,
on a shared machine) are reported.

    .venv/bin/python -m bench.eventlog_bench [--auctions 10000] [--repeats 15] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.inprocess_ssp import bidders as make_bidders
from bench.request import sample_request
from exchange import events
from exchange.engine import Exchange
from exchange.eventlog import EventLog
from exchange.events import EventRecorder
from exchange.openrtb import BidRequest, parse_bid_request
from exchange.settings import ExchangeSettings
from exchange.transport import InProcessBidder
from gavel.serve import loop_factory
from ssp.live import LiveView

SETUPS = ("none", "live view", "event log", "both")


async def _round(setup: str, request: BidRequest, n: int, rate: int, folder: Path) -> float:
    settings = ExchangeSettings(seed=1)
    exchange = Exchange(
        settings=settings,
        transports=[InProcessBidder(name=k, bidder=b) for k, b in make_bidders(5).items()],
    )
    listeners: list[Any] = []
    live = log = None
    if setup in ("live view", "both"):
        live = LiveView(
            stats=exchange.stats, bidders=list(exchange.transports), tmax_ms=100, tick_s=3600
        )
        listeners.append(live)
    if setup in ("event log", "both"):
        log = EventLog(
            folder / f"events-{setup.replace(' ', '-')}.jsonl",
            encode=functools.partial(events.encode, fee_bps=settings.fee_bps),
            queue_size=max(100_000, n + 1000),
        )
        log.start()
        listeners.append(EventRecorder(log))
    exchange.listeners = tuple(listeners)

    async def step(i: int) -> None:
        await exchange.auction(request, arrival=time.perf_counter())
        await asyncio.sleep(0)
        if live is not None and i % rate == rate - 1:
            live.tick()

    for i in range(n // 10):  # warm-up
        await step(i)
    if log is not None:
        await _drained(log)
    gc.collect()
    t0 = time.process_time()
    for i in range(n):
        await step(i)
    if log is not None:
        await _drained(log)
    cpu = (time.process_time() - t0) / n
    if log is not None:
        await log.close()
        assert log.dropped == 0 and log.failed == 0
    return cpu


async def _drained(log: EventLog) -> None:
    log._wake.set()  # flush now rather than at the next interval
    while log.backlog:
        await asyncio.sleep(0.001)


async def _main(n: int, repeats: int, rate: int) -> dict[str, Any]:
    request = parse_bid_request(orjson.dumps(sample_request()))
    gc.collect()
    gc.freeze()
    runs: dict[str, list[float]] = {s: [] for s in SETUPS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for setup in SETUPS:
                runs[setup].append(await _round(setup, request, n, rate, Path(tmp)))
            line = ", ".join(f"{s} {runs[s][-1] * 1e6:.1f} us" for s in SETUPS)
            print(f"round {r + 1}/{repeats}: {line}", flush=True)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
    med = {s: statistics.median(v) * 1e6 for s, v in runs.items()}
    low = {s: min(v) * 1e6 for s, v in runs.items()}
    return {
        "auctions": n,
        "repeats": repeats,
        "tick_every": rate,
        "median_us": {s: round(v, 2) for s, v in med.items()},
        "median_overhead_us": {s: round(v - med["none"], 2) for s, v in med.items()},
        "min_us": {s: round(v, 2) for s, v in low.items()},
        "min_overhead_us": {s: round(v - low["none"], 2) for s, v in low.items()},
        "bytes_per_auction_record": round(size / (2 * repeats * (n + n // 10))),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.eventlog_bench", description=__doc__)
    p.add_argument("--auctions", type=int, default=10_000, help="auctions per round")
    p.add_argument("--repeats", type=int, default=15, help="rounds of each set-up")
    p.add_argument("--rate", type=int, default=1000, help="auctions per live-view tick")
    args = p.parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result = runner.run(_main(args.auctions, args.repeats, args.rate))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
