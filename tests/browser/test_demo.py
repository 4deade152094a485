"""The /demo publisher page in headless Chromium against a real SSP and real DSP servers.

The page lays out the news site's desktop slots, fills each through ``POST /ad`` from JavaScript,
renders the creatives in sandboxed iframes (which fires the impression beacons) and counts a
click; the SSP's /stats and the winning DSP's click notice must show it. A screenshot of every run
goes to tests/artifacts/demo.png; ``GAVEL_UPDATE_SCREENSHOTS=1`` also refreshes docs/demo.png.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Page

from dsp.bidders.constant import ConstantBidder
from exchange.openrtb import BidRequest, Imp
from exchange.settings import ExchangeSettings
from gavel.config import DEFAULT_CONFIG, load_world
from ssp.config import SspSettings
from tests.browser.conftest import ARTIFACTS, ROOT
from tests.conftest import Dsp, RecordsFeedback, StartDsp, StartSsp, eventually, stats

DOCS_SCREENSHOT = ROOT / "docs" / "demo.png"


class SlotBidder(RecordsFeedback, ConstantBidder):
    """Bids ``price`` on the slots in ``slots`` and a cent less elsewhere, so that each slot's
    winner is known in advance."""

    def __init__(self, *, slots: tuple[str, ...] = (), **params: Any) -> None:
        super().__init__(**params)
        self.slots = slots

    def price_for(self, request: BidRequest, imp: Imp) -> float:
        return self.price if imp.tagid in self.slots else 0.9


ADOMAIN = {
    "RunFast Shoes": "runfast.example",
    "TravelWise": "travelwise.example",
    "Gadget Hub": "gadgets.example",
}


def bidder(seat: str, advertiser: str, slots: tuple[str, ...]) -> SlotBidder:
    b = SlotBidder(
        price=2.0, seat=seat, advertiser=advertiser, adomain=ADOMAIN[advertiser], slots=slots
    )
    b.reset(0)
    return b


async def whole_page(page: Page, path: Path) -> None:
    """A screenshot of the whole page. Chromium does not paint offscreen cross-origin (sandboxed)
    frames, so the viewport first grows to the page's height."""
    width = page.viewport_size["width"] if page.viewport_size else 1280
    height = await page.evaluate("document.documentElement.scrollHeight")
    await page.set_viewport_size({"width": width, "height": int(height)})
    await page.wait_for_function("new Promise(ok => requestAnimationFrame(() => ok(true)))")
    await page.screenshot(path=str(path), full_page=True)


def with_clicks(dsp: Dsp) -> Any:
    return dsp.endpoint(
        click_url=f"{dsp.base}/click?auction=${{AUCTION_ID}}&imp=${{AUCTION_IMP_ID}}"
        "&bid=${AUCTION_BID_ID}"
    )


async def test_demo_page_fills_its_slots_and_counts_a_click(
    start_dsp: StartDsp, start_ssp: StartSsp, browser: Browser
) -> None:
    sites = load_world(DEFAULT_CONFIG, environ={}).sites
    # each slot has a known winner: shoes on top and side, trips in the rail, gadgets inline
    shoes = await start_dsp("steady", bidder=bidder("steady", "RunFast Shoes", ("top", "side")))
    trips = await start_dsp("spiky", bidder=bidder("spiky", "TravelWise", ("rail",)))
    gadgets = await start_dsp("flaky", bidder=bidder("flaky", "Gadget Hub", ("inline",)))
    # This test is about the page: a loaded machine must not turn a slot into a no-fill, so the
    # deadline is generous and the SSP does not shed auctions while its event loop runs late.
    client = await start_ssp(
        dsps=[with_clicks(d) for d in (shoes, trips, gadgets)],
        sites=sites,
        settings=ExchangeSettings(seed=1, tmax_ms=3000, late_grace_ms=3000),
        ssp=SspSettings(gc_freeze=False, max_loop_lag_ms=0),
    )
    base = str(client.make_url("")).rstrip("/")

    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.append(f"console: {msg.text}")

    page.on("console", console)
    await page.goto(f"{base}/demo?site=news")
    await page.wait_for_function("document.body.dataset.ready === '1'", timeout=15_000)
    news = next(s for s in sites if s.id == "news")
    desktop = [s.id for s in news.slots if s.device in ("any", "desktop")]
    assert int(await page.get_attribute("body", "data-slots") or 0) == len(desktop) >= 3

    # every slot renders its creative in a sandboxed iframe, which fires the impression beacon
    settled = (
        "[...document.querySelectorAll('.ad-slot')].every(e => e.dataset.state !== 'loading' "
        "&& (e.dataset.state !== 'filled' || e.dataset.impression !== '0'))"
    )
    await page.wait_for_function(settled, timeout=20_000)
    slots = await page.eval_on_selector_all(
        ".ad-slot",
        "els => els.map(e => [e.dataset.slot, e.dataset.state, e.dataset.impression, "
        "e.querySelector('iframe')?.getAttribute('sandbox'), "
        "e.querySelector('iframe')?.srcdoc.length])",
    )
    assert sorted(s[0] for s in slots) == sorted(desktop)
    for slot, state, impression, sandbox, markup in slots:
        assert (state, impression) == ("filled", "1"), (slots, problems)
        assert sandbox is not None and "allow-scripts" not in sandbox, slot
        assert markup > 0, slot
    frame = page.frame_locator('.ad-slot[data-slot="rail"] iframe')
    assert await frame.locator("div").first.inner_text() == "TravelWise"
    before = await stats(client)
    assert before["impressions"] == len(desktop)
    assert before["clicks"] == 0

    # a click on a slot reaches the SSP's click beacon and the winning DSP's click notice
    await page.click('.ad-slot[data-slot="side"] .ad-click')
    await page.wait_for_selector('.ad-slot[data-slot="side"][data-clicked="1"]', timeout=10_000)
    after = await stats(client)
    assert after["clicks"] == 1
    assert after["bidders"]["steady"]["clicks"] == 1
    await eventually(
        lambda: [e for e in shoes.bidder.events_ if e.kind == "click"],
        what="the click notice at the winning DSP",
    )
    assert not [e for d in (trips, gadgets) for e in d.bidder.events_ if e.kind == "click"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await whole_page(page, ARTIFACTS / "demo.png")
    if os.environ.get("GAVEL_UPDATE_SCREENSHOTS") == "1":
        await whole_page(page, DOCS_SCREENSHOT)

    # a phone gets the mobile layout: the "any" slots and the mobile banner, not the desktop ones
    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    phone.on("pageerror", lambda exc: problems.append(f"phone page error: {exc}"))
    await phone.goto(f"{base}/demo?site=news")
    await phone.wait_for_function(settled, timeout=20_000)
    mobile = await phone.eval_on_selector_all(
        ".ad-slot", "els => els.map(e => [e.dataset.slot, e.dataset.state])"
    )
    expected = {s.id for s in news.slots if s.device in ("any", "mobile")}
    assert {slot for slot, _ in mobile} == expected and "mobile" in expected
    assert {state for _, state in mobile} == {"filled"}
    await whole_page(phone, ARTIFACTS / "demo-phone.png")
    assert not problems, problems
