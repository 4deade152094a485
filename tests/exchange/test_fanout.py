"""The fan-out: started calls and tasks in one gather, late calls let go, and the cutoffs of the
auctions still waiting (for the SSP's paced collector)."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exchange.fanout import BID, HOPELESS_AFTER, NOBID, TIMEOUT, FanOut, Outcome
from exchange.http_bidder import HttpBidder
from exchange.lean_http import LeanHttpBidder
from exchange.openrtb import BidRequest, parse_bid_request
from exchange.transport import HardTimeout
from tests.conftest import eventually, free_port, one_route_app

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

    server = await aiohttp_server(one_route_app(hang))
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


def _dsp_app(release: asyncio.Event) -> web.Application:
    """A DSP that bids 1.5 on "/bid" and hangs until ``release`` on "/hang"."""

    async def bid(request: web.Request) -> web.Response:
        body = await request.json()
        seatbid = [{"bid": [{"id": "b", "impid": "1", "price": 1.5, "adm": "<a/>"}]}]
        return web.json_response({"id": body["id"], "seatbid": seatbid})

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/bid", bid)
    app.router.add_post("/hang", hang)
    return app


class _Sync:
    kind = "inprocess"
    is_async = False
    name = "inline"

    def call_sync(self, request: BidRequest) -> Any:
        return None


async def test_started_calls_and_tasks_report_into_one_gather_in_transport_order(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """Lean bidders are started with callbacks (no task per call), aiohttp's and async in-process
    ones run as tasks: one outcome each, in the transports' order (inline bidders first)."""
    release = asyncio.Event()
    server = await aiohttp_server(_dsp_app(release))
    url = str(server.make_url("/bid"))
    async with aiohttp.ClientSession() as session:
        lean = LeanHttpBidder(name="lean", url=url)
        reference = HttpBidder(name="aiohttp", url=url, session=session)
        hung = LeanHttpBidder(name="hung", url=str(server.make_url("/hang")), hard_timeout_s=5)
        held = _Held("held")
        fanout = FanOut([lean, held, _Sync(), reference, hung])  # type: ignore[list-item]
        assert fanout._starts == [True, False, False, True]
        running = asyncio.create_task(fanout.run(REQUEST, cutoff=time.perf_counter() + 0.3))
        await asyncio.sleep(0.1)
        coros = {t.get_coro().__qualname__ for t in asyncio.all_tasks()}  # type: ignore[union-attr]
        assert "FanOut._call" in coros  # the task for aiohttp's bidder or the held one...
        calls = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "FanOut._call"]  # type: ignore[union-attr]
        assert len(calls) == 1  # ...only the held one is still out: none for the lean ones
        outcomes = await running
        assert [(o.bidder, o.result) for o in outcomes] == [
            ("inline", NOBID),
            ("lean", BID),
            ("held", TIMEOUT),
            ("aiohttp", BID),
            ("hung", TIMEOUT),
        ]
        assert outcomes[1].bids[0].price == 1.5 and outcomes[1].latency < 0.3
        assert fanout.late_in_flight == 1  # the hung lean call drains; the held task is cancelled
        release.set()
        await eventually(lambda: fanout.late_in_flight == 0, what="the late call to end")
        await lean.close()
        await hung.close()


@pytest.mark.parametrize("late_calls, max_late", [("cancel", 8), ("drain", 1)])
async def test_late_started_calls_are_aborted_when_cancelling_or_past_max_late(
    aiohttp_server: Callable[..., Awaitable[TestServer]], late_calls: str, max_late: int
) -> None:
    release = asyncio.Event()
    server = await aiohttp_server(_dsp_app(release))
    hung = [
        LeanHttpBidder(name=f"hung{i}", url=str(server.make_url("/hang")), hard_timeout_s=5)
        for i in range(2)
    ]
    fanout = FanOut(hung, late_calls=late_calls, max_late=max_late)
    outcomes = await fanout.run(REQUEST, cutoff=time.perf_counter() + 0.05)
    assert [o.result for o in outcomes] == [TIMEOUT, TIMEOUT]
    kept = 0 if late_calls == "cancel" else 1
    assert fanout.late_in_flight == kept
    # An aborted call's connection closes at once; a drained one stays open until its answer.
    await eventually(
        lambda: sum(b.open_connections for b in hung) == kept, what="aborted connections to close"
    )
    release.set()
    await eventually(lambda: fanout.late_in_flight == 0, what="the late call to end")
    for bidder in hung:
        await bidder.close()


async def test_a_cancelled_auction_lets_its_calls_go(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """An auction cancelled while it waits (its client went away) drains its calls like a cutoff
    would: none is left uncounted."""
    release = asyncio.Event()
    server = await aiohttp_server(_dsp_app(release))
    hung = LeanHttpBidder(name="hung", url=str(server.make_url("/hang")), hard_timeout_s=5)
    fanout = FanOut([hung])
    running = asyncio.create_task(fanout.run(REQUEST, cutoff=time.perf_counter() + 5))
    await eventually(lambda: hung.open_connections == 1, what="the call to go out")
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert fanout.late_in_flight == 1
    release.set()
    await eventually(lambda: fanout.late_in_flight == 0, what="the late call to end")
    await hung.close()


async def _run_for(fanout: FanOut, budget_s: float) -> list[Outcome]:
    """One auction whose cutoff is ``budget_s`` after it starts (not after it is created: under
    load, gathered auctions can start late enough to find no time left and call nobody)."""
    return await fanout.run(REQUEST, cutoff=time.perf_counter() + budget_s)


# A DSP that accepts connections and never answers, in its own process: the objects its side keeps
# are not counted with the exchange's.
_HANG_SERVER = """
import asyncio, sys
async def main():
    async def hang(reader, writer):
        await asyncio.sleep(3600)
    server = await asyncio.start_server(hang, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


async def test_a_late_call_keeps_few_objects_for_the_garbage_collector() -> None:
    """Each call draining after its auction's cutoff is walked by every collection until it ends
    (up to late_grace_ms): with a hung DSP, at a thousand auctions a second, those objects were
    most of the middle collections' work. No task, coroutine, future, timer or parser per call;
    about 12 tracked objects each (33 with a task per call)."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HANG_SERVER, str(port), stdout=asyncio.subprocess.PIPE
    )
    bidder = LeanHttpBidder(name="hung", url=f"http://127.0.0.1:{port}/bid", hard_timeout_s=30)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"ready\n"
        fanout = FanOut([bidder])
        n = 50

        async def batch() -> Counter[str | None]:
            runs = [_run_for(fanout, 0.02) for _ in range(n)]
            reasons = Counter(
                o.reason for outcomes in await asyncio.gather(*runs) for o in outcomes
            )
            await asyncio.sleep(0.05)  # the connections opened: what stays while the calls drain
            return reasons

        await batch()  # warm-up: first-time caches (ABC checks, imports) are not per call
        gc.collect()
        before = gc.get_objects()  # kept alive, so that no new object reuses an id of theirs
        seen = {id(o) for o in before}
        reasons = await batch()
        gc.collect()
        new = Counter(type(o).__name__ for o in gc.get_objects() if id(o) not in seen)
        assert fanout.late_in_flight == bidder.open_connections == 2 * n, reasons
        assert sum(new.values()) <= 16 * n, new
        per_call = {kind for kind, count in new.items() if count >= n}
        assert not {"Task", "coroutine", "Future", "TimerHandle", "HttpResponseParser"} & per_call
    finally:
        await bidder.close()
        proc.terminate()
        await proc.wait()


async def test_a_bidder_whose_late_calls_never_end_stops_draining_until_one_does(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """Draining keeps connections for bidders that answer late. After HOPELESS_AFTER late calls in
    a row ran out the hard timeout, a bidder's late calls are closed at the cutoff, but one in
    HOPELESS_AFTER still drains: when that one is answered, draining resumes."""
    release = asyncio.Event()
    mode = ["hang"]

    async def dsp(request: web.Request) -> web.Response:
        if mode[0] == "hang":
            await release.wait()
        await asyncio.sleep(0.03)  # slow: past the 10 ms cutoff, within the hard timeout
        return web.Response(status=204)

    server = await aiohttp_server(one_route_app(dsp))
    bidder = LeanHttpBidder(name="dsp", url=str(server.make_url("/bid")), hard_timeout_s=0.1)
    fanout = FanOut([bidder])

    async def auctions(n: int) -> None:
        runs = [_run_for(fanout, 0.01) for _ in range(n)]
        for outcomes in await asyncio.gather(*runs):
            assert [o.result for o in outcomes] == [TIMEOUT]

    await auctions(HOPELESS_AFTER)  # all left to drain...
    assert fanout.late_in_flight == HOPELESS_AFTER
    await eventually(lambda: fanout.late_in_flight == 0, what="the hard timeouts")
    await auctions(1)  # ...and none answered: the next late call is closed at its cutoff
    assert (fanout.late_in_flight, fanout.late_given_up) == (0, 1)
    await eventually(lambda: bidder.open_connections == 0, what="the connections to close")
    await auctions(HOPELESS_AFTER - 2)
    assert (fanout.late_in_flight, fanout.late_given_up) == (0, HOPELESS_AFTER - 1)
    await auctions(1)  # one in HOPELESS_AFTER still drains: the probe
    assert (fanout.late_in_flight, fanout.late_given_up) == (1, HOPELESS_AFTER - 1)
    mode[0] = "slow"
    release.set()  # the DSP recovers: the probe gets its (late) answer
    await eventually(lambda: fanout.late_in_flight == 0, what="the probe's answer")
    await auctions(1)
    assert (fanout.late_in_flight, fanout.late_given_up) == (1, HOPELESS_AFTER - 1)  # drains again
    await eventually(lambda: fanout.late_in_flight == 0, what="the late answer")
    await bidder.close()


@pytest.mark.parametrize("client", ["lean", "aiohttp"])
async def test_both_clients_tell_a_hard_timeout_from_other_errors(
    aiohttp_server: Callable[..., Awaitable[TestServer]], client: str
) -> None:
    """What the fan-out's draining decision reads: a call that ran out the hard timeout."""
    release = asyncio.Event()
    server = await aiohttp_server(_dsp_app(release))
    url = str(server.make_url("/hang"))
    async with aiohttp.ClientSession() as session:
        bidder: Any
        if client == "lean":
            bidder = LeanHttpBidder(name="hung", url=url, hard_timeout_s=0.1)
        else:
            bidder = HttpBidder(name="hung", url=url, session=session, hard_timeout_s=0.1)
        with pytest.raises(HardTimeout, match="hard timeout"):
            await bidder.call(REQUEST, b"{}", 50)
        release.set()
        if client == "lean":
            await bidder.close()
