"""The traffic driver against real servers on 127.0.0.1: an SSP with DSP servers, a recording
/ad endpoint, a hanging one and a closed port. Counts must add up on both sides."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.test_utils import TestServer

from gavel.config import World
from ssp.dashboard import OBSERVERS
from ssp.driver import TrafficDriver
from ssp.world.settings import IntentSettings, TrafficSettings, TruthSettings, UserSettings
from ssp.world.stats import TrafficStats
from tests.conftest import (
    StartDsp,
    StartSsp,
    eventually,
    free_port,
    one_route_app,
    recording,
    stats,
)
from tests.ssp.world.conftest import make_world

Server = Callable[..., Awaitable[TestServer]]


def query(hit: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(hit.split(" ", 1)[1]).query).items()}


async def test_driven_world_counts_add_up_at_the_ssp_and_the_dsps(
    start_dsp: StartDsp, start_ssp: StartSsp, default_world: World
) -> None:
    world = make_world(
        default_world,
        user_settings=UserSettings(count=3000, seed=2, interests={"IAB17": 1000.0}),
        intent=IntentSettings(advertiser_visits_per_day=300.0),
        truth=TruthSettings(cvr_dormant=1.0, cvr_researching=1.0, conversion_delay_min=0.2),
    )
    shoes = recording(1.5, seat="steady", advertiser="RunFast Shoes", adomain="runfast.example")
    steady = await start_dsp("steady", bidder=shoes)
    other = await start_dsp("other", price=1.0)
    clicks = (
        f"{steady.base}/click?auction=${{AUCTION_ID}}&imp=${{AUCTION_IMP_ID}}"
        "&bid=${AUCTION_BID_ID}"
    )
    client = await start_ssp(
        dsps=[steady.endpoint(click_url=clicks), other], sites=default_world.sites
    )
    settings = TrafficSettings(qps=150, duration_s=1.5, day_minutes=1.0, click_rate=0.3, seed=3)
    driver = TrafficDriver(
        ssp_url=str(client.make_url("")),
        world=world,
        settings=settings,
        dsp_urls={"steady": steady.base, "other": other.base},
    )
    ticks: list[float] = []
    tr = await driver.run(on_tick=ticks.append)

    assert tr.sent > 100 and tr.dropped == 0
    assert tr.sent == tr.filled + tr.unfilled + tr.errors
    assert tr.errors == 0, tr.statuses
    assert sum(tr.statuses.values()) == tr.sent
    assert len(tr.latencies) == tr.sent
    assert tr.page_views < tr.sent  # a page view asks for every slot of its layout
    s = await stats(client)
    assert s["auctions"] + s["overload"] == tr.sent  # shed while the loop ran late: 204 at once
    assert s["filled"] == tr.filled
    # the impression beacon fires for seen ads only (the ground truth's viewability)
    assert 0 < tr.not_viewed < tr.filled
    assert s["impressions"] == tr.impressions == tr.filled - tr.not_viewed
    assert s["clicks"] == tr.clicks > 0
    assert tr.beacon_errors == 0
    assert len(ticks) >= 1

    # conversions: attributed to the served ad, sent to the DSP that won it (steady outbids
    # other, unless it missed the deadline)
    assert tr.conversions > 0
    conv = {
        name: [query(h) for h in dsp.hits if h.startswith("GET /pixel?event=conversion")]
        for name, dsp in (("steady", steady), ("other", other))
    }
    assert len(conv["steady"]) + len(conv["other"]) == tr.pixels["conversion"].sent
    # ... and reported to the SSP's conversion beacon (its live view and event log)
    live = client.app[OBSERVERS].live
    assert live is not None
    await eventually(lambda: live.conversions == tr.conversions, what="the conversion beacons")
    assert tr.pixels["conversion"].sent == tr.conversions
    assert len(conv["steady"]) > 0
    auctions = {r.id for r in shoes.seen_}
    for q in conv["steady"]:
        assert q["auction"] in auctions and q["imp"] == "1" and q["bid"]
        assert q["advertiser"] == "runfast.example" and q["category"] == "IAB17"
        assert float(q["value"]) > 0 and q["user"].startswith("u")
    # researching users visit the advertiser's site: its pixel holder (steady) hears of it;
    # the other advertisers' pixel holders have no URL here
    visits = [h for h in steady.hits if h.startswith("GET /pixel?event=visit")]
    assert len(visits) == tr.pixels["visit"].sent > 0
    assert tr.pixels["visit"].unrouted > 0
    # steady's bidder has no pixel(event) hook: its DSP answers 404, which is declined, not failed
    assert tr.pixels["visit"].declined == tr.pixels["visit"].sent
    for count in tr.pixels.values():
        assert count.sent == count.ok + count.declined + count.failed
        assert count.failed == 0
    assert not [
        h
        for h in other.hits
        if h.startswith(("GET /pixel?event=visit", "GET /pixel?event=purchase"))
    ]


async def test_the_same_seed_sends_the_same_requests(
    aiohttp_server: Server, default_world: World
) -> None:
    seen: list[bytes] = []

    async def ad(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(status=204)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/ad", ad)
    server = await aiohttp_server(app)
    runs = []
    for _ in range(2):
        seen.clear()
        world = make_world(default_world, users=2000, seed=8)
        settings = TrafficSettings(qps=200, duration_s=0.6, seed=8)
        tr = await TrafficDriver(
            ssp_url=str(server.make_url("")), world=world, settings=settings
        ).run()
        assert tr.unfilled == tr.sent == len(seen) > 50
        runs.append(sorted(seen))
    assert runs[0] == runs[1]


async def test_an_ssp_that_never_answers_does_not_hold_the_traffic(
    aiohttp_server: Server, default_world: World
) -> None:
    """Open loop: requests keep leaving on schedule; past max_inflight they are dropped, not
    queued; the run ends on time and every request sent is accounted for."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/ad", hang)
    server = await aiohttp_server(app)
    world = make_world(default_world, users=1000)
    settings = TrafficSettings(qps=300, duration_s=0.8, max_inflight=20, timeout_s=0.3, seed=1)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tr = await TrafficDriver(ssp_url=str(server.make_url("")), world=world, settings=settings).run()
    release.set()
    # bounded: the run, then at most the client timeout of draining (and generous slack)
    assert loop.time() - t0 < settings.duration_s + settings.timeout_s + 3.0
    assert tr.dropped > 0
    assert tr.sent == tr.errors and tr.statuses["timeout"] > 0
    assert tr.filled == tr.unfilled == 0


async def test_a_closed_port_is_counted_not_fatal(default_world: World) -> None:
    world = make_world(default_world, users=1000)
    settings = TrafficSettings(qps=100, duration_s=0.4, seed=1)
    tr = await TrafficDriver(
        ssp_url=f"http://127.0.0.1:{free_port()}", world=world, settings=settings
    ).run()
    assert tr.sent > 0 and tr.errors == tr.sent == tr.statuses["connection"]


async def test_pixels_a_dsp_fails_are_failed_not_declined(
    aiohttp_server: Server, default_world: World
) -> None:
    """Only a 404 means "takes no pixels"; a 500 or a closed port is a failure."""

    async def ad(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    ssp = await aiohttp_server(one_route_app(ad, "/ad"))
    dsp_app = web.Application()
    dsp_app.router.add_get("/pixel", broken)
    dsp = await aiohttp_server(dsp_app)
    world = make_world(
        default_world,
        user_settings=UserSettings(count=3000, seed=2, interests={"IAB17": 1000.0}),
        intent=IntentSettings(advertiser_visits_per_day=300.0),
    )
    settings = TrafficSettings(qps=150, duration_s=1.0, day_minutes=1.0, seed=3)
    urls = {"steady": str(dsp.make_url("")), "stride": f"http://127.0.0.1:{free_port()}"}
    tr = await TrafficDriver(
        ssp_url=str(ssp.make_url("")), world=world, settings=settings, dsp_urls=urls
    ).run()
    visits = tr.pixels["visit"]
    assert visits.sent > 0 and visits.declined == visits.ok == 0
    assert visits.failed == visits.sent
    assert "declined 0, failed" in tr.summary()


async def test_stop_ends_the_run_early(default_world: World, aiohttp_server: Server) -> None:
    async def ad(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/ad", ad)
    server = await aiohttp_server(app)
    world = make_world(default_world, users=1000)
    stop = asyncio.Event()
    driver = TrafficDriver(
        ssp_url=str(server.make_url("")),
        world=world,
        settings=TrafficSettings(qps=100, duration_s=30, seed=1),
    )
    task = asyncio.create_task(driver.run(stop=stop))
    await eventually(lambda: driver.stats.sent >= 10, what="some traffic")
    stop.set()
    tr = await asyncio.wait_for(task, timeout=5)
    assert tr.sent == tr.unfilled
    assert tr.sent < 100


def test_summary_and_progress_lines_read_well() -> None:
    tr = TrafficStats(sent=10, filled=8, unfilled=2, impressions=5, not_viewed=3, clicks=1)
    tr.statuses.update({"200": 8, "204": 2})
    for _ in range(10):
        tr.latency(0.01)
    tr.sim_start, tr.sim_now = 1_749_052_800.0, 1_749_056_400.0
    tr.pixel("visit").sent = 3
    text = tr.summary()
    assert "Wed 16:00 UTC -> Wed 17:00 UTC" in text
    assert "filled 8" in text and "CTR 20.000%" in text and "pixel visit" in text
    line = tr.progress_line(2.0, 4)
    assert "sent/s     6" in line and "p50  10.00 ms" in line
    assert tr.mark() == 10 and "p50   0.00 ms" in tr.progress_line(3.0, 10)
