"""The deadline-bounded fan-out: every bidder at once, nobody waited for past the cutoff.

Each call's outcome is one of ``bid``, ``nobid``, ``timeout``, ``error`` or ``invalid`` (with a
reason), with its latency. At the cutoff the auction stops waiting: every outstanding call counts
as a timeout and its answer, should it come, is discarded.

A transport that can start a call without a coroutine (``start()``, :mod:`exchange.lean_http`) is
called that way: it reports the call's end through a callback into the auction's :class:`_Gather`,
and one future per auction (not a task, two coroutines, a context and a future per call) wakes the
auction when the last call has ended or the cutoff timer fires. Other transports (aiohttp's, async
in-process bidders) run as tasks that report into the same gather.

What happens to a late HTTP call depends on ``late_calls``. ``"cancel"`` cancels it at once, which
closes its keep-alive connection. ``"drain"`` (the default) lets it finish in the background, bounded
by the transport's hard timeout and by ``max_late`` calls at once (past that it is cancelled): under
load, cancelling mid-flight turns every late answer into a reconnect, whose CPU cost makes more calls
late; DESIGN.md measured throughput collapsing to ~55% of its maximum that way. Draining pays only
for a bidder that does answer, late: once ``HOPELESS_AFTER`` late calls in a row to one bidder have
run out the hard timeout unanswered (a hung DSP), its late calls are closed at the cutoff instead,
all but one in ``HOPELESS_AFTER``, which still drains to notice a recovery. A hung DSP's calls would
otherwise each keep a connection and its objects for the whole grace for nothing: at a thousand
auctions a second, a thousand connections and most of what the middle garbage collections walk.
Either way the answer to the caller is never held up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from exchange.bids import Bid, Dropped, parse_bid_response
from exchange.errors import InvalidResponse
from exchange.openrtb import BidRequest
from exchange.transport import (
    BidderError,
    CallHandle,
    HardTimeout,
    Reply,
    StartableTransport,
    Transport,
)

log = logging.getLogger(__name__)

BID, NOBID, TIMEOUT, ERROR, INVALID = "bid", "nobid", "timeout", "error", "invalid"

_WAITING = object()  # a call's slot in a gather before it ends
_LATE = object()  # a started call the auction stopped waiting for, left to drain
_LATE_TASK = object()  # the same, for a call running as a task (counted in FanOut._late)

#: Late calls in a row that ran out the hard timeout before a bidder's late calls stop draining.
HOPELESS_AFTER = 32


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
        #: The rest, in order (a gather's slots): each called with ``start()`` when it has one (no
        #: task per call), else as a task.
        self._async = [t for t in self.transports if t not in self._inline]
        self._starts = [callable(getattr(t, "start", None)) for t in self._async]
        self._needs_payload = any(t.kind == "http" for t in self.transports)
        self._late: set[asyncio.Task[None]] = set()
        self._late_started = 0  # started calls draining (their gathers count them down)
        #: Per bidder (as ``_async``): late calls in a row that ran out the hard timeout, and the
        #: late calls closed at their cutoff since (one in HOPELESS_AFTER still drains).
        self._expired_streak = [0] * len(self._async)
        self._given_up = [0] * len(self._async)
        #: Late calls closed at their cutoff because their bidder's never end otherwise.
        self.late_given_up = 0
        #: Keep the cutoffs of the auctions waiting for their bidders, for :meth:`next_cutoff`
        #: (off by default: a heap push per auction that nobody would read). A heap; an ended
        #: auction's entry goes when it reaches the top.
        self.track_cutoffs = False
        self._cutoffs: list[tuple[float, int]] = []
        self._ended: set[int] = set()
        self._seq = itertools.count()

    @property
    def late_in_flight(self) -> int:
        return len(self._late) + self._late_started

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
        outcomes = [self._call_inline(t, request, start, cutoff) for t in self._inline]
        if not self._async:
            return outcomes
        gather = _Gather(self, len(self._async), loop.create_future(), start)
        # A task reaches the request through this box, emptied when the auction stops waiting:
        # a late call draining in the background (up to late_grace_ms) then holds its connection,
        # not the whole parsed request (its dicts, lists and views: objects for the GC to walk).
        box = [request]
        calls: list[CallHandle | asyncio.Task[None] | None] = [
            cast(StartableTransport, t).start(payload, gather, i)
            if starts
            else loop.create_task(self._call(t, box, payload, tmax_ms, gather, i))
            for i, (t, starts) in enumerate(zip(self._async, self._starts, strict=True))
        ]
        key = -1
        if self.track_cutoffs:
            key = next(self._seq)
            self._forget_ended()
            heapq.heappush(self._cutoffs, (cutoff, key))
        timer = None
        try:
            if gather.left:
                timer = loop.call_later(
                    max(0.0, cutoff - time.perf_counter()), _wake, gather.waiter
                )
                await gather.waiter
        finally:
            if timer is not None:
                timer.cancel()
            if key >= 0:
                self._ended.add(key)
            box.clear()
            gather.open = False
            if gather.left:
                self._let_go(gather, calls)
        waited = time.perf_counter() - start
        slots, latencies = gather.slots, gather.latencies
        for i, transport in enumerate(self._async):
            reply = slots[i]
            if reply is _WAITING or reply is _LATE or reply is _LATE_TASK:
                outcomes.append(Outcome(transport.name, TIMEOUT, waited, reason="deadline"))
                continue
            slots[i] = None  # a gather left to late calls keeps no bodies
            latency = latencies[i]
            if isinstance(reply, BidderError):
                outcomes.append(Outcome(transport.name, ERROR, latency, reason=reply.reason))
            else:
                outcomes.append(self._classify(transport.name, request, reply, latency))
        if gather.left:  # left to late calls, which need only the slots
            del gather.waiter, gather.latencies
        return outcomes

    def _let_go(self, gather: _Gather, calls: list[CallHandle | asyncio.Task[None] | None]) -> None:
        """The calls still out at the cutoff: drained in the background, or cancelled."""
        slots = gather.slots
        drain = self.late_calls == "drain"
        for i, call in enumerate(calls):
            if slots[i] is not _WAITING or call is None:
                continue
            keep = drain and self.late_in_flight < self.max_late and self._worth_draining(i)
            if isinstance(call, asyncio.Task):
                if keep and self._async[i].kind == "http":
                    slots[i] = _LATE_TASK
                    self._late.add(call)
                    call.add_done_callback(self._late.discard)
                else:
                    call.cancel()
            elif keep:
                slots[i] = _LATE
                self._late_started += 1
            else:
                call.abort()

    def _worth_draining(self, i: int) -> bool:
        """Whether bidder ``i``'s late call may still get its answer (see the module's doc)."""
        if self._expired_streak[i] < HOPELESS_AFTER:
            return True
        self._given_up[i] += 1
        if self._given_up[i] % HOPELESS_AFTER == 0:
            return True  # the probe: if it gets an answer, the bidder's late calls drain again
        self.late_given_up += 1
        return False

    def _late_ended(self, i: int, reply: Reply | BidderError) -> None:
        if isinstance(reply, HardTimeout):
            self._expired_streak[i] += 1
        else:
            self._expired_streak[i] = 0
            self._given_up[i] = 0

    async def _call(
        self,
        transport: Transport,
        box: list[BidRequest],
        payload: bytes,
        tmax_ms: int,
        gather: _Gather,
        slot: int,
    ) -> None:
        reply: Reply | BidderError
        try:
            reply = await transport.call(box[0], payload, tmax_ms)
        except BidderError as exc:
            reply = type(exc)(exc.reason)  # not the raised one: its traceback holds this frame
        except Exception as exc:  # a bidder's own bug must not fail the auction
            log.debug("bidder %s raised", transport.name, exc_info=True)
            reply = BidderError(_describe(exc))
        gather(slot, reply)

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


class _Gather:
    """One auction's calls in flight: each reports its end here (``gather(slot, reply)``); the
    waiter wakes the auction when none is left. Once the auction stops waiting (``open`` false) a
    late call's report only counts it out of the fan-out's draining calls."""

    __slots__ = ("fanout", "latencies", "left", "open", "slots", "start", "waiter")

    def __init__(self, fanout: FanOut, n: int, waiter: asyncio.Future[None], start: float) -> None:
        self.fanout = fanout
        self.slots: list[Any] = [_WAITING] * n
        self.latencies = [0.0] * n
        self.left = n
        self.waiter = waiter
        self.start = start
        self.open = True

    def __call__(self, slot: int, reply: Reply | BidderError) -> None:
        slots = self.slots
        if self.open:
            if slots[slot] is _WAITING:
                slots[slot] = reply
                self.latencies[slot] = time.perf_counter() - self.start
                self.left -= 1
                if not self.left and not self.waiter.done():
                    self.waiter.set_result(None)
        elif slots[slot] is _LATE:
            slots[slot] = None
            self.fanout._late_started -= 1
            self.fanout._late_ended(slot, reply)
        elif slots[slot] is _LATE_TASK:  # counted out of FanOut._late by the task's callback
            slots[slot] = None
            self.fanout._late_ended(slot, reply)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
