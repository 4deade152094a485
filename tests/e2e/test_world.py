"""End to end in one event loop: the traffic driver -> the SSP's /ad -> real DSP servers and an
in-process bidder -> beacons -> notices back to the bidders; then the books, from both sides.

What the DSPs were told they spent (billing notices) must equal what the SSP billed, to the
micro-unit, and the SSP's books must balance: spend = publisher revenue + exchange fee.
"""

from __future__ import annotations

from typing import Any

import pytest

from dsp.bidders.random_bid import RandomBidder
from dsp.faults import Faults
from exchange.feedback import AuctionEvent
from exchange.settings import ExchangeSettings
from gavel.config import DEFAULT_CONFIG, load_world
from ssp.config import SspSettings
from ssp.driver import drive
from tests.conftest import (
    Dsp,
    Recording,
    RecordsFeedback,
    StartDsp,
    StartSsp,
    eventually,
    metric,
    metrics_text,
    recording,
    stats,
)

MICROS = 1_000_000


class RecordingRandom(RecordsFeedback, RandomBidder):
    pass


def micros(event: AuctionEvent) -> int:
    assert event.price is not None
    return round(event.price * MICROS)


def click_url(dsp: Dsp) -> str:
    return (
        f"{dsp.base}/click?auction=${{AUCTION_ID}}&imp=${{AUCTION_IMP_ID}}&bid=${{AUCTION_BID_ID}}"
    )


async def test_driven_world_books_balance_on_both_sides(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    sites = load_world(DEFAULT_CONFIG, environ={}).sites
    spiky_bidder = RecordingRandom(low=0.3, high=3.0, seat="spiky")
    spiky_bidder.reset(7)
    steady = await start_dsp("steady", price=1.2)
    spiky = await start_dsp("spiky", bidder=spiky_bidder)
    jittery = await start_dsp(
        "jittery",
        bidder=recording(1.1, seat="jittery"),
        faults=Faults(latency_ms=5, latency_jitter_ms=5, latency_dist="uniform"),
    )
    local = recording(1.15, seat="local")
    client = await start_ssp(
        dsps=[steady.endpoint(click_url=click_url(steady)), spiky, jittery],
        inprocess={"local": local},
        settings=ExchangeSettings(seed=11),
        ssp=SspSettings(),  # the defaults, gc.freeze() included
        sites=sites,
    )
    base = str(client.make_url("")).rstrip("/")
    driven = await drive(base, sites, qps=80, duration_s=1.5, click_rate=0.3, seed=5)

    assert driven.sent > 50
    assert driven.errors == 0
    s = await stats(client)
    assert s["auctions"] == driven.sent
    assert s["overload"] == 0 and s["rejected"] == 0
    assert s["filled"] == driven.filled
    assert s["impressions"] == driven.impressions == driven.filled
    assert s["clicks"] == driven.clicks
    assert abs(s["spend"] - (s["publisher_revenue"] + s["exchange_fee"])) < 1e-12

    bidders: dict[str, Any] = {
        "steady": steady.bidder,
        "spiky": spiky_bidder,
        "jittery": jittery.bidder,
        "local": local,
    }

    def events(kind: str) -> list[tuple[str, AuctionEvent]]:
        return [(n, e) for n, b in bidders.items() for e in b.events_ if e.kind == kind]

    # every billed impression reached its bidder as a billing notice, at the billed price
    await eventually(
        lambda: len(events("billing")) == s["impressions"], what="every billing notice"
    )
    billed_micros = sum(micros(e) for _, e in events("billing"))
    assert billed_micros == round(s["spend"] * 1000 * MICROS)
    for name, b in s["bidders"].items():
        mine = [e for n, e in events("billing") if n == name]
        assert len(mine) == b["impressions"] == b["wins"]
        assert sum(micros(e) for e in mine) == round(b["spend"] * 1000 * MICROS)

    # one win notice per won imp, one loss notice per losing bid
    await eventually(lambda: len(events("win")) == s["imps_filled"], what="every win notice")
    total_bids = sum(b["bids"] for b in s["bidders"].values())
    await eventually(
        lambda: len(events("loss")) == total_bids - s["imps_filled"], what="every loss notice"
    )
    assert all(e.loss == 102 for _, e in events("loss"))
    # clicks reach the DSP that has a click URL (steady) and the in-process bidder
    clicks = {n for n, _ in events("click")}
    assert clicks <= {"steady", "local"}
    expected_clicks = s["bidders"]["steady"]["clicks"] + s["bidders"]["local"]["clicks"]
    await eventually(lambda: len(events("click")) == expected_clicks, what="click notices")

    # the same money in the Prometheus metrics
    text = await metrics_text(client)
    spend = sum(metric(text, "gavel_spend_total", bidder=n) or 0.0 for n in bidders)
    assert spend == pytest.approx(s["spend"], abs=1e-9)
    revenue = metric(text, "gavel_publisher_revenue_total")
    assert revenue == pytest.approx(s["publisher_revenue"], abs=1e-9)
    assert metric(text, "gavel_auction_duration_seconds_count") == s["auctions"]
    assert metric(text, "gavel_notices_total", kind="billing", result="sent") == sum(
        s["bidders"][n]["impressions"] for n in ("steady", "spiky", "jittery")
    )
    assert s["latency_s"]["max"] < 0.100 + 0.060


async def test_recorded_bidders_saw_one_request_per_auction(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    sites = load_world(DEFAULT_CONFIG, environ={}).sites
    a = await start_dsp("a", price=1.3)
    client = await start_ssp(dsps=[a], sites=sites)
    base = str(client.make_url("")).rstrip("/")
    driven = await drive(base, sites, qps=100, duration_s=0.5, click_rate=0.0, seed=2)
    bidder: Recording = a.bidder
    assert len(bidder.seen_) == driven.sent
    ids = [r.id for r in bidder.seen_]
    assert len(set(ids)) == len(ids)  # every auction has its own request id
    by_site = {(r.site or {}).get("id") for r in bidder.seen_}
    assert by_site <= {s.id for s in sites}
    for r in bidder.seen_:
        (imp,) = r.imp
        site = next(s for s in sites if s.id == r.site["id"])  # type: ignore[index]
        slot = site.slot_by_id[imp.tagid]  # type: ignore[index]
        assert (imp.w, imp.h, imp.bidfloor) == (slot.w, slot.h, slot.floor)
        assert r.tmax is not None and 0 < r.tmax < 100
