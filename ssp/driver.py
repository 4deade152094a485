"""The traffic driver: the simulated world's traffic sent to an SSP over HTTP, open loop.

The thin async edge of :mod:`ssp.world`: :class:`~ssp.world.traffic.TrafficGenerator` schedules the
requests and pixel events window by window; the driver sends each at its time whether or not
earlier ones were answered (as real users do), renders each filled slot through
:class:`~ssp.world.render.Renderer` (impression beacon if seen, click beacon if clicked, a
conversion later in simulated time), and sends advertiser pixels to the DSPs that hold them.
Pixel failures are counted and never slow the traffic; a 404 (a DSP that takes no pixels) is
counted as declined, not failed.

:func:`drive` is the simple steady driver of the demo world's first version, now on top of the
generator with a flat rate, every ad seen and a fixed click rate; tests use it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from ssp.config import Site
from ssp.world import taxonomy
from ssp.world.clock import SimClock
from ssp.world.pixels import CONVERSION, PURCHASE, VISIT, pixel_url
from ssp.world.render import Conversion, Renderer
from ssp.world.settings import Advertiser, TrafficSettings, UserSettings
from ssp.world.stats import TrafficStats
from ssp.world.traffic import Batch, TrafficGenerator
from ssp.world.world import SimWorld, build_world

log = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json"}
#: Real seconds of traffic generated at once, and how long before its start a window is generated.
WINDOW_S = 0.25
LEAD_S = 0.02
MAX_PIXELS_IN_FLIGHT = 256
#: Kept for the callers of the first driver.
DriverStats = TrafficStats


class TrafficDriver:
    """Drives ``world``'s traffic at ``ssp_url`` with ``settings``; ``dsp_urls`` maps DSP names
    (an /ad answer's ``bidder``, an advertiser's ``pixel`` list) to their base URLs."""

    def __init__(
        self,
        *,
        ssp_url: str,
        world: SimWorld,
        settings: TrafficSettings,
        dsp_urls: Mapping[str, str] | None = None,
    ) -> None:
        self.ssp_url = ssp_url.rstrip("/")
        self.world = world
        self.settings = settings
        self.dsp_urls = {name: url.rstrip("/") for name, url in (dsp_urls or {}).items()}
        self.stats = TrafficStats()
        self.clock = SimClock.day_in(start_ts=settings.start_ts, day_minutes=settings.day_minutes)
        self.generator = TrafficGenerator(
            world=world,
            qps=settings.qps,
            clock=self.clock,
            seed=settings.seed,
            diurnal=settings.diurnal,
            bursts=settings.bursts,
        )
        self.renderer = Renderer(
            world=world,
            seed=settings.seed,
            click_rate=settings.click_rate,
            view_rate=settings.view_rate,
        )
        # A heap by real due time: (due, seq, conversion, the SSP's conversion beacon for the ad).
        self._conversions: list[tuple[float, int, Conversion, str]] = []
        self._seq = itertools.count()
        self._ads: set[asyncio.Task[None]] = set()
        self._pixels: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._t0 = self._tick = 0.0
        self._on_tick: Callable[[float], None] | None = None

    def burst(self, *, factor: float, seconds: float) -> None:
        """On demand: ``factor`` times the traffic for ``seconds``, starting with the next window."""
        self.generator.burst(factor=factor, seconds=seconds)

    async def run(
        self,
        *,
        stop: asyncio.Event | None = None,
        on_tick: Callable[[float], None] | None = None,
    ) -> TrafficStats:
        """Send traffic for ``settings.duration_s`` (or until ``stop`` is set); ``on_tick(elapsed)``
        is called about once a second. Returns the counters once every answer is in."""
        stop = stop or asyncio.Event()
        s = self.settings
        connector = aiohttp.TCPConnector(limit=1024, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=s.timeout_s)
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self._session = session
            self._t0, self._tick, self._on_tick = loop.time(), 1.0, on_tick
            self.stats.sim_start = self.stats.sim_now = self.clock.sim(0.0)
            gen = self.generator
            while not stop.is_set() and gen.t < s.duration_s:
                # generate each window just before it starts: never ahead of the real clock
                if not await self._until(gen.t - LEAD_S, stop):
                    break
                batch = gen.next_batch(min(s.duration_s, gen.t + WINDOW_S))
                self.stats.page_views += batch.page_views
                await self._play(batch, stop)
            self.stats.sim_now = max(self.stats.sim_now, self.clock.sim(self._now()))
            self.stats.conversions_pending = len(self._conversions)
            await self._drain()
        self._session = None
        return self.stats

    # -- the schedule ----------------------------------------------------------------------------

    def _now(self) -> float:
        """Real seconds since the start of the run."""
        return asyncio.get_running_loop().time() - self._t0

    async def _until(self, target: float, stop: asyncio.Event) -> bool:
        """Sleep until ``target`` (real seconds since the start), calling ``on_tick`` each second
        on the way; False when ``stop`` was set."""
        while not stop.is_set():
            now = self._now()
            if now >= self._tick:
                if self._on_tick is not None:
                    self._on_tick(now)
                self._tick = math.floor(now) + 1.0
            if target - now <= 0.0005:
                return True
            await asyncio.sleep(min(target, self._tick) - now)
        return False

    async def _play(self, batch: Batch, stop: asyncio.Event) -> None:
        """Send the batch's requests and pixels, and the conversions due in its window, each at
        its time."""
        ad_due, px_due = batch.due.tolist(), batch.pixels.due.tolist()
        i = j = 0
        n_ads, n_px = len(ad_due), len(px_due)
        heap = self._conversions
        while True:
            next_ad = ad_due[i] if i < n_ads else math.inf
            next_px = px_due[j] if j < n_px else math.inf
            next_conv = heap[0][0] if heap and heap[0][0] < batch.end else math.inf
            due = min(next_ad, next_px, next_conv)
            if due == math.inf or not await self._until(due, stop):
                return
            if due == next_ad:
                self._send_ad(batch, i)
                i += 1
            elif due == next_px:
                self._send_visit_or_purchase(batch, j)
                j += 1
            else:
                _, _, conv, beacon = heapq.heappop(heap)
                self._convert(conv, beacon)

    def _send_ad(self, batch: Batch, i: int) -> None:
        stats = self.stats
        if len(self._ads) >= self.settings.max_inflight:
            stats.dropped += 1
            return
        stats.sent += 1
        ts = float(batch.ts[i])
        stats.sim_now = ts
        task = asyncio.get_running_loop().create_task(
            self._ad(batch.bodies[i], int(batch.user[i]), int(batch.slot[i]), ts)
        )
        self._ads.add(task)
        task.add_done_callback(self._ads.discard)

    # -- one ad request and what follows ----------------------------------------------------------

    async def _ad(self, body: bytes, user: int, slot: int, ts: float) -> None:
        stats, session = self.stats, self._session
        assert session is not None
        t = time.perf_counter()
        try:
            async with session.post(f"{self.ssp_url}/ad", data=body, headers=JSON_HEADERS) as r:
                data = await r.read()
                status = r.status
        except asyncio.CancelledError:
            stats.error("unfinished")
            raise
        except TimeoutError:
            stats.error("timeout")
            return
        except (aiohttp.ClientError, OSError):
            stats.error("connection")
            return
        stats.latency(time.perf_counter() - t)
        if status == 204:
            stats.unfilled += 1
            stats.statuses["204"] += 1
            return
        if status != 200:
            stats.error(str(status))
            return
        try:
            answer = orjson.loads(data)
            imp_url, click_url = str(answer["impression_url"]), str(answer["click_url"])
            out = self.renderer.render(user=user, slot=slot, ts=ts, answer=answer)
        except (ValueError, KeyError, TypeError):  # not JSON, or not the SSP's /ad answer
            stats.error("bad-answer")
            return
        stats.filled += 1
        stats.statuses["200"] += 1
        if not out.viewed:
            stats.not_viewed += 1
            return
        stats.expected_clicks += out.p_click
        if await self._beacon(imp_url):
            stats.impressions += 1
        if out.clicked and await self._beacon(click_url):
            stats.clicks += 1
        if out.conversion is not None:
            due = self.clock.real(out.conversion.ts)
            beacon = click_url.replace("/click?", "/conversion?", 1)
            heapq.heappush(self._conversions, (due, next(self._seq), out.conversion, beacon))

    async def _beacon(self, url: str) -> bool:
        assert self._session is not None
        try:
            async with self._session.get(url) as resp:
                await resp.read()
                if resp.status < 400:
                    return True
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        self.stats.beacon_errors += 1
        return False

    # -- advertisers' pixels ----------------------------------------------------------------------

    def _send_visit_or_purchase(self, batch: Batch, j: int) -> None:
        px = batch.pixels
        advertiser = self.world.advertisers.advertisers[int(px.advertiser[j])]
        purchase = px.kind[j] == 1
        event = PURCHASE if purchase else VISIT
        for dsp in advertiser.pixel:
            self._pixel(
                event,
                dsp,
                user=f"u{int(px.user[j])}",
                advertiser=advertiser.domain,
                category=advertiser.cat,
                ts=float(px.ts[j]),
                value=float(px.value[j]) if purchase else None,
            )

    def _convert(self, conv: Conversion, beacon: str) -> None:
        """A purchase after a click: attributed to the winning DSP, seen by the pixel holders,
        and reported to the SSP's conversion beacon (its event log and dashboard)."""
        stats = self.stats
        if not self.renderer.convert(conv):
            stats.conversions_lost += 1
            return
        stats.conversions += 1
        stats.conversion_value += conv.value
        common: dict[str, Any] = {
            "user": f"u{conv.user}",
            "advertiser": conv.advertiser,
            "category": taxonomy.IDS[conv.cat] if conv.cat >= 0 else None,
            "ts": conv.ts,
            "value": conv.value,
        }
        ids = {"auction": conv.auction, "imp": conv.imp, "bid": conv.bid}
        self._pixel(CONVERSION, conv.bidder, **common, **ids)
        self._fire(f"{beacon}&value={conv.value:.2f}")
        advertiser: Advertiser | None = self.world.advertisers.find([conv.advertiser])
        for dsp in advertiser.pixel if advertiser else ():
            self._pixel(PURCHASE, dsp, **common)

    def _pixel(self, event: str, dsp: str, **query: Any) -> None:
        count = self.stats.pixel(event)
        base = self.dsp_urls.get(dsp)
        if base is None:
            count.unrouted += 1
            return
        if len(self._pixels) >= MAX_PIXELS_IN_FLIGHT:
            count.dropped += 1
            return
        count.sent += 1
        url = pixel_url(base, event=event, **query)
        task = asyncio.get_running_loop().create_task(self._get_pixel(url, event))
        self._pixels.add(task)
        task.add_done_callback(self._pixels.discard)

    def _fire(self, url: str) -> None:
        """A beacon off the traffic's path: a task, bounded together with the pixels."""
        if len(self._pixels) >= MAX_PIXELS_IN_FLIGHT:
            self.stats.beacon_errors += 1
            return
        task = asyncio.get_running_loop().create_task(self._fire_and_forget(url))
        self._pixels.add(task)
        task.add_done_callback(self._pixels.discard)

    async def _fire_and_forget(self, url: str) -> None:
        await self._beacon(url)

    async def _get_pixel(self, url: str, event: str) -> None:
        count = self.stats.pixel(event)
        assert self._session is not None
        try:
            async with self._session.get(url) as resp:
                await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            status = 0
        if 200 <= status < 300:
            count.ok += 1
        elif status == 404:  # the DSP takes no pixels: its choice, not a failure
            count.declined += 1
        else:
            count.failed += 1

    async def _drain(self) -> None:
        """Wait for the answers still out (up to the client timeout), then cancel the rest."""
        pending = self._ads | self._pixels
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=self.settings.timeout_s + 0.5)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)


async def drive(
    ssp_url: str,
    sites: Sequence[Site],
    *,
    qps: float,
    duration_s: float,
    users: int = 1000,
    click_rate: float = 0.02,
    seed: int = 1,
    stop: asyncio.Event | None = None,
) -> TrafficStats:
    """Steady traffic: ``qps`` ad requests a second (Poisson, flat rate) for ``duration_s``, every
    filled ad seen (impression beacon) and clicked with ``click_rate``."""
    settings = TrafficSettings(
        qps=qps,
        duration_s=duration_s,
        seed=seed,
        diurnal=False,
        click_rate=click_rate,
        view_rate=1.0,
    )
    world = build_world(
        sites=sites, users=UserSettings(count=users, seed=seed), start_ts=settings.start_ts
    )
    return await TrafficDriver(ssp_url=ssp_url, world=world, settings=settings).run(stop=stop)
