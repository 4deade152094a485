"""The /dashboard page in headless Chromium against a running world: a real SSP, real DSP servers
(one of them failing every call) and a little media-site traffic, all on 127.0.0.1.

The page must connect to its feed, draw all its uPlot charts and keep adding points, fill the
auctions table and keep it moving (and stop it while paused), and flag the failing DSP red. A
screenshot of every run goes to tests/artifacts/dashboard.png; ``GAVEL_UPDATE_SCREENSHOTS=1``
also refreshes docs/dashboard.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from playwright.async_api import Browser, ConsoleMessage, Page

from dsp.faults import Faults
from ssp.config import SspSettings
from tests.browser.conftest import ARTIFACTS, ROOT
from tests.conftest import Client, StartDsp, StartSsp, get

DOCS_SCREENSHOT = ROOT / "docs" / "dashboard.png"
TIMEOUT_MS = 15_000
CHARTS = 8


@contextlib.asynccontextmanager
async def traffic(client: Client, *, qps: float = 40) -> AsyncIterator[None]:
    """Ad requests for the news site's slots at about ``qps``, each filled ad seen (impression
    beacon), until the block ends."""

    async def one(i: int) -> None:
        slot = ("top", "side")[i % 2]
        resp = await client.post("/ad", json={"site": "news", "slot": slot, "user": f"u{i % 50}"})
        if resp.status == 200:
            await get(client, (await resp.json())["impression_url"])

    async def run() -> None:
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while True:
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            await asyncio.sleep(1 / qps)  # pacing the traffic, not synchronising

    driver = asyncio.create_task(run())
    try:
        yield
    finally:
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver


async def first_row(page: Page) -> str:
    return str(await page.eval_on_selector("#auctions tbody tr td.id", "td => td.textContent"))


async def test_the_dashboard_shows_the_market_moving(
    start_dsp: StartDsp, start_ssp: StartSsp, browser: Browser
) -> None:
    steady = await start_dsp("steady", price=2.0)
    spiky = await start_dsp(
        "spiky",
        price=1.5,
        faults=Faults(latency_ms=20, latency_jitter_ms=15, latency_dist="uniform"),
    )
    flaky = await start_dsp("flaky", price=3.0, faults=Faults(error_rate=1.0))
    client = await start_ssp(
        dsps=[steady, spiky, flaky], ssp=SspSettings(gc_freeze=False, dashboard_tick_s=0.25)
    )
    base = str(client.make_url("")).rstrip("/")

    page = await browser.new_page(viewport={"width": 1280, "height": 1100})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.append(f"console: {msg.text}")

    page.on("console", console)
    async with traffic(client):
        await page.goto(f"{base}/dashboard")
        await page.wait_for_function(
            "document.body.dataset.connected === '1' && +document.body.dataset.ticks >= 2",
            timeout=TIMEOUT_MS,
        )

        # every chart is drawn by uPlot and keeps getting points
        assert await page.locator(".chart .uplot canvas").count() == CHARTS
        points = await page.evaluate("gavel.charts[0].plot.data[0].length")
        await page.wait_for_function(
            f"gavel.charts[0].plot.data[0].length > {points}", timeout=TIMEOUT_MS
        )
        await page.wait_for_function(
            "gavel.charts[0].plot.data[1].some(v => v > 0)", timeout=TIMEOUT_MS
        )
        latency = await page.evaluate(
            "(() => { const p = gavel.charts.find(c => c.id === 'c-latency').plot;"
            " return [p.series.map(s => s.label), p.data[4], p.data[3].filter(v => v > 0).length]; })()"
        )
        labels, deadline, p99s = latency
        assert labels[1:] == ["p50", "p95", "p99", "deadline"]
        assert set(deadline) == {100}
        assert p99s > 0

        # the auctions table fills and moves on
        await page.wait_for_function("+document.body.dataset.rows > 0", timeout=TIMEOUT_MS)
        top = await first_row(page)
        await page.wait_for_function(
            f"document.querySelector('#auctions tbody tr td.id').textContent !== {top!r}",
            timeout=TIMEOUT_MS,
        )
        assert await page.locator("#auctions tbody tr").count() > 1

        # the failing DSP is flagged red, the others are fine
        down = page.locator('tr.dsp[data-dsp="flaky"][data-status="down"]')
        await down.wait_for(timeout=TIMEOUT_MS)
        background = await down.locator("td").first.evaluate(
            "td => getComputedStyle(td).backgroundColor"
        )
        assert background == "rgb(254, 242, 242)"
        assert await page.get_attribute('tr.dsp[data-dsp="steady"]', "data-status") == "ok"

        # pausing freezes the table while the charts go on; resuming catches up
        await page.click("#pause")
        frozen = await first_row(page)
        ticks = int(await page.get_attribute("body", "data-ticks") or 0)
        await page.wait_for_function(
            f"+document.body.dataset.ticks >= {ticks + 2}", timeout=TIMEOUT_MS
        )
        assert await first_row(page) == frozen
        assert "new while paused" in await page.inner_text("#held")
        await page.click("#pause")
        assert await first_row(page) != frozen

        await page.wait_for_function("+document.body.dataset.ticks >= 8", timeout=TIMEOUT_MS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        if os.environ.get("GAVEL_UPDATE_SCREENSHOTS") == "1":
            await page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True)
    assert not problems, problems
