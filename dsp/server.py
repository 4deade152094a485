"""The DSP HTTP server: serves any bidder object over OpenRTB 2.6, unchanged.

``POST /openrtb2/bid`` parses the request (leniently: exchanges send what they send), applies the
configured faults, calls ``bidder.bid(request)`` and answers 200 with the BidResponse or 204 for
no-bid, with notice URLs pointing back here. ``GET /win|/loss|/bill|/click`` turn notices into
:class:`~exchange.feedback.AuctionEvent` for the bidder's hooks. ``GET /pixel`` takes advertiser-site
events (:mod:`dsp.pixel`) and ``GET /stats`` reports, for bidders that have ``pixel(event)`` and
``stats()`` (the campaign bidder does; others answer 404). ``GET /metrics`` and
``GET /healthz`` are for operators. A malformed request never gets a 500; only a bidder that raises
does (logged, counted, no traceback on the wire).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from dsp.faults import ERROR, GARBAGE, HANG, Faults
from dsp.notices import PATHS, NoticeUrls, event_from_query
from dsp.pixel import CONVERSION, parse_pixel
from exchange.errors import NBR_INVALID_REQUEST, NBR_TECHNICAL, RequestError
from exchange.feedback import BILLING, CLICK, HOOKS, LOSS, WIN, AuctionEvent, deliver, listens
from exchange.metrics import CONTENT_TYPE, DspMetrics
from exchange.openrtb import BidRequest, loads_object, parse_bid_request

log = logging.getLogger(__name__)

BID_PATH = "/openrtb2/bid"
JSON = "application/json"
OPENRTB_HEADERS = {"x-openrtb-version": "2.6"}
ERROR_LOG_INTERVAL_S = 10.0  # a bidder failing on every request logs a traceback this often
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class DspService:
    """The server's state and handlers for one bidder (reach it with ``app[SERVICE]``)."""

    def __init__(
        self,
        *,
        bidder: Any,
        name: str,
        faults: Faults | None,
        seed: int | None,
        public_url: str | None,
        max_request_bytes: int,
    ) -> None:
        self.bidder = bidder
        self.name = name
        self.faults = faults if faults is not None and faults.active else None
        self.rng = random.Random(seed)
        self.max_request_bytes = max_request_bytes
        self.metrics = m = DspMetrics()
        self.closing = asyncio.Event()
        self._bid = bidder.bid
        self._bid_is_async = inspect.iscoroutinefunction(bidder.bid)
        self._async_hooks = frozenset(
            kind
            for kind, hook in HOOKS.items()
            if inspect.iscoroutinefunction(getattr(bidder, hook, None))
        )
        #: Notices to ask for: only those the bidder has hooks for.
        self._kinds = listens(bidder)
        self._public = NoticeUrls(public_url, self._kinds) if public_url else None
        self._by_origin: dict[tuple[str, str], NoticeUrls] = {}
        self._last_error_log = -ERROR_LOG_INTERVAL_S
        self._errors_unlogged = 0
        self.answered = {
            r: m.requests.labels(r)
            for r in ("bid", "nobid", "invalid", "hang", "error", "garbage", "exception")
        }
        self.notices = {k: m.notices.labels(k) for k in (WIN, LOSS, BILLING, CLICK)}
        self.pixels = m.notices.labels("pixel")

    # -- lifecycle -------------------------------------------------------------------------------

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: a fresh ``closing`` event per run; set on the way out."""
        self.closing = asyncio.Event()
        log.info("DSP %r serving %r", self.name, self.bidder)
        yield
        self.closing.set()

    async def on_shutdown(self, app: web.Application) -> None:
        """Release requests held by the hang fault, so that shutdown does not wait ``hang_s``."""
        self.closing.set()

    # -- bid requests ----------------------------------------------------------------------------

    async def handle_bid(self, request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        try:
            return await self._answer(request)
        finally:
            self.metrics.latency.observe(time.perf_counter() - t0)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.answered["invalid"].inc()
            return _json(
                413,
                {
                    "error": f"request body is larger than {self.max_request_bytes} bytes",
                    "field": "body",
                    "nbr": NBR_INVALID_REQUEST,
                },
            )
        try:
            raw = loads_object(body)
        except RequestError as exc:
            self.answered["invalid"].inc()
            return _json(400, exc.to_json())
        try:
            bid_request = parse_bid_request(raw, strict=False)
        except Exception as exc:  # RequestError, or whatever an odd request trips over
            log.debug("invalid bid request: %s", exc)
            self.answered["invalid"].inc()
            rid = raw.get("id")
            return _openrtb(
                200, {"id": rid if isinstance(rid, str) else "", "nbr": NBR_INVALID_REQUEST}
            )

        if self.faults is not None:
            action, delay_s = self.faults.draw(self.rng)
            if action == HANG:
                self.answered["hang"].inc()
                await self._hold(delay_s)
                return web.Response(status=204, headers=OPENRTB_HEADERS)
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            if action == ERROR:
                self.answered["error"].inc()
                return _json(500, {"error": "injected fault: error", "nbr": NBR_TECHNICAL})
            if action == GARBAGE:
                self.answered["garbage"].inc()
                return web.Response(
                    status=200,
                    body=_garbage(bid_request),
                    content_type=JSON,
                    headers=OPENRTB_HEADERS,
                )

        try:
            response = (
                await self._bid(bid_request) if self._bid_is_async else self._bid(bid_request)
            )
            return self._respond(request, bid_request, response)
        except Exception as exc:
            self._log_bidder_error(exc)
            self.answered["exception"].inc()
            return _json(
                500, {"error": f"bidder raised {type(exc).__name__}", "nbr": NBR_TECHNICAL}
            )

    def _respond(
        self, request: web.Request, bid_request: BidRequest, response: Any
    ) -> web.StreamResponse:
        if response is None:
            self.answered["nobid"].inc()
            return web.Response(status=204, headers=OPENRTB_HEADERS)
        if not isinstance(response, dict):
            if inspect.iscoroutine(response):
                response.close()
                raise TypeError("bid() returned a coroutine: declare it with async def")
            raise TypeError(f"bid() returned {type(response).__name__}, not a dict or None")
        filled, count = self._urls(request).fill(response, bid_request.id)
        if count == 0:
            self.answered["nobid"].inc()
            if filled.get("nbr") is None:
                return web.Response(status=204, headers=OPENRTB_HEADERS)
        else:
            self.answered["bid"].inc()
        return web.Response(
            status=200,
            body=orjson.dumps(filled, option=_DUMPS_OPTIONS),
            content_type=JSON,
            headers=OPENRTB_HEADERS,
        )

    def _urls(self, request: web.Request) -> NoticeUrls:
        if self._public is not None:
            return self._public
        key = (request.scheme, request.host)
        urls = self._by_origin.get(key)
        if urls is None:
            try:
                base = str(request.url.origin())
            except ValueError:  # a Host header yarl cannot read: use the socket we listen on
                host, port = request.transport.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
                base = f"{request.scheme}://{host}:{port}"
            urls = NoticeUrls(base, self._kinds)
            if len(self._by_origin) < 64:
                self._by_origin[key] = urls
        return urls

    async def _hold(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self.closing.wait()
        except TimeoutError:
            pass

    def _log_bidder_error(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log < ERROR_LOG_INTERVAL_S:
            self._errors_unlogged += 1
            return
        log.error(
            "bidder %r failed (%d more failures since the last report)",
            self.name,
            self._errors_unlogged,
            exc_info=exc,
        )
        self._last_error_log = now
        self._errors_unlogged = 0

    # -- notices ---------------------------------------------------------------------------------

    async def handle_win(self, request: web.Request) -> web.StreamResponse:
        return await self._notice(request, WIN)

    async def handle_loss(self, request: web.Request) -> web.StreamResponse:
        return await self._notice(request, LOSS)

    async def handle_bill(self, request: web.Request) -> web.StreamResponse:
        return await self._notice(request, BILLING)

    async def handle_click(self, request: web.Request) -> web.StreamResponse:
        return await self._notice(request, CLICK)

    async def _notice(self, request: web.Request, kind: str) -> web.StreamResponse:
        try:
            event = event_from_query(kind, request.query)
        except RequestError as exc:
            return _json(400, {"error": exc.message, "field": exc.field})
        self.notices[kind].inc()
        try:
            await self._deliver(event)
        except Exception as exc:
            self._log_bidder_error(exc)
            return _json(500, {"error": f"bidder's {HOOKS[kind]} raised {type(exc).__name__}"})
        return web.Response(status=204)

    async def _deliver(self, event: AuctionEvent) -> None:
        if event.kind in self._async_hooks:
            await getattr(self.bidder, HOOKS[event.kind])(event)
        else:
            deliver(self.bidder, event)

    # -- pixels and stats ------------------------------------------------------------------------

    async def handle_pixel(self, request: web.Request) -> web.StreamResponse:
        try:
            event = parse_pixel(request.query)
        except RequestError as exc:
            return _json(400, {"error": exc.message, "field": exc.field})
        self.pixels.inc()
        pixel = getattr(self.bidder, "pixel", None)
        key = event.bid_key
        try:
            if callable(pixel):
                done = pixel(event)
                if inspect.isawaitable(done):
                    await done
            elif event.event == CONVERSION and key is not None and CONVERSION in self._kinds:
                await self._deliver(
                    AuctionEvent(
                        kind=CONVERSION, auction_id=key[0], imp_id=event.imp or "", bid_id=key[1]
                    )
                )
            else:
                return _json(
                    404,
                    {
                        "error": f"bidder {self.name!r} takes no pixels: it has no pixel(event) "
                        "method (and no on_conversion hook for a conversion naming its bid)",
                        "field": None,
                    },
                )
        except Exception as exc:
            self._log_bidder_error(exc)
            return _json(500, {"error": f"bidder's pixel() raised {type(exc).__name__}"})
        return web.Response(status=204)

    async def handle_stats(self, request: web.Request) -> web.StreamResponse:
        stats = getattr(self.bidder, "stats", None)
        if not callable(stats):
            return _json(
                404,
                {"error": f"bidder {self.name!r} keeps no stats: it has no stats() method"},
            )
        try:
            body = stats()
            if inspect.isawaitable(body):
                body = await body
            data = orjson.dumps(body, default=str, option=_DUMPS_OPTIONS)
        except Exception as exc:
            self._log_bidder_error(exc)
            return _json(500, {"error": f"bidder's stats() raised {type(exc).__name__}"})
        return web.Response(body=data, content_type=JSON)

    # -- operators -------------------------------------------------------------------------------

    async def handle_metrics(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def handle_healthz(self, request: web.Request) -> web.StreamResponse:
        return _json(200, {"status": "ok", "bidder": self.name})


SERVICE = web.AppKey("gavel_dsp_service", DspService)
BIDDER = web.AppKey("gavel_dsp_bidder", object)
METRICS = web.AppKey("gavel_dsp_metrics", DspMetrics)


def make_app(
    *,
    bidder: Any,
    name: str = "dsp",
    faults: Faults | None = None,
    seed: int | None = None,
    public_url: str | None = None,
    max_request_bytes: int = 1 << 20,
) -> web.Application:
    """An aiohttp application serving ``bidder`` over OpenRTB 2.6.

    ``seed`` seeds the fault RNG (the bidder is seeded by its own ``reset``). ``public_url`` is the
    base of the notice URLs put in bids (``http://dsp1.example:8081``); by default each request's
    own origin. Request bodies over ``max_request_bytes`` get 413.
    """
    if not callable(getattr(bidder, "bid", None)):
        raise TypeError(f"bidder must have a bid(request) method, got {type(bidder).__name__}")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise ValueError(f"public_url must be an http(s) URL, got {public_url!r}")
    if max_request_bytes <= 0:
        raise ValueError(f"max_request_bytes must be > 0, got {max_request_bytes}")
    service = DspService(
        bidder=bidder,
        name=name,
        faults=faults,
        seed=seed,
        public_url=public_url,
        max_request_bytes=max_request_bytes,
    )
    app = web.Application(client_max_size=max_request_bytes)
    app[SERVICE] = service
    app[BIDDER] = bidder
    app[METRICS] = service.metrics
    app.cleanup_ctx.append(service.lifecycle)
    app.on_shutdown.append(service.on_shutdown)
    app.router.add_post(BID_PATH, service.handle_bid)
    app.router.add_get(PATHS[WIN], service.handle_win)
    app.router.add_get(PATHS[LOSS], service.handle_loss)
    app.router.add_get(PATHS[BILLING], service.handle_bill)
    app.router.add_get(PATHS[CLICK], service.handle_click)
    app.router.add_get("/pixel", service.handle_pixel)
    app.router.add_get("/stats", service.handle_stats)
    app.router.add_get("/metrics", service.handle_metrics)
    app.router.add_get("/healthz", service.handle_healthz)
    return app


def _json(status: int, obj: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(obj), content_type=JSON)


def _openrtb(status: int, obj: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(obj), content_type=JSON, headers=OPENRTB_HEADERS
    )


def _garbage(bid_request: BidRequest) -> bytes:
    """A BidResponse cut off mid-way: what a crashing bidder or a broken proxy sends."""
    return b'{"id":' + orjson.dumps(bid_request.id) + b',"cur":"USD","seatbid":[{"bid":[{"id":"'
