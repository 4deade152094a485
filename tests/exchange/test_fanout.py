"""The fan-out knows the cutoffs of the auctions still waiting (for the SSP's paced collector)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from exchange.fanout import TIMEOUT, FanOut
from exchange.lean_http import LeanHttpBidder
from exchange.openrtb import BidRequest, parse_bid_request
from tests.conftest import eventually

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
    fanout.track_cutoffs = True
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


async def test_cutoffs_are_kept_only_when_asked_for() -> None:
    held = _Held("a")
    fanout = FanOut([held])
    waiting = asyncio.create_task(fanout.run(REQUEST, cutoff=time.perf_counter() + 5.0))
    await asyncio.sleep(0.01)
    assert fanout.next_cutoff() is None and not fanout._cutoffs  # no heap work per auction
    held.release.set()
    await waiting


async def test_an_auction_that_times_out_leaves_no_cutoff_behind() -> None:
    held = _Held("slow")
    fanout = FanOut([held])
    fanout.track_cutoffs = True
    outcomes = await fanout.run(REQUEST, cutoff=time.perf_counter() + 0.02)
    assert [o.result for o in outcomes] == [TIMEOUT]
    assert fanout.next_cutoff() is None
    held.release.set()
    await asyncio.sleep(0)


async def test_a_late_http_call_drains_without_holding_the_request(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """A hung DSP's calls drain in the background for up to late_grace_ms each; they keep their
    connection, not the parsed request (with one hung DSP, held requests were most of what the
    garbage collector walked)."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/bid", hang)
    server = await aiohttp_server(app)
    bidder = LeanHttpBidder(name="hung", url=str(server.make_url("/bid")), hard_timeout_s=5)
    fanout = FanOut([bidder])
    request = parse_bid_request({"id": "r", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]})
    before = sys.getrefcount(request)
    outcomes = await fanout.run(request, cutoff=time.perf_counter() + 0.05)
    assert [o.result for o in outcomes] == [TIMEOUT]
    assert fanout.late_in_flight == 1  # still draining...
    assert sys.getrefcount(request) == before  # ...but not holding the request
    release.set()
    await eventually(lambda: fanout.late_in_flight == 0, what="the late call to end")
    await bidder.close()
