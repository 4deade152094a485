"""The exchange: one auction per request, from fan-out to notices.

``Exchange.auction`` calls every bidder under the deadline, validates what came back, auctions each
imp on its own, records the wins for their beacons and queues the notices. It owns the clock, the
deadline, validation and the auction; bidders own none of them.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from exchange import feedback, loss
from exchange.auction import ImpResult, group_by_imp, run_auction
from exchange.bids import Bid
from exchange.events import Listener
from exchange.fanout import BID, ERROR, INVALID, NOBID, TIMEOUT, FanOut, Outcome
from exchange.macros import format_price, substitute
from exchange.margin import AdaptiveMargin
from exchange.metrics import ExchangeMetrics
from exchange.notices import NoticeSender
from exchange.openrtb import MICROS, BidRequest
from exchange.pauses import PauseWindows
from exchange.settings import ExchangeSettings
from exchange.stats import Stats
from exchange.transport import Transport
from exchange.winbook import Win, WinBook

log = logging.getLogger(__name__)

#: The most loop turns a new auction yields to answers past their cutoff (Exchange.answers_first).
ANSWERS_FIRST_TURNS = 4

_COUNT_FIELD = {
    BID: "bids",
    NOBID: "nobids",
    TIMEOUT: "timeouts",
    ERROR: "errors",
    INVALID: "invalid",
}


@dataclass(slots=True)
class AuctionResult:
    request: BidRequest
    token: str  # exchange-unique auction id; beacon tokens are "<token>.<imp index>"
    imps: list[ImpResult]
    outcomes: list[Outcome]
    duration: float  # seconds from arrival to the result

    @property
    def filled(self) -> bool:
        return any(r.winner is not None for r in self.imps)


class Exchange:
    def __init__(
        self,
        *,
        settings: ExchangeSettings,
        transports: Sequence[Transport],
        metrics: ExchangeMetrics | None = None,
        notices: NoticeSender | None = None,
        stats: Stats | None = None,
        winbook: WinBook | None = None,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.settings = settings
        self.transports = {t.name: t for t in transports}
        if len(self.transports) != len(transports):
            raise ValueError("bidder names must be unique")
        self.fanout = FanOut(
            transports,
            currency=settings.currency,
            late_calls=settings.late_calls,
            max_late=settings.max_late,
        )
        self.metrics = metrics or ExchangeMetrics()
        self.notices = notices
        self.stats = stats or Stats()
        self.winbook = winbook or WinBook()
        #: Planned pauses (the SSP's paced garbage collector) that cutoffs keep out of.
        self.pauses = PauseWindows()
        #: The margin kept before each deadline: fixed, or adaptive when margin_max_ms is above it.
        self.margin: AdaptiveMargin | None = None
        if settings.margin_max_ms > settings.margin_ms:
            self.margin = AdaptiveMargin(
                floor_s=settings.margin_ms / 1000,
                cap_s=settings.margin_max_ms / 1000,
                per_load_s=settings.margin_per_load_ms / 1000,
            )
        #: Told of each auction, impression and click after the fact (event log, live view).
        self.listeners: tuple[Listener, ...] = tuple(listeners)
        self.rng = random.Random(settings.seed)
        self.increment_micros = round(settings.increment * MICROS)
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()
        for name in self.transports:
            self.metrics.bidder(name)
            self.stats.bidder(name)

    async def answers_first(self) -> None:
        """Let the auctions already past their cutoff answer before a new one starts.

        An auction woken at its cutoff waits in the event loop's queue behind everything the loop
        read in its turn before, new requests included; after a burst of arrivals, or any pause
        that left work queued, that makes its answer late by the new auctions' parsing and
        fan-out. A new auction calls this first: while an auction is past its cutoff and not
        answered, it yields a loop turn (at most :data:`ANSWERS_FIRST_TURNS`), so that the answers
        go out before its own work. Its clock has started, so the wait is its own time, not its
        deadline's. A no-op unless the fan-out tracks its cutoffs (the SSP does).
        """
        fanout = self.fanout
        if not fanout.track_cutoffs:
            return
        for _ in range(ANSWERS_FIRST_TURNS):
            due = fanout.next_cutoff()
            if due is None or due > time.perf_counter():
                return
            self.stats.answers_first += 1
            await asyncio.sleep(0)

    def margin_s(self) -> float:
        """The margin in force (seconds): the adaptive one's, else ``exchange.margin_ms``."""
        margin = self.margin
        return margin.current if margin is not None else self.settings.margin_ms / 1000

    def budget_s(self, request: BidRequest) -> float:
        """The auction's time budget: the request's ``tmax`` capped by the configured maximum.

        A ``tmax`` of 0 or none means "no limit of its own" and gets the maximum.
        """
        cap = self.settings.tmax_ms
        return (min(request.tmax, cap) if request.tmax else cap) / 1000

    async def auction(self, request: BidRequest, *, arrival: float) -> AuctionResult:
        """Run the auction of ``request``, which arrived at ``arrival`` (``time.perf_counter()``)."""
        loop = asyncio.get_running_loop()
        margin = self.margin
        cutoff = arrival + self.budget_s(request) - self.margin_s()
        if self.pauses.windows:
            cutoff = self.pauses.adjust(cutoff)
        outcomes = await self.fanout.run(request, cutoff=cutoff)

        by_imp = group_by_imp([bid for outcome in outcomes for bid in outcome.bids])
        at = 1 if request.at == 1 else 2
        results = [
            run_auction(
                imp,
                by_imp.get(imp.id, ()),
                at=at,
                rng=self.rng,
                increment_micros=self.increment_micros,
            )
            for imp in request.imp
        ]
        token = f"{self._prefix}{next(self._ids):x}"
        result = AuctionResult(request, token, results, outcomes, 0.0)
        self._settle(result, loop)
        ended = time.perf_counter()
        result.duration = ended - arrival
        if margin is not None and ended >= cutoff:
            margin.observe(ended - cutoff, ended)
        self._record(result)
        for listener in self.listeners:
            listener.on_auction(result)
        return result

    # -- after the auction -------------------------------------------------------------------

    def _settle(self, result: AuctionResult, loop: asyncio.AbstractEventLoop) -> None:
        """Record wins for their beacons and queue win/loss notices and feedback."""
        request = result.request
        events: list[tuple[Any, feedback.AuctionEvent]] = []
        for i, res in enumerate(result.imps):
            winner = res.winner
            if winner is not None:
                token = f"{result.token}.{i}"
                self.winbook.add(token, request.id, winner, res.price_micros, time.monotonic())
                self._notify(
                    events,
                    feedback.WIN,
                    request,
                    winner,
                    res.price_micros,
                    loss.WON,
                    res.price_micros,
                )
            for bid, code in res.losers:
                self._notify(
                    events,
                    feedback.LOSS,
                    request,
                    bid,
                    res.price_micros,
                    code,
                    res.min_to_win_micros,
                )
        if events:
            loop.call_soon(_deliver_all, events)

    def _notify(
        self,
        events: list[tuple[Any, feedback.AuctionEvent]],
        kind: str,
        request: BidRequest,
        bid: Bid,
        price_micros: int,
        code: int,
        min_to_win_micros: int,
    ) -> None:
        transport = self.transports[bid.bidder]
        if transport.kind == "inprocess":
            if kind in transport.listens:  # type: ignore[attr-defined]
                event = self._event(kind, request.id, bid, price_micros, code, min_to_win_micros)
                events.append((transport, event))
            return
        url = bid.nurl if kind == feedback.WIN else bid.lurl
        if kind == feedback.WIN and bid.adm is None:
            return  # the markup comes from the nurl, fetched by whoever renders the ad
        if url and self.notices is not None:
            values = self.macro_values(
                request.id, bid, price_micros, code, min_to_win_micros, quote=True
            )
            self.notices.send(kind, substitute(url, values))

    def impression(self, token: str) -> Win | None:
        """The impression beacon: bill the win once and fire its ``burl``. None if unknown or repeated."""
        win = self.winbook.bill(token)
        if win is None:
            return None
        bid = win.bid
        price = win.price_micros
        fee = price * self.settings.fee_bps // 10_000
        m = self.metrics.bidder(bid.bidder)
        m.impressions.inc()
        m.spend.inc(price / 1000 / MICROS)
        self.metrics.publisher_revenue.inc((price - fee) / 1000 / MICROS)
        s = self.stats
        b = s.bidder(bid.bidder)
        b.impressions += 1
        b.spend_cpm_micros += price
        s.impressions += 1
        s.spend_cpm_micros += price
        s.fee_cpm_micros += fee
        s.publisher_cpm_micros += price - fee
        self._feedback(feedback.BILLING, win, bid.burl)
        for listener in self.listeners:
            listener.on_impression(win)
        return win

    def click(self, token: str) -> Win | None:
        """The click beacon: count it and tell the bidder. None if the token is unknown."""
        win = self.winbook.click(token)
        if win is None:
            return None
        self.metrics.clicks.labels(win.bid.bidder).inc()
        self.stats.clicks += 1
        self.stats.bidder(win.bid.bidder).clicks += 1
        transport = self.transports[win.bid.bidder]
        self._feedback(feedback.CLICK, win, getattr(transport, "click_url", None))
        for listener in self.listeners:
            listener.on_click(win)
        return win

    def _feedback(self, kind: str, win: Win, url: str | None) -> None:
        transport = self.transports[win.bid.bidder]
        if transport.kind == "inprocess":
            if kind not in transport.listens:  # type: ignore[attr-defined]
                return
            event = self._event(
                kind, win.auction_id, win.bid, win.price_micros, loss.WON, win.price_micros
            )
            _deliver_all([(transport, event)])
        elif url and self.notices is not None:
            values = self.macro_values(
                win.auction_id, win.bid, win.price_micros, loss.WON, win.price_micros, quote=True
            )
            self.notices.send(kind, substitute(url, values))

    def macro_values(
        self,
        auction_id: str,
        bid: Bid,
        price_micros: int,
        code: int,
        min_to_win_micros: int,
        *,
        quote: bool = False,
    ) -> dict[str, str]:
        """Macro values for one bid; with ``quote``, ids are percent-encoded for use in a URL."""
        q = _quote if quote else _same
        return {
            "AUCTION_ID": q(auction_id),
            "AUCTION_BID_ID": q(bid.bidid or bid.id),
            "AUCTION_IMP_ID": q(bid.impid),
            "AUCTION_SEAT_ID": q(bid.seat),
            "AUCTION_AD_ID": q(bid.adid or ""),
            "AUCTION_PRICE": format_price(price_micros),
            "AUCTION_CURRENCY": self.settings.currency,
            "AUCTION_LOSS": str(code),
            "AUCTION_MIN_TO_WIN": format_price(min_to_win_micros),
        }

    def _event(
        self,
        kind: str,
        auction_id: str,
        bid: Bid,
        price_micros: int,
        code: int,
        min_to_win_micros: int,
    ) -> feedback.AuctionEvent:
        return feedback.AuctionEvent(
            kind=kind,
            auction_id=auction_id,
            imp_id=bid.impid,
            bid_id=bid.id,
            seat=bid.seat,
            ad_id=bid.adid,
            price=price_micros / MICROS,
            currency=self.settings.currency,
            loss=None if kind in (feedback.WIN, feedback.BILLING, feedback.CLICK) else code,
            min_to_win=min_to_win_micros / MICROS if kind == feedback.LOSS else None,
        )

    def _record(self, result: AuctionResult) -> None:
        metrics, stats = self.metrics, self.stats
        metrics.auction_duration.observe(result.duration)
        stats.auctions += 1
        stats.recent.append(result.duration)
        for outcome in result.outcomes:
            m = metrics.bidder(outcome.bidder)
            m.latency.observe(outcome.latency)
            m.outcomes[outcome.result].inc()
            b = stats.bidder(outcome.bidder)
            b.requests += 1
            field = _COUNT_FIELD[outcome.result]
            setattr(b, field, getattr(b, field) + 1)
            if outcome.dropped:
                b.bids_dropped += len(outcome.dropped)
                for d in outcome.dropped:
                    m.dropped.labels(outcome.bidder, str(d.code)).inc()
        filled = 0
        for res in result.imps:
            if res.winner is not None:
                filled += 1
                metrics.bidder(res.winner.bidder).wins.inc()
                stats.bidder(res.winner.bidder).wins += 1
                metrics.clearing_price.observe(res.price_micros / MICROS)
        n = len(result.imps)
        stats.imps += n
        stats.imps_filled += filled
        metrics.imps_filled.inc(filled)
        metrics.imps_unfilled.inc(n - filled)
        if filled:
            stats.filled += 1
            metrics.filled.inc()
        else:
            metrics.unfilled.inc()


def _quote(text: str) -> str:
    return quote(text, safe="")


def _same(text: str) -> str:
    return text


_hook_tasks: set[asyncio.Task[Any]] = set()


def _deliver_all(events: list[tuple[Any, feedback.AuctionEvent]]) -> None:
    for transport, event in events:
        try:
            pending = transport.feedback(event)
        except Exception:
            log.exception("bidder %s failed on its %s hook", transport.name, event.kind)
            continue
        if inspect.isawaitable(pending):
            task = asyncio.ensure_future(_await_hook(pending, transport.name, event.kind))
            _hook_tasks.add(task)
            task.add_done_callback(_hook_tasks.discard)


async def _await_hook(pending: Any, name: str, kind: str) -> None:
    try:
        await pending
    except Exception:
        log.exception("bidder %s failed on its %s hook", name, kind)
