"""The SSP's HTTP server (aiohttp): OpenRTB intake, ad requests from media sites, beacons, metrics.

Routes::

    POST /openrtb2/auction   an OpenRTB 2.6 BidRequest -> 200 BidResponse | 204 | 400 | 413
    POST /ad                 a media site's ad request (ssp.adrequest) -> 200 creative | 204 | 400
    GET  /imp?t=TOKEN        impression beacon: bills the win, fires the bidder's burl
    GET  /click?t=TOKEN      click beacon
    GET  /stats              in-memory aggregates (JSON)
    GET  /metrics            Prometheus
    GET  /healthz
    GET  /demo               a publisher page whose ad slots fill through /ad (ssp/static/)
    GET  /demo/sites         the site catalog the page lays out (JSON)
    GET  /static/...         the page's files
    GET  /dashboard, /dashboard/events, /conversion   the live dashboard (ssp/dashboard.py)
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from exchange.engine import AuctionResult, Exchange
from exchange.errors import NBR_TECHNICAL, RequestError
from exchange.eventlog import LoggedNoticeSender
from exchange.http_bidder import HttpBidder
from exchange.lean_http import LeanHttpBidder
from exchange.metrics import CONTENT_TYPE, ExchangeMetrics
from exchange.openrtb import BidRequest, parse_bid_request
from exchange.response import bid_response, winning_bids
from exchange.settings import ExchangeSettings
from exchange.transport import InProcessBidder, Transport
from exchange.winbook import WinBook
from ssp import dashboard
from ssp.admission import LagMonitor
from ssp.adrequest import parse_ad_request, to_openrtb
from ssp.config import DspEndpoint, Site, SspSettings
from ssp.gcpace import GcPacer

log = logging.getLogger(__name__)

JSON = "application/json"
STATIC_DIR = Path(__file__).resolve().parent / "static"
OPENRTB_HEADERS = {"x-openrtb-version": "2.6"}


@dataclass
class SspState:
    settings: ExchangeSettings
    ssp: SspSettings
    dsps: Sequence[DspEndpoint]
    sites: dict[str, Site]
    inprocess: Mapping[str, Any]
    metrics: ExchangeMetrics = field(default_factory=ExchangeMetrics)
    exchange: Exchange | None = None
    inflight: int = 0
    lag: LagMonitor = field(default_factory=LagMonitor)
    gc: GcPacer | None = None
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    prefix: str = field(default_factory=lambda: os.urandom(3).hex())


STATE = web.AppKey("gavel_ssp", SspState)


def make_app(
    *,
    settings: ExchangeSettings | None = None,
    ssp: SspSettings | None = None,
    dsps: Sequence[DspEndpoint] = (),
    sites: Sequence[Site] = (),
    inprocess: Mapping[str, Any] | None = None,
) -> web.Application:
    """The SSP application. ``inprocess`` maps bidder names to bidder objects called directly."""
    ssp = ssp or SspSettings()
    state = SspState(
        settings=settings or ExchangeSettings(),
        ssp=ssp,
        dsps=tuple(dsps),
        sites={s.id: s for s in sites},
        inprocess=dict(inprocess or {}),
    )
    app = web.Application(client_max_size=ssp.max_request_bytes)
    app[STATE] = state
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/openrtb2/auction", handle_openrtb)
    app.router.add_post("/ad", handle_ad)
    app.router.add_get("/imp", handle_impression)
    app.router.add_get("/click", handle_click)
    app.router.add_get("/stats", handle_stats)
    app.router.add_get("/metrics", handle_metrics)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/demo", handle_demo)
    app.router.add_get("/demo/sites", handle_demo_sites)
    app.router.add_static("/static/", STATIC_DIR)
    dashboard.setup(app, ssp)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """One ClientSession for bidders and notices, created and closed with the app."""
    state = app[STATE]
    s = state.settings
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=s.connections_per_dsp, keepalive_timeout=30
    )
    session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
    notices = LoggedNoticeSender(
        session=session,
        allowed_hosts=[
            HttpBidder(name=d.name, url=d.url, session=session).host for d in state.dsps
        ],
        metrics=state.metrics,
        queue_size=state.ssp.notice_queue,
        workers=state.ssp.notice_workers,
        timeout_s=state.ssp.notice_timeout_ms / 1000,
    )
    transports: list[Transport] = [_http_bidder(d, s, session) for d in state.dsps]
    lean = [t for t in transports if isinstance(t, LeanHttpBidder)]
    transports += [InProcessBidder(name=n, bidder=b) for n, b in state.inprocess.items()]
    state.exchange = Exchange(
        settings=s,
        transports=transports,
        metrics=state.metrics,
        notices=notices,
        winbook=WinBook(capacity=state.ssp.max_wins, ttl_s=state.ssp.win_ttl_s),
    )
    app[dashboard.OBSERVERS].start(state.exchange, state.metrics)  # event log and live view
    if state.ssp.gc_freeze:
        gc.collect()
        gc.freeze()
    # The cutoffs of the auctions waiting: new auctions let those past theirs answer first, and
    # the pacer collects between them.
    state.exchange.fanout.track_cutoffs = True
    if state.ssp.gc_interval_ms:
        state.gc = GcPacer(
            interval_s=state.ssp.gc_interval_ms / 1000,
            next_deadline=state.exchange.fanout.next_cutoff,
            # A pause that finds no gap gets a window reserved one budget (tmax) ahead
            pauses=state.exchange.pauses,
            lead_s=s.tmax_ms / 1000,
        )
        state.gc.start()
    elif state.ssp.gc_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(state.ssp.gc_threshold, gen1, gen2)
    state.lag.on_stall = state.metrics.loop_stalls.inc
    if state.exchange.margin is not None:
        state.lag.on_busy = state.exchange.margin.load  # a busy loop keeps a longer margin
    state.lag.start()
    try:
        yield
    finally:
        await app[dashboard.OBSERVERS].close()
        await state.lag.stop()
        if state.gc is not None:
            await state.gc.stop()
        await notices.close()
        for t in lean:
            await t.close()
        await session.close()


def _http_bidder(d: DspEndpoint, s: ExchangeSettings, session: aiohttp.ClientSession) -> Transport:
    """The configured HTTP transport for one DSP (the lean one speaks http:// only)."""
    if s.transport == "lean" and d.url.startswith("http://"):
        return LeanHttpBidder(
            name=d.name,
            url=d.url,
            max_response_bytes=s.max_response_bytes,
            hard_timeout_s=s.late_grace_ms / 1000,
            click_url=d.click_url,
            max_connections=s.connections_per_dsp,
        )
    return HttpBidder(
        name=d.name,
        url=d.url,
        session=session,
        max_response_bytes=s.max_response_bytes,
        hard_timeout_s=s.late_grace_ms / 1000,
        click_url=d.click_url,
    )


def _error(exc: RequestError, status: int = 400) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(exc.to_json()), content_type=JSON, headers=OPENRTB_HEADERS
    )


def _reject(state: SspState, exc: RequestError | _TooLarge) -> web.Response:
    """A request that cannot be auctioned: counted, and answered 400 (413 when too large)."""
    state.metrics.rejected.inc()
    assert state.exchange is not None
    state.exchange.stats.rejected += 1
    return exc.response() if isinstance(exc, _TooLarge) else _error(exc)


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[STATE].ssp.max_request_bytes
        raise _TooLarge(limit) from None


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def response(self) -> web.Response:
        err = RequestError(f"request body is over {self.limit} bytes", field="body")
        return _error(err, status=413)


def _shed() -> web.Response:
    """The answer to an auction shed for overload: no bid, OpenRTB nbr 1 (technical error)."""
    return web.Response(status=204, headers={"x-gavel-nbr": str(NBR_TECHNICAL)})


async def _auction(state: SspState, breq: BidRequest, arrival: float) -> AuctionResult | None:
    """Run the auction, or None (shed, counted) when too many auctions are in flight already or
    the event loop runs too late for it to finish on time."""
    exchange = state.exchange
    assert exchange is not None
    lag_limit = state.ssp.max_loop_lag_ms / 1000
    if state.inflight >= state.ssp.max_inflight or (lag_limit and state.lag.lag > lag_limit):
        state.metrics.overload.inc()
        exchange.stats.overload += 1
        return None
    state.inflight += 1
    state.metrics.inflight.inc()
    try:
        return await exchange.auction(breq, arrival=arrival)
    finally:
        state.inflight -= 1
        state.metrics.inflight.dec()


def _beacon_base(request: web.Request, state: SspState) -> str:
    return state.ssp.public_url.rstrip("/") or f"{request.scheme}://{request.host}"


async def handle_openrtb(request: web.Request) -> web.Response:
    state = request.app[STATE]
    exchange = state.exchange
    assert exchange is not None
    arrival = time.perf_counter()
    await exchange.answers_first()
    try:
        body = await _read(request)
        breq = parse_bid_request(
            body, currency=exchange.settings.currency, rates=exchange.settings.rates
        )
    except (RequestError, _TooLarge) as exc:
        return _reject(state, exc)
    result = await _auction(state, breq, arrival)
    if result is None:
        return _shed()
    answer = bid_response(exchange, result, beacon_base=_beacon_base(request, state))
    if answer is None:
        return web.Response(status=204, headers=OPENRTB_HEADERS)
    return web.Response(body=orjson.dumps(answer), content_type=JSON, headers=OPENRTB_HEADERS)


async def handle_ad(request: web.Request) -> web.Response:
    state = request.app[STATE]
    exchange = state.exchange
    assert exchange is not None
    arrival = time.perf_counter()
    await exchange.answers_first()
    try:
        body = await _read(request)
        ad = parse_ad_request(body, state.sites)
        rid = f"{state.prefix}-{next(state.ids):x}"
        raw = to_openrtb(
            ad,
            request_id=rid,
            tmax_ms=exchange.settings.tmax_ms,
            currency=exchange.settings.currency,
        )
        breq = parse_bid_request(
            raw, currency=exchange.settings.currency, rates=exchange.settings.rates
        )
    except (RequestError, _TooLarge) as exc:
        return _reject(state, exc)
    result = await _auction(state, breq, arrival)
    if result is None:
        return _shed()
    base = _beacon_base(request, state)
    won = winning_bids(exchange, result, beacon_base=base)
    if not won:
        return web.Response(status=204)
    i, bid = won[0]
    winner = result.imps[i].winner
    assert winner is not None
    token = f"{result.token}.{i}"
    answer = {
        "auction": rid,
        "imp": winner.impid,
        "bid_id": winner.id,
        "slot": ad.slot.id,
        "w": winner.w or ad.slot.w,
        "h": winner.h or ad.slot.h,
        "adm": bid.get("adm"),
        "markup_url": None if bid.get("adm") else bid.get("nurl"),
        "bidder": winner.bidder,
        "seat": winner.seat,
        "adomain": list(winner.adomain),
        "cat": list(winner.cat),
        "crid": winner.crid,
        "price": bid["price"],
        "impression_url": f"{base}/imp?t={token}",
        "click_url": f"{base}/click?t={token}",
    }
    return web.Response(body=orjson.dumps(answer), content_type=JSON)


async def handle_impression(request: web.Request) -> web.Response:
    """Bills the win once (``x-gavel-billed: 1``); unknown, expired or repeated tokens change nothing."""
    return _beacon(request, "impression", "x-gavel-billed")


async def handle_click(request: web.Request) -> web.Response:
    """Counts a click on a known win (``x-gavel-counted: 1``)."""
    return _beacon(request, "click", "x-gavel-counted")


def _beacon(request: web.Request, kind: str, header: str) -> web.Response:
    exchange = request.app[STATE].exchange
    assert exchange is not None
    token = request.query.get("t")
    if not token:
        return _error(RequestError("t (the beacon token) is required", field="t"))
    win = exchange.impression(token) if kind == "impression" else exchange.click(token)
    return web.Response(status=204, headers={header: "1" if win else "0"})


async def handle_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    assert state.exchange is not None
    data = state.exchange.stats.to_json()
    data["in_flight"] = state.inflight
    data["pid"] = os.getpid()  # which worker answered, when several share the port
    data["late_calls_draining"] = state.exchange.fanout.late_in_flight
    data["late_calls_given_up"] = state.exchange.fanout.late_given_up
    data["margin_ms"] = state.exchange.margin_s() * 1000
    data["loop_lag_s"] = state.lag.snapshot()
    data["gc"] = (
        state.gc.snapshot() if state.gc else {"mode": "auto", "threshold": gc.get_threshold()}
    )
    data["notice_queue"] = state.exchange.notices.queue.qsize() if state.exchange.notices else 0
    data["event_log"] = request.app[dashboard.OBSERVERS].event_log_stats()
    return web.Response(body=orjson.dumps(data), content_type=JSON)


async def handle_metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.exchange is not None:
        state.metrics.late_calls.set(state.exchange.fanout.late_in_flight)
        state.metrics.loop_lag.set(state.lag.lag)
        state.metrics.loop_busy.set(state.lag.busy)
        state.metrics.margin.set(state.exchange.margin_s())
        if state.exchange.notices is not None:
            state.metrics.notice_queue.set(state.exchange.notices.queue.qsize())
    return web.Response(body=state.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def handle_health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON)


async def handle_demo(request: web.Request) -> web.StreamResponse:
    """A publisher page (``?site=ID``) whose slots fill through ``POST /ad`` from JavaScript."""
    return web.FileResponse(STATIC_DIR / "demo.html", headers={"Cache-Control": "no-cache"})


async def handle_demo_sites(request: web.Request) -> web.Response:
    """The site catalog, for the demo page's layout: ids, names, pages and slots."""
    sites = [
        {
            "id": site.id,
            "name": site.name or site.domain,
            "domain": site.domain,
            "cat": list(site.cat),
            "page": site.page or f"https://{site.domain}/",
            "slots": [
                {"id": s.id, "w": s.w, "h": s.h, "pos": s.pos, "floor": s.floor, "device": s.device}
                for s in site.slots
            ],
        }
        for site in request.app[STATE].sites.values()
    ]
    return web.Response(body=orjson.dumps({"sites": sites}), content_type=JSON)
