"""How the exchange reaches a bidder: over HTTP (:mod:`exchange.http_bidder`) or in-process.

A transport answers one call with the bidder's raw reply: ``None`` for a no-bid, the body bytes of
an HTTP answer, or the dict an in-process bidder returned. Validation happens in one place for both
(:mod:`exchange.fanout`), so an in-process bidder goes through exactly what an HTTP one does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol

from exchange.feedback import AuctionEvent, deliver, listens
from exchange.openrtb import BidRequest


class BidderError(Exception):
    """A call that failed (connection refused, HTTP 500, body too large...); outcome ``error``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HardTimeout(BidderError):
    """A call that got no complete answer within the transport's hard timeout (``late_grace_ms``)."""


#: A bidder's raw reply: the body of an HTTP answer, the dict an in-process bidder returned, or
#: None for a no-bid.
Reply = bytes | dict[str, Any] | None
#: How a call started with ``start()`` reports its end: ``on_done(key, reply_or_error)``, once.
OnDone = Callable[[Any, "Reply | BidderError"], None]


class CallHandle(Protocol):
    def abort(self) -> None:
        """Give the call up: its ``on_done`` is never called."""


class Transport(Protocol):
    name: str
    #: "http" or "inprocess"; sync in-process bidders are called inline, the rest as tasks.
    kind: str
    is_async: bool

    async def call(self, request: BidRequest, payload: bytes, tmax_ms: int) -> Reply: ...


class StartableTransport(Transport, Protocol):
    """A transport that can also start a call without a coroutine (:mod:`exchange.lean_http`):
    ``start`` sends it and returns at once; ``on_done(key, reply_or_error)`` is called once when it
    ends (possibly before ``start`` returns); the handle (None once ended) aborts it. The fan-out
    uses this when a transport has it: no task, coroutine or future per call."""

    def start(self, payload: bytes, on_done: OnDone, key: Any) -> CallHandle | None: ...


class InProcessBidder:
    """Calls a bidder object directly: ``bid(request)``, sync or ``async def``.

    Feedback reaches the object's hooks (``on_win``, ``on_loss``...) directly, with the same
    :class:`~exchange.feedback.AuctionEvent` the DSP server builds from a notice URL.
    """

    kind = "inprocess"

    def __init__(self, *, name: str, bidder: Any) -> None:
        self.name = name
        self.bidder = bidder
        self.is_async = inspect.iscoroutinefunction(bidder.bid)
        #: The feedback kinds the bidder has real hooks for; no event is built for the others.
        self.listens = listens(bidder)

    def call_sync(self, request: BidRequest) -> Any:
        return self.bidder.bid(request)

    async def call(self, request: BidRequest, payload: bytes, tmax_ms: int) -> Any:
        if self.is_async:
            return await self.bidder.bid(request)
        return self.bidder.bid(request)

    def feedback(self, event: AuctionEvent) -> Any:
        """Call the bidder's hook; an async hook's coroutine is returned for the caller to run."""
        return deliver(self.bidder, event)
