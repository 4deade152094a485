"""A lean HTTP/1.1 client for bidder calls: keep-alive connections on ``asyncio.Protocol``.

DESIGN.md measured one aiohttp client request at ~135 us of CPU against ~25 us for a minimal
keep-alive client on a protocol: with five DSPs, the outgoing calls are most of an HTTP auction.
This client does only what a bid call needs: POST one body to one URL, read one response (parsed by
httptools, the C parser uvicorn uses; Content-Length or chunked) of at most ``max_response_bytes``,
reuse the connection when the server allows it. No redirects, no cookies, no TLS (``http://`` only:
DSP endpoints are inside the data centre; use the aiohttp transport for ``https://``).

A connection carries one request at a time. A call the auction gave up on keeps its connection
until the answer arrives or ``hard_timeout_s`` passes (then the connection is closed), which keeps
keep-alive connections alive under overload (see :mod:`exchange.fanout`).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import httptools

from exchange.http_bidder import host_of
from exchange.openrtb import BidRequest
from exchange.transport import BidderError


class _Connection(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends a message and awaits the whole answer."""

    def __init__(self, owner: LeanHttpBidder) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        # Resolved with (status, body), or with the reason a call failed (a string, not an exception:
        # an exception's traceback would hold the caller's frame, which holds this future: a cycle
        # per failed call, for the garbage collector to find while the event loop waits).
        self.waiter: asyncio.Future[tuple[int, bytes] | str] | None = None
        self.body = bytearray()
        self.limit = 0
        self.closed = False
        self.reusable = False

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.parser is None:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed HTTP response: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.owner.open_connections -= 1
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result("connection closed by the bidder")
        # Break the protocol's links (the parser holds our bound callbacks, the transport holds us)
        # so that a closed connection is freed at once, without a garbage collection.
        self.transport = None
        self.parser = None
        self.waiter = None

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 16 and name.lower() == b"content-encoding" and value.lower() != b"identity":
            # Never asked for (no Accept-Encoding): an answer we cannot read, and no bomb to inflate.
            self._fail(f"Content-Encoding {value.decode('latin-1')!r} was not asked for")
        elif len(name) == 14 and name.lower() == b"content-length":
            with contextlib.suppress(ValueError):
                length = int(value)
                if length > self.limit:
                    self._fail(f"body of {length} bytes is over {self.limit}")

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > self.limit:
            self._fail(f"body is over {self.limit} bytes")

    def on_message_complete(self) -> None:
        waiter = self.waiter
        parser = self.parser
        assert parser is not None
        self.reusable = parser.should_keep_alive()
        if waiter is not None and not waiter.done():
            waiter.set_result((parser.get_status_code(), bytes(self.body)))

    # -- use ---------------------------------------------------------------------------------
    def send(self, data: bytes, limit: int) -> asyncio.Future[tuple[int, bytes] | str]:
        assert self.transport is not None
        self.limit = limit
        self.reusable = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def _fail(self, reason: str) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(reason)
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # connection_lost does the bookkeeping


class LeanHttpBidder:
    """Same contract as :class:`exchange.http_bidder.HttpBidder`, a fraction of its CPU."""

    kind = "http"
    is_async = True

    def __init__(
        self,
        *,
        name: str,
        url: str,
        max_response_bytes: int = 1 << 20,
        hard_timeout_s: float = 1.0,
        click_url: str | None = None,
        max_connections: int = 256,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                f"bidder {name!r}: the lean transport takes http:// URLs only, not {url!r}"
            )
        self.name = name
        self.url = url
        self.host = host_of(url)
        self.click_url = click_url
        self.max_response_bytes = max_response_bytes
        self.hard_timeout_s = hard_timeout_s
        self.max_connections = max_connections
        self.open_connections = 0
        self._idle: list[_Connection] = []
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            "x-openrtb-version: 2.6\r\nConnection: keep-alive\r\nContent-Length: "
        ).encode("latin-1")

    async def call(self, request: BidRequest, payload: bytes, tmax_ms: int) -> bytes | None:
        del request  # not needed: a late call must not keep the parsed request alive
        loop = asyncio.get_running_loop()
        conn = await self._acquire(loop)
        waiter = conn.send(
            b"%b%d\r\n\r\n%b" % (self._head, len(payload), payload), self.max_response_bytes
        )
        timer = loop.call_later(self.hard_timeout_s, _expire, waiter, conn)
        try:
            answer = await waiter
        except asyncio.CancelledError:
            conn.close()  # an answer may still be on its way: the connection cannot be reused
            raise
        finally:
            timer.cancel()
            conn.waiter = None
        if isinstance(answer, str):
            conn.close()
            raise BidderError(answer)
        status, body = answer
        if conn.reusable and not conn.closed:
            self._idle.append(conn)
        else:
            conn.close()
        if status == 204:
            return None
        if status != 200:
            raise BidderError(f"HTTP {status}")
        return body

    async def _acquire(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        if self.open_connections >= self.max_connections:
            raise BidderError(f"all {self.max_connections} connections are busy")
        self.open_connections += 1
        host, port = self.host
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self), host, port), self.hard_timeout_s
            )
        except (TimeoutError, OSError) as exc:
            self.open_connections -= 1
            raise BidderError(f"cannot connect: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        except BaseException:
            self.open_connections -= 1
            raise
        return conn

    async def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        await asyncio.sleep(0)


def _expire(waiter: asyncio.Future[tuple[int, bytes] | str], conn: _Connection) -> None:
    if not waiter.done():
        waiter.set_result("no complete answer within the hard timeout")
    with contextlib.suppress(Exception):
        conn.close()
