"""The deadline-bounded fan-out: every bidder at once, nobody waited for past the cutoff.

Each call's outcome is one of ``bid``, ``nobid``, ``timeout``, ``error`` or ``invalid`` (with a
reason), with its latency. At the cutoff the auction stops waiting: every outstanding call counts
as a timeout and its answer, should it come, is discarded.

What happens to a late HTTP call depends on ``late_calls``. ``"cancel"`` cancels it at once, which
closes its keep-alive connection. ``"drain"`` (the default) lets it finish in the background, bounded
by the transport's hard timeout and by ``max_late`` calls at once (past that it is cancelled): under
load, cancelling mid-flight turns every late answer into a reconnect, whose CPU cost makes more calls
late; DESIGN.md measured throughput collapsing to ~55% of its maximum that way. Either way the
answer to the caller is never held up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from exchange.bids import Bid, Dropped, parse_bid_response
from exchange.errors import InvalidResponse
from exchange.openrtb import BidRequest
from exchange.transport import BidderError, Transport

log = logging.getLogger(__name__)

BID, NOBID, TIMEOUT, ERROR, INVALID = "bid", "nobid", "timeout", "error", "invalid"


@dataclass(slots=True)
class Outcome:
    """What one bidder did in one auction."""

    bidder: str
    result: str
    latency: float  # seconds; for a timeout, the time waited
    bids: list[Bid] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    reason: str | None = None


class FanOut:
    """Calls a fixed set of bidders for each request, concurrently, under a cutoff."""

    def __init__(
        self,
        transports: Sequence[Transport],
        *,
        currency: str = "USD",
        late_calls: str = "drain",
        max_late: int = 1024,
    ) -> None:
        if late_calls not in ("drain", "cancel"):
            raise ValueError(f"late_calls must be 'drain' or 'cancel', not {late_calls!r}")
        self.transports = list(transports)
        self.currency = currency
        self.late_calls = late_calls
        self.max_late = max_late
        self._inline = [t for t in self.transports if t.kind == "inprocess" and not t.is_async]
        self._tasked = [t for t in self.transports if t not in self._inline]
        self._needs_payload = any(t.kind == "http" for t in self.transports)
        self._late: set[asyncio.Task[Outcome]] = set()
        #: Keep the cutoffs of the auctions waiting for their bidders, for :meth:`next_cutoff`
        #: (off by default: a heap push per auction that nobody would read). A heap; an ended
        #: auction's entry goes when it reaches the top.
        self.track_cutoffs = False
        self._cutoffs: list[tuple[float, int]] = []
        self._ended: set[int] = set()
        self._seq = itertools.count()

    @property
    def late_in_flight(self) -> int:
        return len(self._late)

    def next_cutoff(self) -> float | None:
        """The earliest cutoff (``time.perf_counter()``) of the auctions still waiting, if any
        (with ``track_cutoffs`` on; None otherwise)."""
        self._forget_ended()
        return self._cutoffs[0][0] if self._cutoffs else None

    def _forget_ended(self) -> None:
        cutoffs, ended = self._cutoffs, self._ended
        while cutoffs and cutoffs[0][1] in ended:
            ended.discard(heapq.heappop(cutoffs)[1])

    async def run(self, request: BidRequest, *, cutoff: float) -> list[Outcome]:
        """Call every bidder; return one outcome each, no later than ``cutoff``.

        Times are ``time.perf_counter()`` seconds (uvloop's ``loop.time()`` has only ms resolution).
        """
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        remaining = cutoff - start
        if remaining <= 0:
            return [Outcome(t.name, TIMEOUT, 0.0, reason="no time left") for t in self.transports]
        tmax_ms = int(remaining * 1000)
        payload = b""
        if self._needs_payload:
            payload = orjson.dumps({**request.raw, "tmax": tmax_ms})
        # The tasks reach the request through this box, emptied when the auction stops waiting:
        # a late call draining in the background (up to late_grace_ms) then holds its connection,
        # not the whole parsed request (its dicts, lists and views: objects for the GC to walk).
        box = [request]
        tasks = [
            loop.create_task(self._call(t, box, payload, tmax_ms, start)) for t in self._tasked
        ]
        outcomes = [self._call_inline(t, request, start, cutoff) for t in self._inline]
        if not tasks:
            return outcomes
        key = -1
        if self.track_cutoffs:
            key = next(self._seq)
            self._forget_ended()
            heapq.heappush(self._cutoffs, (cutoff, key))
        try:
            done, _ = await asyncio.wait(tasks, timeout=max(0.0, cutoff - time.perf_counter()))
        finally:
            if key >= 0:
                self._ended.add(key)
            box.clear()
        waited = time.perf_counter() - start
        for task, transport in zip(tasks, self._tasked, strict=True):
            if task in done:
                outcomes.append(task.result())
            else:
                outcomes.append(Outcome(transport.name, TIMEOUT, waited, reason="deadline"))
                self._let_go(task, transport)
        return outcomes

    def _let_go(self, task: asyncio.Task[Outcome], transport: Transport) -> None:
        if (
            self.late_calls == "cancel"
            or transport.kind != "http"
            or len(self._late) >= self.max_late
        ):
            task.cancel()
            return
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    async def _call(
        self,
        transport: Transport,
        box: list[BidRequest],
        payload: bytes,
        tmax_ms: int,
        start: float,
    ) -> Outcome:
        try:
            reply = await transport.call(box[0], payload, tmax_ms)
        except BidderError as exc:
            return Outcome(transport.name, ERROR, time.perf_counter() - start, reason=exc.reason)
        except Exception as exc:  # a bidder's own bug must not fail the auction
            log.debug("bidder %s raised", transport.name, exc_info=True)
            return Outcome(
                transport.name, ERROR, time.perf_counter() - start, reason=_describe(exc)
            )
        latency = time.perf_counter() - start
        if not box:  # too late: the auction has its outcomes, nobody reads this one
            return Outcome(transport.name, TIMEOUT, latency, reason="deadline")
        return self._classify(transport.name, box[0], reply, latency)

    def _call_inline(
        self,
        transport: Any,
        request: BidRequest,
        start: float,
        cutoff: float,
    ) -> Outcome:
        try:
            reply = transport.call_sync(request)
        except Exception as exc:
            log.debug("bidder %s raised", transport.name, exc_info=True)
            return Outcome(
                transport.name, ERROR, time.perf_counter() - start, reason=_describe(exc)
            )
        now = time.perf_counter()
        if now > cutoff:
            return Outcome(transport.name, TIMEOUT, now - start, reason="deadline")
        return self._classify(transport.name, request, reply, now - start)

    def _classify(self, name: str, request: BidRequest, reply: Any, latency: float) -> Outcome:
        if reply is None:
            return Outcome(name, NOBID, latency)
        try:
            bids, dropped = parse_bid_response(reply, request, name, currency=self.currency)
        except InvalidResponse as exc:
            return Outcome(name, INVALID, latency, reason=exc.reason)
        if bids:
            return Outcome(name, BID, latency, bids, dropped)
        if dropped:
            return Outcome(name, INVALID, latency, bids, dropped, reason=dropped[0].reason)
        return Outcome(name, NOBID, latency)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
