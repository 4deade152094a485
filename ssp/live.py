"""The live view behind /dashboard: per-second series of the market and the last auctions.

Cheap on the request path (a few microseconds an auction, bench/RESULTS.md): as an exchange
listener it adds each auction's clearing prices to per-bidder sums, keeps its duration and its
bidders' latencies as unboxed doubles (the first ``keep`` auctions of a tick: a sample past that),
and keeps the first ``rows_per_tick`` auctions of the tick for the table. No other auction is kept
alive: keeping each one a little longer than its request would carry its whole object graph
through a young garbage collection, which costs more than the sums. Once a tick
(``ssp.dashboard_tick_s``, 1 s), :meth:`LiveView.tick` turns what happened since the last tick into
one *point*: counts come from the differences of the exchange's own :class:`~exchange.stats.Stats`
(exact). Points and rows are plain JSON-ready dicts; ssp/dashboard.py pushes them to the browsers.

A point::

    t, dt, auctions (per s), fill (imps filled / imps), p50, p95, p99 (ms), overload, rejected
    (per s), spend, revenue (per s, currency), spend_total, revenue_total,
    bidders: {name: {requests (per s), bid_rate, win_rate, timeout_share, error_share, price,
                     spend (per s), p95 (ms), status}}

``bid_rate`` = calls answered with a bid / calls, ``win_rate`` = imps won / calls answered with a
bid, ``timeout_share`` = timeouts / calls, ``error_share`` = (errors + invalid) / calls, ``price``
= the average clearing price of the imps won (CPM). A DSP is ``down`` when none of its calls over
the last ``DOWN_TICKS`` ticks was answered (all timeouts, errors or invalid), ``degraded`` when a
quarter or more of them failed, ``idle`` when it was not called.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exchange.openrtb import MICROS
from exchange.stats import Stats
from ssp.tasks import stop_task

if TYPE_CHECKING:
    from exchange.engine import AuctionResult
    from exchange.winbook import Win

log = logging.getLogger(__name__)

#: Ticks looked back over to tell whether a DSP is down or degraded.
DOWN_TICKS = 3
DEGRADED_SHARE = 0.25
_COUNTS = ("requests", "bids", "nobids", "timeouts", "errors", "invalid", "wins")


class LiveView:
    def __init__(
        self,
        *,
        stats: Stats,
        bidders: list[str],
        tmax_ms: float,
        tick_s: float = 1.0,
        history: int = 300,
        rows: int = 50,
        rows_per_tick: int = 25,
        keep: int = 4096,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.stats = stats
        self.bidders = list(bidders)
        self.tmax_ms = tmax_ms
        self.tick_s = tick_s
        self.rows_per_tick = rows_per_tick
        #: Called at each tick for more figures (the event log's counts, in-flight auctions).
        self.extra = extra
        self.points: deque[dict[str, Any]] = deque(maxlen=history)
        self.rows: deque[dict[str, Any]] = deque(maxlen=rows)
        #: Messages of the last ticks, for the streams: (seq, message).
        self.messages: deque[tuple[int, dict[str, Any]]] = deque(maxlen=16)
        self.seq = 0
        self.conversions = 0
        self.closed = False
        self.keep = keep
        #: Since the last tick: the first auctions with the time each ended, for the table; the
        #: durations and bidder latencies of the first ``keep`` auctions; clearing prices
        #: (sum of micros, count) by bidder.
        self._recent: list[tuple[float, AuctionResult]] = []
        # unboxed doubles: nothing for the garbage collector to follow
        self._durations = array("d")
        self._latencies: dict[str, array[float]] = {n: array("d") for n in self.bidders}
        self._prices: dict[str, list[int]] = {name: [0, 0] for name in self.bidders}
        self._last = _Totals.of(stats, self.bidders, 0)
        self._window: deque[dict[str, tuple[int, int, int]]] = deque(maxlen=DOWN_TICKS)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- exchange listener (the request path) ----------------------------------------------------

    def on_auction(self, result: AuctionResult) -> None:
        recent = self._recent
        if len(recent) < self.rows_per_tick:
            recent.append((time.time(), result))
        for res in result.imps:
            winner = res.winner
            if winner is not None:
                sums = self._prices.get(winner.bidder)
                if sums is not None:
                    sums[0] += res.price_micros
                    sums[1] += 1
        durations = self._durations
        if len(durations) < self.keep:
            durations.append(result.duration)
            latencies = self._latencies
            for o in result.outcomes:
                seen = latencies.get(o.bidder)
                if seen is not None:
                    seen.append(o.latency)

    def on_impression(self, win: Win) -> None:
        pass

    def on_click(self, win: Win) -> None:
        pass

    def on_conversion(self, win: Win, value: float | None) -> None:
        self.conversions += 1

    # -- ticks -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._last = _Totals.of(self.stats, self.bidders, self.conversions)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def end_streams(self) -> None:
        """Wake every stream waiting for a tick, which then sees ``closed`` and ends."""
        self.closed = True
        self._wake()

    async def close(self) -> None:
        """Stop ticking and end the streams."""
        self.end_streams()
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.tick_s
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + self.tick_s, loop.time())
            try:
                self.tick()
            except Exception:
                log.exception("live view: tick failed")

    def tick(self) -> dict[str, Any]:
        """Add a point for what happened since the last tick and publish it; returns the message."""
        totals = _Totals.of(self.stats, self.bidders, self.conversions)
        point = self._point(totals, self._last)
        self._last = totals
        self.points.append(point)
        rows = [auction_row(r, end) for end, r in self._recent]
        self._recent = []
        self.rows.extend(rows)
        message = {"point": point, "auctions": rows, "totals": totals.json()}
        if self.extra is not None:
            message.update(self.extra())
        self.seq += 1
        self.messages.append((self.seq, message))
        self._wake()
        return message

    def hello(self) -> dict[str, Any]:
        """What a new dashboard starts from: settings, the history of points, the last auctions."""
        message = {
            "tmax_ms": self.tmax_ms,
            "tick_s": self.tick_s,
            "bidders": self.bidders,
            "history": list(self.points),
            "auctions": list(self.rows),
            "totals": _Totals.of(self.stats, self.bidders, self.conversions).json(),
        }
        if self.extra is not None:
            message.update(self.extra())
        return message

    def since(self, seq: int) -> list[tuple[int, dict[str, Any]]]:
        """The messages after ``seq`` still kept (a client that fell far behind skips some)."""
        return [(s, m) for s, m in self.messages if s > seq]

    async def wait(self, seq: int) -> None:
        """Return once there is a message after ``seq`` or the view is closed."""
        while self.seq <= seq and not self.closed:
            await self._changed.wait()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _point(self, now: _Totals, before: _Totals) -> dict[str, Any]:
        """The point since ``before``; resets the sums and samples of the tick."""
        dt = max(1e-6, now.ts - before.ts)
        imps = now.imps - before.imps
        durations = sorted(self._durations)
        self._durations = array("d")
        prices, latencies = self._prices, self._latencies
        self._prices = {name: [0, 0] for name in self.bidders}
        self._latencies = {name: array("d") for name in self.bidders}
        window: dict[str, tuple[int, int, int]] = {}
        bidders: dict[str, dict[str, Any]] = {}
        for name in self.bidders:
            d = {k: now.bidders[name][k] - before.bidders[name][k] for k in _COUNTS}
            spend = now.bidders[name]["spend"] - before.bidders[name]["spend"]
            calls, bids = d["requests"], d["bids"]
            failed = d["timeouts"] + d["errors"] + d["invalid"]
            window[name] = (calls, failed, d["bids"] + d["nobids"])
            won_micros, won = prices[name]
            bidders[name] = {
                "requests": calls / dt,
                "bid_rate": bids / calls if calls else None,
                "win_rate": d["wins"] / bids if bids else None,
                "timeout_share": d["timeouts"] / calls if calls else None,
                "error_share": (d["errors"] + d["invalid"]) / calls if calls else None,
                "price": won_micros / won / MICROS if won else None,
                "spend": spend / 1000 / MICROS / dt,
                "p95": _ms(_quantile(sorted(latencies[name]), 0.95)),
            }
        self._window.append(window)
        for name, b in bidders.items():
            b["status"] = self._status(name)
        return {
            "t": round(now.ts, 3),
            "dt": round(dt, 3),
            "auctions": (now.auctions - before.auctions) / dt,
            "fill": (now.imps_filled - before.imps_filled) / imps if imps else None,
            "p50": _ms(_quantile(durations, 0.5)),
            "p95": _ms(_quantile(durations, 0.95)),
            "p99": _ms(_quantile(durations, 0.99)),
            "overload": (now.overload - before.overload) / dt,
            "rejected": (now.rejected - before.rejected) / dt,
            "spend": (now.spend - before.spend) / 1000 / MICROS / dt,
            "revenue": (now.revenue - before.revenue) / 1000 / MICROS / dt,
            "spend_total": now.spend / 1000 / MICROS,
            "revenue_total": now.revenue / 1000 / MICROS,
            "bidders": bidders,
        }

    def _status(self, name: str) -> str:
        calls = failed = answered = 0
        for w in self._window:
            c, f, a = w.get(name, (0, 0, 0))
            calls, failed, answered = calls + c, failed + f, answered + a
        if not calls:
            return "idle"
        if not answered:
            return "down"
        return "degraded" if failed / calls >= DEGRADED_SHARE else "ok"


@dataclass(slots=True)
class _Totals:
    """The counters of :class:`Stats` at one moment (money in CPM micro-units)."""

    ts: float = 0.0
    auctions: int = 0
    imps: int = 0
    imps_filled: int = 0
    overload: int = 0
    rejected: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    spend: int = 0
    revenue: int = 0
    bidders: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, s: Stats, names: list[str], conversions: int) -> _Totals:
        t = cls(
            ts=time.time(),
            auctions=s.auctions,
            imps=s.imps,
            imps_filled=s.imps_filled,
            overload=s.overload,
            rejected=s.rejected,
            impressions=s.impressions,
            clicks=s.clicks,
            conversions=conversions,
            spend=s.spend_cpm_micros,
            revenue=s.publisher_cpm_micros,
        )
        for name in names:
            b = s.bidder(name)
            counts = {k: getattr(b, k) for k in _COUNTS}
            counts["spend"] = b.spend_cpm_micros
            counts["impressions"] = b.impressions
            t.bidders[name] = counts
        return t

    def json(self) -> dict[str, Any]:
        return {
            "auctions": self.auctions,
            "imps": self.imps,
            "imps_filled": self.imps_filled,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "overload": self.overload,
            "rejected": self.rejected,
            "spend": self.spend / 1000 / MICROS,
            "revenue": self.revenue / 1000 / MICROS,
            "bidders": {
                name: {
                    "requests": c["requests"],
                    "bids": c["bids"],
                    "wins": c["wins"],
                    "timeouts": c["timeouts"],
                    "errors": c["errors"] + c["invalid"],
                    "impressions": c["impressions"],
                    "spend": c["spend"] / 1000 / MICROS,
                }
                for name, c in self.bidders.items()
            },
        }


def auction_row(r: AuctionResult, end: float) -> dict[str, Any]:
    """One line of the dashboard's auctions table (``end``: when the auction ended, unix s)."""
    request = r.request
    site = request.site or request.app or {}
    winners = [res for res in r.imps if res.winner is not None]
    first = winners[0] if winners else None
    return {
        "t": round(end - r.duration, 3),
        "id": request.id,
        "site": site.get("id") or site.get("domain"),
        "slot": ", ".join(imp.tagid or imp.id for imp in request.imp),
        "ms": _ms(r.duration),
        "bidders": [[o.bidder, o.result, _ms(o.latency)] for o in r.outcomes],
        "winner": first.winner.bidder if first and first.winner else None,
        "price": first.price_micros / MICROS if first else None,
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * q))]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
