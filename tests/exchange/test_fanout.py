"""The fan-out knows the cutoffs of the auctions still waiting (for the SSP's paced collector)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from exchange.fanout import TIMEOUT, FanOut
from exchange.openrtb import BidRequest, parse_bid_request

REQUEST = parse_bid_request({"id": "r", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]})


class _Held:
    """An async bidder that answers no-bid when its event is set."""

    kind = "inprocess"
    is_async = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.release = asyncio.Event()

    async def call(self, request: BidRequest, payload: bytes, tmax_ms: int) -> Any:
        await self.release.wait()
        return None


async def test_next_cutoff_is_the_earliest_of_the_auctions_still_waiting() -> None:
    held = _Held("a")
    fanout = FanOut([held])
    assert fanout.next_cutoff() is None
    now = time.perf_counter()
    late = asyncio.create_task(fanout.run(REQUEST, cutoff=now + 5.0))
    early = asyncio.create_task(fanout.run(REQUEST, cutoff=now + 2.0))
    await asyncio.sleep(0.01)
    assert fanout.next_cutoff() == now + 2.0
    held.release.set()  # both auctions end before their cutoffs
    await asyncio.gather(late, early)
    assert fanout.next_cutoff() is None
    assert not fanout._cutoffs and not fanout._ended  # nothing kept for ended auctions


async def test_an_auction_that_times_out_leaves_no_cutoff_behind() -> None:
    held = _Held("slow")
    fanout = FanOut([held])
    outcomes = await fanout.run(REQUEST, cutoff=time.perf_counter() + 0.02)
    assert [o.result for o in outcomes] == [TIMEOUT]
    assert fanout.next_cutoff() is None
    held.release.set()
    await asyncio.sleep(0)
