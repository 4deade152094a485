"""The deadline holds whatever the bidders do: hang, trickle, close the socket, answer garbage,
answer huge bodies, fail, or never return in-process.

Each test runs a misbehaving bidder next to a well-behaved one ("good", bidding 1.0) and checks
that the SSP answers within the auction's budget plus :data:`DEADLINE_SLACK_S`, that the good
bidder wins, and that the bad one is counted with the right outcome in /stats and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from dsp.faults import Faults
from exchange.openrtb import BidRequest
from exchange.settings import ExchangeSettings
from ssp.config import DspEndpoint
from tests.conftest import (
    DEADLINE_SLACK_S,
    Client,
    StartDsp,
    StartSsp,
    bid_request,
    eventually,
    free_port,
    metric,
    metrics_text,
    recording,
    stats,
)

pytestmark = pytest.mark.usefixtures("frozen_gc")

AUCTION = "/openrtb2/auction"
BUDGET_S = 0.100  # the default ExchangeSettings.tmax_ms


@pytest.fixture(params=["aiohttp", "lean"])
def http_transport(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both DSP clients (exchange.transport)."""
    return str(request.param)


async def timed_auction(
    client: Client, req: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any] | None, float]:
    """POST an auction; (status, answer, seconds until the whole answer was read)."""
    t0 = time.perf_counter()
    resp = await client.post(AUCTION, data=orjson.dumps(req or bid_request()))
    body = await resp.read()
    elapsed = time.perf_counter() - t0
    return resp.status, (orjson.loads(body) if resp.status == 200 else None), elapsed


async def assert_good_wins_on_time(
    client: Client, bad: str, outcome: str, *, budget_s: float = BUDGET_S, auctions: int = 1
) -> dict[str, Any]:
    """Run ``auctions`` auctions; each answered in time and won by "good"; ``bad`` counted as
    ``outcome`` every time. Returns the final /stats."""
    for i in range(auctions):
        status, answer, elapsed = await timed_auction(client, bid_request(f"r-{i}"))
        assert elapsed < budget_s + DEADLINE_SLACK_S, f"answered after {elapsed * 1000:.1f} ms"
        assert status == 200
        assert answer is not None
        assert [sb["seat"] for sb in answer["seatbid"]] == ["good"]
        assert answer["seatbid"][0]["bid"][0]["price"] == 0.01
    s = await stats(client)
    counts = s["bidders"][bad]
    assert counts["requests"] == auctions
    field = {"timeout": "timeouts", "error": "errors", "invalid": "invalid"}[outcome]
    assert counts[field] == auctions, counts
    assert counts["bids"] == 0 and counts["wins"] == 0
    assert s["bidders"]["good"]["wins"] == auctions
    text = await metrics_text(client)
    assert metric(text, "gavel_bidder_outcomes_total", bidder=bad, result=outcome) == auctions
    assert metric(text, "gavel_bidder_outcomes_total", bidder="good", result="bid") == auctions
    return s


@pytest.mark.parametrize("late_calls", ["drain", "cancel"])
async def test_hung_dsp_times_out_and_the_answer_is_on_time(
    start_dsp: StartDsp, start_ssp: StartSsp, late_calls: str
) -> None:
    hung = await start_dsp("hung", price=9.0, faults=Faults(hang_rate=1.0, hang_s=5))
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(
        dsps=[hung, good], settings=ExchangeSettings(seed=1, late_calls=late_calls)
    )
    s = await assert_good_wins_on_time(client, "hung", "timeout", auctions=3)
    assert max(s["latency_s"].values()) < BUDGET_S + DEADLINE_SLACK_S
    if late_calls == "drain":
        # the late calls finish in the background, bounded by late_grace_ms (1 s)
        assert s["late_calls_draining"] == 3
        text = await metrics_text(client)
        assert metric(text, "gavel_late_bidder_calls") == 3

        async def drained() -> bool:
            return (await stats(client))["late_calls_draining"] == 0

        await eventually(drained, timeout=5, what="the late calls to be cut off")
    else:
        assert s["late_calls_draining"] == 0
    # the outcomes of the late calls, whenever they ended, were not counted again
    assert (await stats(client))["bidders"]["hung"]["requests"] == 3


async def test_request_tmax_bounds_the_wait_for_a_hung_dsp(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    hung = await start_dsp("hung", price=9.0, faults=Faults(hang_rate=1.0, hang_s=5))
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[hung, good])
    status, answer, elapsed = await timed_auction(client, bid_request(tmax=30))
    assert elapsed < 0.030 + DEADLINE_SLACK_S
    assert status == 200 and answer is not None
    assert answer["seatbid"][0]["seat"] == "good"


async def test_garbage_answer_is_invalid(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    garbage = await start_dsp("garbage", price=9.0, faults=Faults(garbage_rate=1.0))
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[garbage, good])
    await assert_good_wins_on_time(client, "garbage", "invalid", auctions=2)


async def test_http_500_is_an_error(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    failing = await start_dsp("failing", price=9.0, faults=Faults(error_rate=1.0))
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[failing, good])
    await assert_good_wins_on_time(client, "failing", "error", auctions=2)


async def test_dsp_that_is_down_is_an_error(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    good = await start_dsp("good", price=1.0)
    down = DspEndpoint("down", f"http://127.0.0.1:{free_port()}/openrtb2/bid")
    client = await start_ssp(dsps=[down, good])
    await assert_good_wins_on_time(client, "down", "error", auctions=2)


async def test_unknown_host_is_an_error(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    good = await start_dsp("good", price=1.0)
    nowhere = DspEndpoint("nowhere", "http://dsp.invalid/openrtb2/bid")  # RFC 2606: never resolves
    client = await start_ssp(dsps=[nowhere, good])
    await assert_good_wins_on_time(client, "nowhere", "error")


def trickle_app(*, interval_s: float = 0.05, limit_s: float = 3.0) -> web.Application:
    """A DSP that answers 200 at once, then sends its body one byte every ``interval_s``."""

    async def bid(request: web.Request) -> web.StreamResponse:
        req = await request.json()
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        body = orjson.dumps(
            {
                "id": req["id"],
                "seatbid": [{"bid": [{"id": "t", "impid": "1", "price": 9.0, "adm": "<div/>"}]}],
            }
        )
        deadline = time.monotonic() + limit_s
        with contextlib.suppress(ConnectionError):
            for byte in body:
                if time.monotonic() > deadline:
                    break
                await resp.write(bytes([byte]))
                await asyncio.sleep(interval_s)
        return resp

    app = web.Application()
    app.router.add_post("/openrtb2/bid", bid)
    return app


async def test_trickling_body_times_out(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    trickle = await start_dsp("trickle", app=trickle_app())
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[trickle, good])
    await assert_good_wins_on_time(client, "trickle", "timeout")


@pytest.mark.parametrize("how", ["content-length", "chunked", "gzip"])
async def test_huge_body_is_an_error(start_dsp: StartDsp, start_ssp: StartSsp, how: str) -> None:
    limit = 64 * 1024

    async def bid(request: web.Request) -> web.StreamResponse:
        req = await request.json()
        adm = "x" * (4 * 1024 * 1024)  # a valid BidResponse, just far too big
        body = orjson.dumps(
            {
                "id": req["id"],
                "seatbid": [{"bid": [{"id": "h", "impid": "1", "price": 9.0, "adm": adm}]}],
            }
        )
        if how == "content-length":
            return web.Response(body=body, content_type="application/json")
        if how == "gzip":  # ~4 KB on the wire, 4 MB once inflated
            packed = gzip.compress(body, compresslevel=9)
            assert len(packed) < limit
            return web.Response(
                body=packed,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            for i in range(0, len(body), 32 * 1024):
                await resp.write(body[i : i + 32 * 1024])
            await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/openrtb2/bid", bid)
    huge = await start_dsp("huge", app=app)
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(
        dsps=[huge, good], settings=ExchangeSettings(seed=1, max_response_bytes=limit)
    )
    await assert_good_wins_on_time(client, "huge", "error", auctions=2)


@contextlib.asynccontextmanager
async def socket_closer() -> AsyncIterator[str]:
    """A TCP server that reads the request and closes the connection without a word."""
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        with contextlib.suppress(ConnectionError):
            await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/openrtb2/bid"
    finally:
        server.close()
        await server.wait_closed()
    assert accepted >= 1


async def test_dsp_closing_the_socket_is_an_error(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    good = await start_dsp("good", price=1.0)
    async with socket_closer() as url:
        client = await start_ssp(dsps=[DspEndpoint("closer", url), good])
        await assert_good_wins_on_time(client, "closer", "error", auctions=2)
        await client.close()


async def test_redirect_is_not_followed(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    """A DSP answering 307 elsewhere is an error; the request is not re-sent to that host."""
    elsewhere = await start_dsp("elsewhere", price=9.0)  # a bidding server, but not a DSP here

    async def bid(request: web.Request) -> web.Response:
        await request.read()
        raise web.HTTPTemporaryRedirect(elsewhere.url)

    app = web.Application()
    app.router.add_post("/openrtb2/bid", bid)
    redirector = await start_dsp("redirector", app=app)
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[redirector, good])
    await assert_good_wins_on_time(client, "redirector", "error")
    assert elsewhere.hits == [], "the bid request was sent to a host that is no configured DSP"


class Sleeper:
    """An in-process async bidder that never answers."""

    def __init__(self) -> None:
        self.cancelled = 0

    async def bid(self, request: BidRequest) -> dict[str, Any] | None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return None


class Raiser:
    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        raise RuntimeError("bidder bug")


class AsyncRaiser:
    async def bid(self, request: BidRequest) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        raise KeyError("bidder bug")


class Wrong:
    """Returns something that is not a BidResponse at all."""

    def bid(self, request: BidRequest) -> Any:
        return ["not", "a", "response"]


async def test_in_process_bidder_that_never_answers_times_out(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    good = await start_dsp("good", price=1.0)
    sleeper = Sleeper()
    client = await start_ssp(dsps=[good], inprocess={"sleeper": sleeper})
    await assert_good_wins_on_time(client, "sleeper", "timeout", auctions=2)
    # an in-process call cannot drain in the background: it is cancelled at the deadline
    await eventually(lambda: sleeper.cancelled == 2, what="the sleeping calls to be cancelled")
    assert (await stats(client))["late_calls_draining"] == 0


@pytest.mark.parametrize(
    ("bidder", "outcome"), [(Raiser(), "error"), (AsyncRaiser(), "error"), (Wrong(), "invalid")]
)
async def test_in_process_bidder_that_fails(start_ssp: StartSsp, bidder: Any, outcome: str) -> None:
    good = recording(1.0, seat="good")
    client = await start_ssp(inprocess={"bad": bidder, "good": good})
    await assert_good_wins_on_time(client, "bad", outcome, auctions=2)


async def test_everything_misbehaving_at_once(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    dsps = [
        await start_dsp("hung", faults=Faults(hang_rate=1.0, hang_s=5)),
        await start_dsp("garbage", faults=Faults(garbage_rate=1.0)),
        await start_dsp("failing", faults=Faults(error_rate=1.0)),
        await start_dsp("trickle", app=trickle_app()),
        await start_dsp("good", price=1.0),
    ]
    down = DspEndpoint("down", f"http://127.0.0.1:{free_port()}/openrtb2/bid")
    client = await start_ssp(dsps=[*dsps, down], inprocess={"sleeper": Sleeper()})
    for i in range(3):
        status, answer, elapsed = await timed_auction(client, bid_request(f"all-{i}"))
        assert elapsed < BUDGET_S + DEADLINE_SLACK_S
        assert status == 200 and answer is not None
        assert answer["seatbid"][0]["seat"] == "good"
    s = await stats(client)
    got = {
        name: next(k for k in ("bids", "timeouts", "errors", "invalid") if b[k] == 3)
        for name, b in s["bidders"].items()
    }
    assert got == {
        "down": "errors",
        "failing": "errors",
        "garbage": "invalid",
        "good": "bids",
        "hung": "timeouts",
        "sleeper": "timeouts",
        "trickle": "timeouts",
    }


async def test_ad_request_is_answered_on_time_despite_a_hung_dsp(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    hung = await start_dsp("hung", price=9.0, faults=Faults(hang_rate=1.0, hang_s=5))
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[hung, good])
    t0 = time.perf_counter()
    resp = await client.post("/ad", json={"site": "news", "slot": "top"})
    ad = await resp.json()
    assert time.perf_counter() - t0 < BUDGET_S + DEADLINE_SLACK_S
    assert (resp.status, ad["bidder"], ad["price"]) == (200, "good", 0.51)  # floor 0.5


async def test_concurrent_auctions_are_all_on_time(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    hung = await start_dsp("hung", faults=Faults(hang_rate=1.0, hang_s=5))
    trickle = await start_dsp("trickle", app=trickle_app())
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[hung, trickle, good])
    results = await asyncio.gather(
        *(timed_auction(client, bid_request(f"c-{i}")) for i in range(8))
    )
    for status, answer, elapsed in results:
        assert elapsed < BUDGET_S + DEADLINE_SLACK_S, f"answered after {elapsed * 1000:.1f} ms"
        assert status == 200 and answer is not None
        assert answer["seatbid"][0]["seat"] == "good"
    s = await stats(client)
    assert s["bidders"]["hung"]["timeouts"] == s["bidders"]["trickle"]["timeouts"] == 8


async def test_draining_late_calls_are_bounded_by_max_late(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    hung = await start_dsp("hung", faults=Faults(hang_rate=1.0, hang_s=5))
    good = await start_dsp("good", price=1.0)
    client = await start_ssp(dsps=[hung, good], settings=ExchangeSettings(seed=1, max_late=2))
    s = await assert_good_wins_on_time(client, "hung", "timeout", auctions=4)
    assert s["late_calls_draining"] == 2  # the two past max_late were cancelled
