"""A lean HTTP/1.1 client for bidder calls: keep-alive connections on ``asyncio.Protocol``.

DESIGN.md measured one aiohttp client request at ~135 us of CPU against ~25 us for a minimal
keep-alive client on a protocol: with five DSPs, the outgoing calls are most of an HTTP auction.
This client does only what a bid call needs: POST one body to one URL, read one response (parsed by
httptools, the C parser uvicorn uses; Content-Length or chunked) of at most ``max_response_bytes``,
reuse the connection when the server allows it. No redirects, no cookies, no TLS (``http://`` only:
DSP endpoints are inside the data centre; use the aiohttp transport for ``https://``).

Two ways in. :meth:`LeanHttpBidder.start` sends a call and reports its end through a callback: no
task, coroutine or future per call, which is how the fan-out (:mod:`exchange.fanout`) uses it;
with a hung DSP, each call waiting on it would otherwise keep a task, two coroutines, a context, a
future and their bound methods alive for up to a second, objects that every garbage collection
walks. :meth:`LeanHttpBidder.call` is the same as a coroutine, the :class:`~exchange.transport.
Transport` interface.

A connection carries one request at a time. A call the auction gave up on keeps its connection
until the answer arrives or ``hard_timeout_s`` passes (then the connection is closed), which keeps
keep-alive connections alive under overload (see :mod:`exchange.fanout`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import httptools

from exchange.http_bidder import host_of
from exchange.openrtb import BidRequest
from exchange.transport import BidderError, HardTimeout, OnDone, Reply


class _Connection(asyncio.Protocol):
    """One keep-alive connection, carrying at most one call at a time.

    A call in progress is ``on_done`` (called once, with ``key`` and the reply or a
    :class:`BidderError`) and an entry in its owner's ``busy`` (the hard timeout). The errors are
    made, never raised: an exception that is never raised has no traceback, so no frame of the
    caller's is kept alive. The parser comes with the first data: a connection to a DSP that never
    answers never has one (nor the bound callbacks it keeps).
    """

    def __init__(self, owner: LeanHttpBidder) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.on_done: OnDone | None = None
        self.key: Any = None
        self.connecting: asyncio.Task[None] | None = None
        self.body = bytearray()
        self.limit = 0
        self.closed = False

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:
            if self.transport is None:  # lost
                return
            parser = self.parser = httptools.HttpResponseParser(self)
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed HTTP response: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.owner.open_connections -= 1
        self._finish(BidderError("connection closed by the bidder"))
        # Break the protocol's links (the parser holds our bound callbacks, the transport holds us)
        # so that a closed connection is freed at once, without a garbage collection.
        self.transport = None
        self.parser = None

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
        parser = self.parser
        if self.on_done is None or parser is None:  # nobody asked: not a connection to trust
            self.close()
            return
        status = parser.get_status_code()
        if parser.should_keep_alive() and not self.closed:
            self.owner._idle.append(self)
        else:
            self.close()
        reply: Reply | BidderError
        if status == 200:
            reply = bytes(self.body)
        elif status == 204:
            reply = None
        else:
            reply = BidderError(f"HTTP {status}")
        self._finish(reply)

    # -- use ---------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def _finish(self, reply: Reply | BidderError) -> None:
        on_done = self.on_done
        if on_done is None:
            return
        self.on_done = None
        key, self.key = self.key, None
        self.owner.busy.pop(self, None)
        on_done(key, reply)

    def _fail(self, reason: str) -> None:
        self.close()
        self._finish(BidderError(reason))

    def expire(self) -> None:
        """The hard timeout: the call ends as an error and the connection closes."""
        connecting = self.connecting is not None
        self.close()
        if connecting:
            self._finish(HardTimeout("cannot connect: no connection within the hard timeout"))
        else:
            self._finish(HardTimeout("no complete answer within the hard timeout"))

    def abort(self) -> None:
        """Give the call up without a word: its callback is never called; the connection closes
        (an answer may still be on its way, so it cannot carry another call)."""
        self.on_done = None
        self.key = None
        self.owner.busy.pop(self, None)
        self.close()

    def close(self) -> None:
        if self.connecting is not None:
            self.connecting.cancel()  # _connect does the bookkeeping
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
        #: The connections carrying a call, and when its hard timeout ends (``loop.time()``). One
        #: sweep a step checks them all, instead of a timer per call: a timer is a handle, a
        #: libuv timer, a context and a bound method for the garbage collector to walk, for as
        #: long as a late call drains. A call therefore ends up to one step past the timeout.
        self.busy: dict[_Connection, float] = {}
        self._sweep_step = min(0.05, hard_timeout_s / 4)
        self._sweeper: asyncio.TimerHandle | None = None
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            "x-openrtb-version: 2.6\r\nConnection: keep-alive\r\nContent-Length: "
        ).encode("latin-1")

    def start(self, payload: bytes, on_done: OnDone, key: Any) -> _Connection | None:
        """Send one call; ``on_done(key, reply)`` is called once when it ends, with the body
        (bytes), None for a no-bid, or a :class:`BidderError`: possibly before this returns (all
        connections busy). Returns the call's connection, whose ``abort()`` gives the call up
        silently, or None when the call has already ended."""
        loop = asyncio.get_running_loop()
        data = b"%b%d\r\n\r\n%b" % (self._head, len(payload), payload)
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                self._arm(conn, loop, on_done, key)
                conn.send(data)
                return conn
        if self.open_connections >= self.max_connections:
            on_done(key, BidderError(f"all {self.max_connections} connections are busy"))
            return None
        self.open_connections += 1
        conn = _Connection(self)
        self._arm(conn, loop, on_done, key)
        conn.connecting = loop.create_task(self._connect(conn, data))
        return conn

    def _arm(
        self, conn: _Connection, loop: asyncio.AbstractEventLoop, on_done: OnDone, key: Any
    ) -> None:
        conn.limit = self.max_response_bytes
        conn.on_done = on_done
        conn.key = key
        self.busy[conn] = loop.time() + self.hard_timeout_s
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._sweep_step, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """End the calls past their hard timeout; come back while any call is out."""
        self._sweeper = None
        now = loop.time()
        for conn in [c for c, expires in self.busy.items() if expires <= now]:
            conn.expire()
        if self.busy:
            self._sweeper = loop.call_later(self._sweep_step, self._sweep, loop)

    async def _connect(self, conn: _Connection, data: bytes) -> None:
        """Open ``conn``'s connection and send; bounded by the call's hard timeout (the sweep
        cancels this), not by a timer of its own."""
        host, port = self.host
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: conn, host, port)
        except OSError as exc:
            self.open_connections -= 1
            conn.closed = True
            conn.connecting = None
            conn._finish(BidderError(f"cannot connect: {type(exc).__name__}: {exc}".rstrip(": ")))
            return
        except BaseException:  # cancelled: given up, timed out, or shutting down
            self.open_connections -= 1
            conn.closed = True
            conn.connecting = None
            conn.abort()
            raise
        conn.connecting = None
        if conn.on_done is None:  # given up while connecting
            conn.close()
        else:
            conn.send(data)

    async def call(self, request: BidRequest, payload: bytes, tmax_ms: int) -> Reply:
        """One call as a coroutine: the body, None for a no-bid; raises :class:`BidderError`."""
        del request  # not needed: a late call must not keep the parsed request alive
        waiter = asyncio.get_running_loop().create_future()
        conn = self.start(payload, _resolve, waiter)
        try:
            reply = await waiter
        except asyncio.CancelledError:
            if conn is not None:
                conn.abort()
            raise
        if isinstance(reply, BidderError):
            # A fresh exception: the frame it is raised from holds the future, which holds the
            # first; raising that one would tie them in a cycle through its traceback.
            raise type(reply)(reply.reason)
        return reply

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        await asyncio.sleep(0)


def _resolve(waiter: asyncio.Future[Any], reply: Reply | BidderError) -> None:
    if not waiter.done():
        waiter.set_result(reply)
