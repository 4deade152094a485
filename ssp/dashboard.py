"""The dashboard of a running SSP, its live feed, the event log's wiring and the conversion beacon.

Routes::

    GET /dashboard          the page (ssp/static/dashboard/: uPlot charts, no build step, no CDN)
    GET /dashboard/events   Server-Sent Events: ``hello`` (settings, the history of points, the last
                            auctions) when a browser connects, then one ``tick`` a second (a
                            point, the new auctions, totals, the event log's counts)
    GET /conversion?t=TOKEN[&value=V]   a conversion of the ad served with TOKEN (the simulated
                            world's ground truth; real conversions go to the advertiser): logged

:class:`Observers` holds the live view (:mod:`ssp.live`) and the event log
(:mod:`exchange.eventlog`) of one app; the server starts them with its exchange and closes them with
it. Streams end when the app shuts down, so a browser left open never holds up a restart.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from exchange import events
from exchange.engine import Exchange
from exchange.errors import RequestError
from exchange.eventlog import EventLog, LoggedNoticeSender
from exchange.events import EventRecorder
from exchange.metrics import ExchangeMetrics
from ssp.config import SspSettings
from ssp.live import LiveView

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).resolve().parent / "static" / "dashboard"
#: How long a browser waits before reconnecting a dropped feed (ms).
RETRY_MS = 2000
#: Feeds open at once, at most (each is a task and a connection); past it: 503.
MAX_STREAMS = 64


class Observers:
    """The live view and the event log of one SSP app (each may be off)."""

    def __init__(self, ssp: SspSettings) -> None:
        self.ssp = ssp
        self.exchange: Exchange | None = None
        self.live: LiveView | None = None
        self.log: EventLog | None = None
        self.recorder: EventRecorder | None = None
        self.streams = 0

    def start(self, exchange: Exchange, metrics: ExchangeMetrics) -> None:
        """Open the event log (when ``ssp.event_log`` is set), start the live view (when
        ``ssp.dashboard``), and make both listeners of ``exchange``."""
        self.exchange = exchange
        ssp = self.ssp
        listeners: list[Any] = []
        if ssp.event_log:
            self.log = EventLog(
                ssp.event_log,
                max_bytes=ssp.event_log_max_bytes,
                backups=ssp.event_log_backups,
                queue_size=ssp.event_queue,
                encode=functools.partial(events.encode, fee_bps=exchange.settings.fee_bps),
                metrics=metrics,
            )
            self.log.start()
            self.recorder = EventRecorder(self.log)
            listeners.append(self.recorder)
            if isinstance(exchange.notices, LoggedNoticeSender):
                exchange.notices.recorder = self.recorder
            log.info("event log: %s", self.log.path)
        if ssp.dashboard:
            self.live = LiveView(
                stats=exchange.stats,
                bidders=list(exchange.transports),
                tmax_ms=exchange.settings.tmax_ms,
                tick_s=ssp.dashboard_tick_s,
                extra=self._extra,
            )
            self.live.start()
            listeners.append(self.live)
        exchange.listeners = (*exchange.listeners, *listeners)

    def end_streams(self) -> None:
        if self.live is not None:
            self.live.end_streams()

    async def close(self) -> None:
        if self.live is not None:
            await self.live.close()
        if self.log is not None:
            await self.log.close()

    def event_log_stats(self) -> dict[str, Any] | None:
        return self.log.stats() if self.log is not None else None

    def conversion(self, token: str, value: float | None) -> bool:
        assert self.exchange is not None
        win = self.exchange.winbook.get(token)
        if win is None:
            return False
        for listener in (self.recorder, self.live):
            if listener is not None:
                listener.on_conversion(win, value)
        return True

    def _extra(self) -> dict[str, Any]:
        return {"event_log": self.event_log_stats()}


OBSERVERS = web.AppKey("gavel_observers", Observers)


def setup(app: web.Application, ssp: SspSettings) -> None:
    """Register the dashboard's routes and the conversion beacon on the SSP ``app``."""
    app[OBSERVERS] = Observers(ssp)
    if ssp.dashboard:
        app.router.add_get("/dashboard", handle_dashboard)
        app.router.add_get("/dashboard/events", handle_events)
    app.router.add_get("/conversion", handle_conversion)
    app.on_shutdown.append(_end_streams)


async def _end_streams(app: web.Application) -> None:
    app[OBSERVERS].end_streams()


async def handle_dashboard(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def handle_events(request: web.Request) -> web.StreamResponse:
    """The live feed as Server-Sent Events; ends when the browser goes or the app shuts down."""
    observers = request.app[OBSERVERS]
    live = observers.live
    if live is None or live.closed:
        raise web.HTTPServiceUnavailable(text="the live view is not running")
    if observers.streams >= MAX_STREAMS:
        raise web.HTTPServiceUnavailable(text=f"{MAX_STREAMS} dashboards are open already")
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    seq = live.seq
    observers.streams += 1
    try:
        await resp.write(sse("hello", live.hello(), retry=RETRY_MS))
        while True:
            await live.wait(seq)
            if live.closed:
                break
            batch = live.since(seq)
            for s, message in batch:
                await resp.write(sse("tick", message, event_id=s))
            seq = batch[-1][0] if batch else live.seq
    except ConnectionError:  # the browser went away
        pass
    finally:
        observers.streams -= 1
    return resp


def sse(event: str, data: Any, *, event_id: int | None = None, retry: int | None = None) -> bytes:
    """One Server-Sent Event: ``data`` as JSON on one line."""
    head = f"event: {event}\n"
    if event_id is not None:
        head += f"id: {event_id}\n"
    if retry is not None:
        head += f"retry: {retry}\n"
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


async def handle_conversion(request: web.Request) -> web.Response:
    token = request.query.get("t")
    if not token:
        return _bad(RequestError("t (the beacon token) is required", field="t"))
    value: float | None = None
    if "value" in request.query:
        try:
            value = float(request.query["value"])
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            return _bad(RequestError("value must be a number >= 0", field="value"))
    counted = request.app[OBSERVERS].conversion(token, value)
    return web.Response(status=204, headers={"x-gavel-counted": "1" if counted else "0"})


def _bad(exc: RequestError) -> web.Response:
    return web.Response(
        status=400, body=orjson.dumps(exc.to_json()), content_type="application/json"
    )
