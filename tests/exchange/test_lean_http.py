"""The lean HTTP transport against real servers on 127.0.0.1: the same contract as aiohttp's."""

from __future__ import annotations

import asyncio
import gc
import gzip
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exchange.lean_http import LeanHttpBidder, _Connection
from exchange.transport import BidderError
from tests.conftest import eventually, free_port, one_route_app

Serve = Callable[[web.Application], Awaitable[TestServer]]


def _bidder(server: TestServer, **kw: Any) -> LeanHttpBidder:
    return LeanHttpBidder(name="t", url=str(server.make_url("/bid?x=1")), **kw)


@pytest.fixture
def serve(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Serve:
    async def start(app: web.Application) -> TestServer:
        return await aiohttp_server(app)

    return start


async def test_posts_the_body_with_openrtb_headers_and_reuses_the_connection(serve: Serve) -> None:
    seen: list[tuple[str, str, bytes, str]] = []
    peers: set[Any] = set()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            (request.path_qs, request.headers["x-openrtb-version"], body, request.content_type)
        )
        assert request.transport is not None
        peers.add(request.transport.get_extra_info("peername"))
        return web.Response(body=b'{"id":"r"}', content_type="application/json")

    bidder = _bidder(await serve(one_route_app(handler)))
    for i in range(5):
        assert await bidder.call(None, b'{"n":%d}' % i, 50) == b'{"id":"r"}'  # type: ignore[arg-type]
    assert [s[2] for s in seen] == [b'{"n":%d}' % i for i in range(5)]
    assert seen[0][:2] == ("/bid?x=1", "2.6") and seen[0][3] == "application/json"
    assert len(peers) == 1  # one keep-alive connection for all five calls
    assert bidder.open_connections == 1
    await bidder.close()


@pytest.mark.parametrize(
    ("status", "expected"), [(204, None), (500, "HTTP 500"), (302, "HTTP 302")]
)
async def test_status_codes(serve: Serve, status: int, expected: str | None) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": "http://elsewhere.example/"})

    bidder = _bidder(await serve(one_route_app(handler)))
    if expected is None:
        assert await bidder.call(None, b"{}", 50) is None  # type: ignore[arg-type]
    else:
        with pytest.raises(BidderError, match=expected):
            await bidder.call(None, b"{}", 50)  # type: ignore[arg-type]


async def test_chunked_answer_is_read_whole(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b'{"id":', b'"r",', b'"seatbid":[]}'):
            await resp.write(part)
        await resp.write_eof()
        return resp

    bidder = _bidder(await serve(one_route_app(handler)))
    assert await bidder.call(None, b"{}", 50) == b'{"id":"r","seatbid":[]}'  # type: ignore[arg-type]


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_over_the_limit_is_an_error_and_closes_the_connection(
    serve: Serve, chunked: bool
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        if chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(b"x" * 100_000)
        return resp

    bidder = _bidder(await serve(one_route_app(handler)), max_response_bytes=10_000)
    with pytest.raises(BidderError, match="over 10000"):
        await bidder.call(None, b"{}", 50)  # type: ignore[arg-type]
    await eventually(lambda: bidder.open_connections == 0, what="the connection to close")


async def test_compressed_answers_were_not_asked_for_and_are_errors(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.Response:
        assert "gzip" not in request.headers.get("Accept-Encoding", "")
        return web.Response(
            body=gzip.compress(b"0" * 1_000_000), headers={"Content-Encoding": "gzip"}
        )

    bidder = _bidder(await serve(one_route_app(handler)), max_response_bytes=5_000)
    with pytest.raises(BidderError, match="Content-Encoding 'gzip' was not asked for"):
        await bidder.call(None, b"{}", 50)  # type: ignore[arg-type]


async def test_hang_ends_at_the_hard_timeout(serve: Serve) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    bidder = _bidder(await serve(one_route_app(handler)), hard_timeout_s=0.2)
    with pytest.raises(BidderError, match="hard timeout"):
        await bidder.call(None, b"{}", 50)  # type: ignore[arg-type]
    release.set()


async def test_cancelled_call_closes_its_connection(serve: Serve) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    bidder = _bidder(await serve(one_route_app(handler)))
    task = asyncio.ensure_future(bidder.call(None, b"{}", 50))  # type: ignore[arg-type]
    await eventually(lambda: bidder.open_connections == 1, what="the connection to open")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await eventually(lambda: bidder.open_connections == 0, what="the connection to close")


async def test_refused_and_closed_connections_are_errors(serve: Serve) -> None:
    bidder = LeanHttpBidder(name="down", url=f"http://127.0.0.1:{free_port()}/bid")
    with pytest.raises(BidderError, match="cannot connect"):
        await bidder.call(None, b"{}", 50)  # type: ignore[arg-type]

    async def handler(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response(status=204)

    bidder = _bidder(await serve(one_route_app(handler)))
    with pytest.raises(BidderError):
        await bidder.call(None, b"{}", 50)  # type: ignore[arg-type]


def test_https_and_nonsense_urls_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="http:// URLs only"):
        LeanHttpBidder(name="s", url="https://dsp.example/bid")
    with pytest.raises(ValueError):
        LeanHttpBidder(name="s", url="not a url")


async def test_a_timed_out_call_leaves_no_garbage_cycle(serve: Serve) -> None:
    """A hung DSP must not feed the garbage collector: each call that times out is freed by
    reference counting alone. (Cycles through the failed future's exception and the parser's
    callbacks once made gen-2 collections of 200-570 ms, which blew the deadline.)"""
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    bidder = _bidder(await serve(one_route_app(handler)), hard_timeout_s=0.05)
    gc.collect()
    gc.disable()
    try:
        ended: list[Any] = []
        conn = bidder.start(b"{}", lambda key, reply: ended.append((key, reply)), "k")
        assert conn is not None
        ref = weakref.ref(conn)
        del conn
        await eventually(lambda: bool(ended), what="the hard timeout")
        assert ended[0][0] == "k" and "hard timeout" in ended[0][1].reason
        await eventually(lambda: bidder.open_connections == 0, what="the connection to close")
        assert ref() is None, gc.get_referrers(ref())
        ended.clear()

        with pytest.raises(BidderError, match="hard timeout"):  # the same through call()
            await bidder.call(None, b"{}", 50)  # type: ignore[arg-type]
        await eventually(lambda: bidder.open_connections == 0, what="the connection to close")
        assert not [o for o in gc.get_objects() if isinstance(o, _Connection)]
    finally:
        gc.enable()
        release.set()


async def test_start_reports_each_call_once_through_its_callback(serve: Serve) -> None:
    """The fan-out's way in: no coroutine per call; the callback gets the key and the reply."""
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        if await request.read() == b"hang":
            await release.wait()
            return web.Response(status=204)
        return web.Response(body=b'{"id": "r"}', content_type="application/json")

    bidder = _bidder(await serve(one_route_app(handler)), max_connections=2)
    ended: list[tuple[Any, Any]] = []

    def on_done(key: Any, reply: Any) -> None:
        ended.append((key, reply))

    assert bidder.start(b"{}", on_done, 1) is not None
    await eventually(lambda: len(ended) == 1, what="the answer")
    assert ended == [(1, b'{"id": "r"}')]
    assert bidder.start(b"{}", on_done, 2) is not None  # the same connection, reused
    await eventually(lambda: len(ended) == 2, what="the second answer")
    assert ended[1] == (2, b'{"id": "r"}') and bidder.open_connections == 1

    # Aborted: the callback is never called and the connection closes.
    hung = bidder.start(b"hang", on_done, 3)
    assert hung is not None
    busy = bidder.start(b"hang", on_done, 4)
    assert busy is not None and bidder.open_connections == 2
    # All connections busy: the call ends at once, before start returns.
    assert bidder.start(b"{}", on_done, 5) is None
    assert ended[2][0] == 5 and "all 2 connections are busy" in ended[2][1].reason
    hung.abort()
    await eventually(lambda: bidder.open_connections == 1, what="the aborted call's connection")
    release.set()
    await eventually(lambda: len(ended) == 4, what="the last answer")
    assert ended[3] == (4, None)
    await asyncio.sleep(0.05)
    assert [key for key, _ in ended] == [1, 2, 5, 4]  # 3 was aborted: never reported
    await bidder.close()
