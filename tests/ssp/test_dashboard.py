"""The dashboard's live feed (Server-Sent Events) read by a real HTTP client, and its page.

A real SSP with real DSP servers on 127.0.0.1; the live view ticks every 0.2 s here (1 s by
default). Every read of the feed is bounded, so a feed that stops fails the test instead of
hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import ClientResponse

from exchange.metrics import ExchangeMetrics
from exchange.settings import ExchangeSettings
from ssp.config import SspSettings
from ssp.dashboard import DASHBOARD_DIR, OBSERVERS, Observers
from tests.conftest import Client, StartDsp, StartSsp, bid_request, eventually

TICK_S = 0.2
ROOT = Path(__file__).resolve().parents[2]


def observers_of(client: Client) -> Observers:
    """The dashboard and event log of the SSP behind ``client``."""
    app = client.app
    assert app is not None
    return app[OBSERVERS]


class Feed:
    """The events of one /dashboard/events stream, parsed as Server-Sent Events."""

    def __init__(self, resp: ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 5.0) -> tuple[str, dict[str, Any]] | None:
        """The next event as (name, data); None at the end of the stream."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> tuple[str, dict[str, Any]] | None:
        event, data = "message", list[str]()
        while True:
            raw = await self.resp.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    return event, orjson.loads("\n".join(data))
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)

    async def until(
        self, condition: Callable[[dict[str, Any]], bool], *, timeout: float = 10.0, what: str
    ) -> list[dict[str, Any]]:
        """Read ticks until one satisfies ``condition``; returns every tick read, that one last."""
        seen: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            try:
                got = await self.next(timeout=left)
            except TimeoutError:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None
            assert got is not None, f"the feed ended while waiting for {what}"
            name, message = got
            assert name == "tick"
            seen.append(message)
            if condition(message):
                return seen


async def open_feed(client: Client) -> tuple[Feed, dict[str, Any]]:
    resp = await client.get("/dashboard/events")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    feed = Feed(resp)
    first = await feed.next()
    assert first is not None and first[0] == "hello"
    return feed, first[1]


def live(**kwargs: Any) -> SspSettings:
    return SspSettings(gc_freeze=False, dashboard_tick_s=TICK_S, **kwargs)


#: A generous deadline: what is checked here are the figures, on a busy test machine.
PATIENT = ExchangeSettings(seed=1, tmax_ms=1000)


async def test_the_feed_says_hello_then_ticks_with_the_new_auctions(
    start_dsp: StartDsp, start_ssp: StartSsp, tmp_path: Path
) -> None:
    high = await start_dsp("high", price=2.0)
    low = await start_dsp("low", price=1.0)
    client = await start_ssp(
        dsps=[high, low], settings=PATIENT, ssp=live(event_log=str(tmp_path / "events.jsonl"))
    )
    feed, hello = await open_feed(client)
    assert hello["tmax_ms"] == 1000 and hello["tick_s"] == TICK_S
    assert hello["bidders"] == ["high", "low"]
    assert isinstance(hello["history"], list) and hello["auctions"] == []
    assert hello["event_log"]["dropped"] == 0

    ids = [f"live-{i}" for i in range(10)]
    answers = await asyncio.gather(
        *(client.post("/openrtb2/auction", json=bid_request(i)) for i in ids)
    )
    assert all(a.status == 200 for a in answers)
    ticks = await feed.until(
        lambda m: m["totals"]["auctions"] == 10 and m["event_log"]["written"] >= 10,
        what="the 10 auctions and their records",
    )

    # the points add up to the auctions run, and describe them
    busy = [t["point"] for t in ticks if t["point"]["auctions"] > 0]
    assert round(sum(p["auctions"] * p["dt"] for p in busy)) == 10
    for p in busy:
        assert p["fill"] == 1.0 and 0 < p["p50"] <= p["p95"] <= p["p99"]
        h, lo = p["bidders"]["high"], p["bidders"]["low"]
        assert (h["bid_rate"], h["win_rate"], h["timeout_share"], h["price"]) == (1, 1, 0, 1.01)
        assert (lo["bid_rate"], lo["win_rate"], lo["price"]) == (1, 0, None)
        assert h["status"] == lo["status"] == "ok"
        assert h["p95"] > 0
    # and every auction came as a row of the table
    rows = [r for t in ticks for r in t["auctions"]]
    assert sorted(r["id"] for r in rows) == sorted(ids)
    row = rows[0]
    assert (row["site"], row["slot"], row["winner"], row["price"]) == ("s1", "1", "high", 1.01)
    assert [b[:2] for b in row["bidders"]] == [["high", "bid"], ["low", "bid"]]

    # a browser connecting now starts from the history
    _, later = await open_feed(client)
    assert len(later["history"]) >= len(ticks)
    assert sorted(r["id"] for r in later["auctions"]) == sorted(ids)


async def test_a_dsp_that_goes_down_is_flagged_and_the_feed_goes_on(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    high = await start_dsp("high", price=2.0)
    low = await start_dsp("low", price=1.0)
    client = await start_ssp(dsps=[high, low], settings=PATIENT, ssp=live())
    feed, _ = await open_feed(client)
    stop = asyncio.Event()

    async def traffic() -> None:
        i = 0
        while not stop.is_set():
            resp = await client.post("/openrtb2/auction", json=bid_request(f"t-{i}"))
            assert resp.status == 200
            i += 1
            await asyncio.sleep(0.01)  # pacing the traffic, not synchronising

    driver = asyncio.create_task(traffic())
    try:
        await feed.until(
            lambda m: m["point"]["bidders"]["low"]["status"] == "ok", what="low to be seen ok"
        )
        await low.server.close()  # the DSP goes down: its calls now fail to connect
        ticks = await feed.until(
            lambda m: m["point"]["bidders"]["low"]["status"] == "down",
            what="low to be flagged down",
        )
    finally:
        stop.set()
        await driver
    point = ticks[-1]["point"]
    assert point["bidders"]["high"]["status"] == "ok"
    assert point["bidders"]["low"]["bid_rate"] == 0
    assert point["fill"] == 1.0  # the market goes on without it
    assert point["auctions"] > 0
    failed = [r for r in ticks[-1]["auctions"] if ["low", "error"] in [b[:2] for b in r["bidders"]]]
    assert failed and all(r["winner"] == "high" for r in failed)


async def test_streams_end_when_the_server_shuts_down(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(dsps=[await start_dsp("solo", price=1.0)], ssp=live())
    feed, _ = await open_feed(client)
    # the open stream must not hold up the shutdown (aiohttp would wait 60 s for it)
    await asyncio.wait_for(client.server.close(), 10)
    with contextlib.suppress(aiohttp.ClientPayloadError):
        assert await feed.next() is None


async def test_a_browser_that_goes_away_frees_its_stream(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(dsps=[await start_dsp("solo", price=1.0)], ssp=live())
    observers = observers_of(client)
    feeds = [await open_feed(client) for _ in range(3)]
    assert observers.streams == 3
    for feed, _ in feeds[:2]:
        feed.resp.close()
    await eventually(lambda: observers.streams == 1, what="the closed streams to end")
    assert (await feeds[2][0].next())[0] == "tick"  # type: ignore[index]


async def test_the_page_and_every_file_it_loads_are_served(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(dsps=[await start_dsp("solo", price=1.0)], ssp=live())
    page = await client.get("/dashboard")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert len(assets) == 4  # uPlot's script and css, the dashboard's own
    for url in assets:
        resp = await client.get(url)
        assert resp.status == 200, url
        assert len(await resp.read()) > 500, url
    assert "https://" not in html  # no CDN: it works offline
    licence = (DASHBOARD_DIR / "vendor" / "uplot" / "LICENSE").read_text()
    assert "MIT License" in licence


async def test_the_dashboard_can_be_turned_off(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    client = await start_ssp(
        dsps=[await start_dsp("solo", price=1.0)], ssp=SspSettings(gc_freeze=False, dashboard=False)
    )
    assert (await client.get("/dashboard")).status == 404
    assert (await client.get("/dashboard/events")).status == 404
    resp = await client.post("/openrtb2/auction", json=bid_request("r"))
    assert resp.status == 200


def test_the_grafana_dashboard_queries_only_metrics_the_ssp_exports() -> None:
    """configs/grafana/gavel-dashboard.json must not drift from exchange/metrics.py."""
    exported: set[str] = set()
    for family in ExchangeMetrics().registry.collect():
        if family.type == "counter":
            exported.add(family.name + "_total")
        elif family.type == "histogram":
            exported |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            exported.add(family.name)
    dashboard = orjson.loads((ROOT / "configs" / "grafana" / "gavel-dashboard.json").read_bytes())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    assert len(exprs) >= 25
    used = {name for e in exprs for name in re.findall(r"\bgavel_[a-z_]+", e)}
    assert used <= exported, used - exported
    for needed in (
        "gavel_auctions_total",
        "gavel_imps_total",
        "gavel_auction_duration_seconds_bucket",
        "gavel_bidder_outcomes_total",
        "gavel_wins_total",
        "gavel_clearing_price_cpm_bucket",
        "gavel_spend_total",
        "gavel_publisher_revenue_total",
        "gavel_notices_total",
        "gavel_event_loop_lag_seconds",
        "gavel_events_dropped_total",
    ):
        assert needed in used, needed
    assert any("histogram_quantile(0.99" in e for e in exprs)
    scrape = (ROOT / "configs" / "prometheus" / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in scrape and "127.0.0.1:8000" in scrape
