"""Figure (a): CPU per auction with 5 in-process bidders, against calling the bidders bare.

Both run in this process on uvloop, on the same parsed request, timed with ``time.process_time()``;
each step yields to the loop once, so that what an auction schedules (feedback hooks) is counted.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bench.inprocess_ssp import bidders as make_bidders
from bench.request import sample_request
from exchange.engine import Exchange
from exchange.openrtb import BidRequest, parse_bid_request
from exchange.settings import ExchangeSettings
from exchange.transport import InProcessBidder
from gavel.serve import loop_factory


async def _timed(step: Callable[[], Awaitable[None]], n: int) -> float:
    """CPU seconds per call of ``step``, over ``n`` calls after ``n // 10`` warm-up calls."""
    for _ in range(max(1, n // 10)):
        await step()
    gc.collect()
    t0 = time.process_time()
    for _ in range(n):
        await step()
    return (time.process_time() - t0) / n


def _exchange_step(request: BidRequest) -> tuple[Callable[[], Awaitable[None]], Exchange]:
    exchange = Exchange(
        settings=ExchangeSettings(seed=1),
        transports=[InProcessBidder(name=n, bidder=b) for n, b in make_bidders(5).items()],
    )

    async def step() -> None:
        await exchange.auction(request, arrival=time.perf_counter())
        await asyncio.sleep(0)  # let the loop run what the auction scheduled (feedback hooks)

    return step, exchange


def _bare_step(request: BidRequest) -> Callable[[], Awaitable[None]]:
    bidders = list(make_bidders(5).values())

    async def step() -> None:
        best = 0.0
        for bidder in bidders:
            answer = bidder.bid(request)
            if answer:
                for seatbid in answer["seatbid"]:
                    for bid in seatbid["bid"]:
                        best = max(best, bid["price"])
        await asyncio.sleep(0)

    return step


async def _cpu_rounds(
    auctions: int, repeats: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    request = parse_bid_request(orjson.dumps(sample_request()))
    gc.collect()
    gc.freeze()  # as the SSP does after start-up
    bare: list[float] = []
    gavel: list[float] = []
    filled = total = 0
    for r in range(repeats):
        bare.append(await _timed(_bare_step(request), auctions))
        step, exchange = _exchange_step(request)
        gavel.append(await _timed(step, auctions))
        filled, total = exchange.stats.filled, exchange.stats.auctions
        progress(
            f"(a) round {r + 1}/{repeats}: bare {bare[-1] * 1e6:.1f} us, "
            f"exchange {gavel[-1] * 1e6:.1f} us per auction"
        )
    b, g = statistics.median(bare), statistics.median(gavel)
    return {
        "baseline_us": round(b * 1e6, 2),
        "gavel_us": round(g * 1e6, 2),
        "ratio": round(g / b, 2),
        "overhead_us": round((g - b) * 1e6, 2),
        "auctions_per_round": auctions,
        "fill_rate": round(filled / total, 4) if total else 0.0,
        "runs": {"baseline_us": [x * 1e6 for x in bare], "gavel_us": [x * 1e6 for x in gavel]},
    }


def bench_cpu(auctions: int, repeats: int, progress: Callable[[str], None]) -> dict[str, Any]:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_cpu_rounds(auctions, repeats, progress))
