"""Shared fixtures for the server tests: real SSP and DSP apps on 127.0.0.1, in the test's loop.

``start_dsp`` serves a bidder with :func:`dsp.server.make_app` (or any aiohttp app) on a free port;
``start_ssp`` serves :func:`ssp.server.make_app` wired to them and returns a test client. Both are
pytest-aiohttp servers: real HTTP over loopback, no mocking. The SSP is closed before the DSPs.

Plain helpers (``bid_request``, ``metric``, ``eventually``, ``Recording``...) are imported from here
by the test modules: ``from tests.conftest import ...``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import inspect
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from dsp.bidders.constant import ConstantBidder
from dsp.faults import Faults
from dsp.server import BID_PATH
from dsp.server import make_app as make_dsp_app
from exchange.feedback import AuctionEvent
from exchange.openrtb import BidRequest
from exchange.settings import ExchangeSettings
from ssp.config import DspEndpoint, Site, Slot, SspSettings
from ssp.server import make_app as make_ssp_app

Client = TestClient[web.Request, web.Application]

#: Slack allowed on top of an auction's budget for the SSP's answer to reach the test client.
DEADLINE_SLACK_S = 0.060

SITES = (
    Site(
        id="news",
        domain="news.example",
        name="The News",
        cat=("IAB12",),
        publisher="news-media",
        page="https://news.example/world/",
        slots=(Slot(id="top", w=728, h=90, floor=0.5, pos=1), Slot(id="side", w=300, h=250)),
    ),
)


# -- plain helpers -------------------------------------------------------------------------------


def bid_request(
    rid: str = "req-1", *, imps: Sequence[dict[str, Any]] | None = None, **top: Any
) -> dict[str, Any]:
    """An OpenRTB 2.6 BidRequest dict: one 300x250 banner imp "1" unless ``imps`` is given."""
    req: dict[str, Any] = {
        "id": rid,
        "imp": copy.deepcopy(list(imps)) if imps is not None else [banner_imp("1")],
        "site": {"id": "s1", "domain": "news.example", "page": "https://news.example/"},
        "device": {"ua": "Mozilla/5.0", "ip": "192.0.2.1"},
        "cur": ["USD"],
    }
    req.update(top)
    return req


def banner_imp(
    iid: str, *, floor: float | None = None, w: int = 300, h: int = 250
) -> dict[str, Any]:
    imp: dict[str, Any] = {"id": iid, "banner": {"w": w, "h": h}}
    if floor is not None:
        imp["bidfloor"] = floor
    return imp


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of sample ``name`` with ``labels`` in a Prometheus exposition, or None."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def eventually(
    condition: Callable[[], Any], *, timeout: float = 5.0, what: str = "the condition"
) -> Any:
    """Poll ``condition`` (sync or async) until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def record_cutoffs(exchange: Any) -> list[float]:
    """Wrap ``exchange.fanout.run`` to note the cutoff of every auction; the list it fills."""
    cutoffs: list[float] = []
    run = exchange.fanout.run

    async def spy(request: Any, *, cutoff: float) -> Any:
        cutoffs.append(cutoff)
        return await run(request, cutoff=cutoff)

    exchange.fanout.run = spy
    return cutoffs


def one_route_app(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], path: str = "/bid"
) -> web.Application:
    """An aiohttp app that answers POST ``path`` with ``handler``: a DSP a test shapes by hand."""
    app = web.Application()
    app.router.add_post(path, handler)
    return app


def free_port() -> int:
    """A port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RecordsFeedback:
    """Mixin for a bidder: keeps every feedback event it gets in ``events_``."""

    events_: list[AuctionEvent]

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)  # type: ignore[misc]
        self.events_ = []

    def on_win(self, event: AuctionEvent) -> None:
        self.events_.append(event)

    def on_loss(self, event: AuctionEvent) -> None:
        self.events_.append(event)

    def on_billing(self, event: AuctionEvent) -> None:
        self.events_.append(event)

    def on_click(self, event: AuctionEvent) -> None:
        self.events_.append(event)


class Recording(RecordsFeedback, ConstantBidder):
    """A constant bidder that records the requests it saw and the feedback it got."""

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.seen_: list[BidRequest] = []

    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        self.seen_.append(request)
        return super().bid(request)

    def kinds(self, kind: str) -> list[AuctionEvent]:
        return [e for e in self.events_ if e.kind == kind]


def recording(price: float, seat: str, **params: Any) -> Recording:
    bidder = Recording(price=price, seat=seat, **params)
    bidder.reset(0)
    return bidder


class Fixed:
    """Bids a fixed price per imp id with the given categories and advertiser domains.

    Unlike the built-in bidders it ignores the request's ``bcat``/``badv``: enforcing them is the
    exchange's job, which is what the tests using it check. ``extra`` fields are added
    to every bid (``nurl``, ``lurl``, ``adm``...). Feedback events are kept in ``events``.
    """

    def __init__(
        self,
        *,
        seat: str,
        prices: dict[str, float],
        cat: tuple[str, ...] = (),
        adomain: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.seat = seat
        self.prices = prices
        self.cat = cat
        self.adomain = adomain
        self.extra = extra or {}
        self.events: list[AuctionEvent] = []

    def on_win(self, event: AuctionEvent) -> None:
        self.events.append(event)

    def on_loss(self, event: AuctionEvent) -> None:
        self.events.append(event)

    def on_billing(self, event: AuctionEvent) -> None:
        self.events.append(event)

    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        bids = [
            {
                "id": f"{self.seat}-{imp.id}",
                "impid": imp.id,
                "price": self.prices[imp.id],
                "adm": f"<div>{self.seat}</div>",
                "crid": f"{self.seat}-creative",
                "cat": list(self.cat),
                "adomain": list(self.adomain),
                **self.extra,
            }
            for imp in request.imp
            if imp.id in self.prices
        ]
        if not bids:
            return None
        return {"id": request.id, "cur": "USD", "seatbid": [{"seat": self.seat, "bid": bids}]}


# -- servers -------------------------------------------------------------------------------------


@dataclass
class Dsp:
    """A DSP server started by ``start_dsp``."""

    name: str
    server: TestServer
    app: web.Application
    bidder: Any = None
    #: Every request the server received, as "METHOD path?query" (see ``start_dsp(log=True)``).
    hits: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return str(self.server.make_url(BID_PATH))

    @property
    def base(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")

    def endpoint(self, **kwargs: Any) -> DspEndpoint:
        return DspEndpoint(name=self.name, url=self.url, **kwargs)


StartDsp = Callable[..., Awaitable[Dsp]]
StartSsp = Callable[..., Awaitable[Client]]


@pytest.fixture
async def start_dsp(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> StartDsp:
    """``await start_dsp(name, bidder=..., price=..., faults=..., app=...)`` -> :class:`Dsp`.

    With ``price`` (and no ``bidder``) the bidder is a :class:`Recording` constant bidder whose seat
    is ``name``. With ``app`` any aiohttp application is served instead of the DSP server.
    """

    async def start(
        name: str,
        *,
        bidder: Any = None,
        price: float | None = None,
        faults: Faults | None = None,
        app: web.Application | None = None,
    ) -> Dsp:
        if app is None:
            if bidder is None:
                bidder = recording(price if price is not None else 1.0, seat=name)
            app = make_dsp_app(bidder=bidder, name=name, faults=faults, seed=0)
        dsp = Dsp(name=name, server=None, app=app, bidder=bidder)  # type: ignore[arg-type]

        @web.middleware
        async def log_hits(request: web.Request, handler: Any) -> web.StreamResponse:
            dsp.hits.append(f"{request.method} {request.path_qs}")
            return await handler(request)

        app.middlewares.append(log_hits)
        dsp.server = await aiohttp_server(app)
        return dsp

    return start


@pytest.fixture
def http_transport() -> str:
    """The SSP's DSP client (``exchange.transport``); a test module can parametrize it."""
    return "aiohttp"


@pytest.fixture
async def start_ssp(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[Client]],
    http_transport: str,
) -> AsyncIterator[StartSsp]:
    """``await start_ssp(dsps=[...], settings=..., ssp=..., sites=..., inprocess=...)`` -> client.

    ``dsps`` holds :class:`Dsp` handles or :class:`DspEndpoint`. The exchange's tie-break RNG is
    seeded and the SSP's ``gc.freeze()`` at start-up is off (a full collection per test is slow),
    unless ``settings``/``ssp`` say otherwise; a freeze is undone when the test ends.
    (Depending on ``aiohttp_server`` makes the SSP close before the DSP servers.)
    """

    async def start(
        *,
        dsps: Sequence[Dsp | DspEndpoint] = (),
        settings: ExchangeSettings | None = None,
        ssp: SspSettings | None = None,
        sites: Sequence[Site] = SITES,
        inprocess: Mapping[str, Any] | None = None,
    ) -> Client:
        endpoints = [d.endpoint() if isinstance(d, Dsp) else d for d in dsps]
        ssp = ssp or SspSettings(gc_freeze=False)
        if ssp.max_loop_lag_ms == SspSettings().max_loop_lag_ms:
            # Pauses are normal on a shared test machine; shedding is tested on its own
            # (tests/ssp/test_admission.py sets the limit explicitly).
            ssp = dataclasses.replace(ssp, max_loop_lag_ms=0)
        if ssp.gc_threshold == SspSettings().gc_threshold:
            ssp = dataclasses.replace(ssp, gc_threshold=0)  # the test process's GC is not the SSP's
        if ssp.gc_interval_ms == SspSettings().gc_interval_ms:
            ssp = dataclasses.replace(ssp, gc_interval_ms=0)  # nor is its collection pace
        app = make_ssp_app(
            settings=dataclasses.replace(
                settings or ExchangeSettings(seed=1), transport=http_transport
            ),
            ssp=ssp,
            dsps=endpoints,
            sites=sites,
            inprocess=inprocess,
        )
        return await aiohttp_client(app)

    yield start
    gc.unfreeze()


async def get(client: Client, url: str) -> ClientResponse:
    """GET an absolute URL (a beacon the SSP handed out) over the test client's session."""
    async with client.session.get(url) as resp:
        await resp.read()
        return resp


@pytest.fixture
def frozen_gc() -> Iterator[None]:
    """What the SSP does at start-up in production (``gc.collect(); gc.freeze()``), for tests that
    time the answer: the test session's own heap then stays out of long collections in the
    middle of a timed auction, as the server's start-up heap does in production."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


async def stats(client: Client) -> dict[str, Any]:
    resp = await client.get("/stats")
    assert resp.status == 200
    return dict(await resp.json())


async def metrics_text(client: Client) -> str:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return await resp.text()
