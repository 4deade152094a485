"""The SSP server over real HTTP: OpenRTB intake, /ad, beacons, /stats, /metrics, overload.

Every DSP here is a real :func:`dsp.server.make_app` server on 127.0.0.1 in the test's event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from dsp.faults import Faults
from exchange.settings import ExchangeSettings
from ssp.config import SspSettings
from tests.conftest import (
    DEADLINE_SLACK_S,
    Client,
    Dsp,
    Fixed,
    Recording,
    StartDsp,
    StartSsp,
    banner_imp,
    bid_request,
    eventually,
    get,
    metric,
    metrics_text,
    stats,
)

AUCTION = "/openrtb2/auction"
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
async def trio(start_dsp: StartDsp) -> list[Dsp]:
    """Three constant DSPs bidding 3.0 ("high"), 2.0 ("mid") and 1.0 ("low"); seat = name."""
    return [
        await start_dsp("high", price=3.0),
        await start_dsp("mid", price=2.0),
        await start_dsp("low", price=1.0),
    ]


async def auction(client: Client, req: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    resp = await client.post(AUCTION, data=orjson.dumps(req), headers=JSON_HEADERS)
    body = await resp.read()
    assert resp.headers.get("x-openrtb-version") == "2.6"
    return resp.status, (orjson.loads(body) if resp.status == 200 else None)


def only_bid(answer: dict[str, Any] | None) -> dict[str, Any]:
    assert answer is not None
    assert len(answer["seatbid"]) == 1
    assert len(answer["seatbid"][0]["bid"]) == 1
    return dict(answer["seatbid"][0]["bid"][0])


# -- OpenRTB auctions ----------------------------------------------------------------------------


async def test_second_price_pays_runner_up_plus_increment(
    trio: list[Dsp], start_ssp: StartSsp
) -> None:
    client = await start_ssp(dsps=trio)
    resp = await client.post(AUCTION, data=orjson.dumps(bid_request("r-1")), headers=JSON_HEADERS)
    assert resp.status == 200
    assert resp.headers["x-openrtb-version"] == "2.6"
    assert resp.content_type == "application/json"
    answer = await resp.json()
    assert answer["id"] == "r-1"
    assert answer["cur"] == "USD"
    assert [sb["seat"] for sb in answer["seatbid"]] == ["high"]
    bid = only_bid(answer)
    assert bid["price"] == 2.01
    assert bid["impid"] == "1"
    assert bid["adm"]
    # nurl and lurl are the exchange's to send; burl becomes the SSP's own impression beacon.
    assert "nurl" not in bid and "lurl" not in bid
    burl = urlsplit(bid["burl"])
    assert (burl.scheme, burl.netloc, burl.path) == ("http", f"127.0.0.1:{client.port}", "/imp")
    assert parse_qs(burl.query)["t"][0]
    # every DSP was asked, with the request id and a tmax below the exchange's 100 ms
    for dsp in trio:
        (seen,) = dsp.bidder.seen_
        assert seen.id == "r-1"
        assert seen.tmax is not None and 0 < seen.tmax < 100


@pytest.mark.parametrize(
    ("floor", "price"),
    [
        (None, 2.01),
        (2.0, 2.01),  # the floor equals the runner-up
        (2.5, 2.51),  # the runner-up is under the floor: the winner pays floor + increment
        (2.995, 3.0),  # floor + increment is over the winner's bid: capped at the bid
        (3.0, 3.0),
    ],
)
async def test_floor_sets_the_price(
    trio: list[Dsp], start_ssp: StartSsp, floor: float | None, price: float
) -> None:
    client = await start_ssp(dsps=trio)
    status, answer = await auction(client, bid_request(imps=[banner_imp("1", floor=floor)]))
    assert status == 200
    assert answer is not None and answer["seatbid"][0]["seat"] == "high"
    assert only_bid(answer)["price"] == price


@pytest.mark.parametrize(("floor", "price"), [(None, 0.01), (1.0, 1.01), (2.999, 3.0)])
async def test_lone_bid_pays_floor_plus_increment(
    start_dsp: StartDsp, start_ssp: StartSsp, floor: float | None, price: float
) -> None:
    client = await start_ssp(dsps=[await start_dsp("solo", price=3.0)])
    status, answer = await auction(client, bid_request(imps=[banner_imp("1", floor=floor)]))
    assert status == 200
    assert only_bid(answer)["price"] == price


async def test_nobody_bids_is_204(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    resp = await client.post(
        AUCTION, data=orjson.dumps(bid_request(imps=[banner_imp("1", floor=5.0)]))
    )
    assert resp.status == 204
    assert resp.headers["x-openrtb-version"] == "2.6"
    assert await resp.read() == b""
    s = await stats(client)
    assert (s["auctions"], s["filled"], s["imps_filled"]) == (1, 0, 0)
    assert {name: b["nobids"] for name, b in s["bidders"].items()} == {
        "high": 1,
        "mid": 1,
        "low": 1,
    }


async def test_no_dsps_at_all_is_204(start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=[])
    status, _ = await auction(client, bid_request())
    assert status == 204


async def test_first_price_pays_the_bid(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    status, answer = await auction(client, bid_request(at=1))
    assert status == 200
    assert only_bid(answer)["price"] == 3.0


async def test_each_imp_is_auctioned_on_its_own(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    a = await start_dsp("a", bidder=Fixed(seat="a", prices={"1": 3.0, "2": 1.0, "3": 0.5}))
    b = await start_dsp("b", bidder=Fixed(seat="b", prices={"1": 2.0, "2": 4.0, "3": 0.7}))
    client = await start_ssp(dsps=[a, b])
    imps = [
        banner_imp("1"),
        banner_imp("2", floor=1.5),  # a's 1.0 is under the floor: b pays floor + increment
        banner_imp("3", floor=1.0),  # nobody reaches it
        {"id": "4", "video": {"mimes": ["video/mp4"], "w": 640, "h": 480}},  # nobody bids
    ]
    status, answer = await auction(client, bid_request(imps=imps))
    assert status == 200
    assert answer is not None
    got = {
        bid["impid"]: (sb["seat"], bid["price"]) for sb in answer["seatbid"] for bid in sb["bid"]
    }
    assert got == {"1": ("a", 2.01), "2": ("b", 1.51)}
    s = await stats(client)
    assert (s["imps"], s["imps_filled"]) == (4, 2)
    assert s["bidders"]["a"]["wins"] == 1 and s["bidders"]["b"]["wins"] == 1


@pytest.mark.usefixtures("frozen_gc")
async def test_request_tmax_shorter_than_the_maximum_is_honoured(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    slow = await start_dsp("slow", price=5.0, faults=Faults(latency_ms=80))
    fast = await start_dsp("fast", price=1.0)
    client = await start_ssp(
        dsps=[slow, fast], settings=ExchangeSettings(seed=1, tmax_ms=400, late_grace_ms=1000)
    )
    # tmax 40: the 80 ms DSP is late, the fast one wins alone
    t0 = time.perf_counter()
    status, answer = await auction(client, bid_request("short", tmax=40))
    elapsed = time.perf_counter() - t0
    assert status == 200
    assert answer is not None and answer["seatbid"][0]["seat"] == "fast"
    assert elapsed < 0.040 + DEADLINE_SLACK_S
    # the late call drains in the background; the DSP was told its share of the budget
    await eventually(lambda: slow.bidder.seen_, what="the slow DSP to get to its bidder")
    (seen,) = slow.bidder.seen_
    assert seen.tmax is not None and seen.tmax < 40
    s = await stats(client)
    assert s["bidders"]["slow"]["timeouts"] == 1
    assert s["bidders"]["fast"]["bids"] == 1
    # without a tmax of its own the request gets the configured 400 ms, and the slow DSP wins
    status, answer = await auction(client, bid_request("long"))
    assert status == 200
    assert answer is not None and answer["seatbid"][0]["seat"] == "slow"
    assert only_bid(answer)["price"] == 1.01


@pytest.mark.parametrize(
    ("blocks", "code"),
    [
        ({"bcat": ["IAB7"]}, "209"),  # the parent category of the bid's IAB7-39
        ({"bcat": ["IAB7-39"]}, "209"),
        ({"badv": ["bad.example"]}, "205"),
    ],
)
async def test_bcat_and_badv_drop_matching_bids(
    start_dsp: StartDsp, start_ssp: StartSsp, blocks: dict[str, Any], code: str
) -> None:
    bad = await start_dsp(
        "bad",
        bidder=Fixed(seat="bad", prices={"1": 3.0}, cat=("IAB7-39",), adomain=("bad.example",)),
    )
    ok = await start_dsp(
        "ok", bidder=Fixed(seat="ok", prices={"1": 2.0}, cat=("IAB1",), adomain=("ok.example",))
    )
    client = await start_ssp(dsps=[bad, ok])
    status, answer = await auction(client, bid_request(**blocks))
    assert status == 200
    assert answer is not None and answer["seatbid"][0]["seat"] == "ok"
    assert only_bid(answer)["price"] == 0.01  # alone in the auction: floor (0) + increment
    s = await stats(client)
    assert s["bidders"]["bad"]["bids_dropped"] == 1
    assert s["bidders"]["bad"]["wins"] == 0
    text = await metrics_text(client)
    assert metric(text, "gavel_bids_dropped_total", bidder="bad", code=code) == 1.0
    # without the block the blocked bidder wins
    status, answer = await auction(client, bid_request("unblocked"))
    assert answer is not None and answer["seatbid"][0]["seat"] == "bad"


async def test_tie_pays_the_tied_price_and_is_broken_at_random(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    a = await start_dsp("a", price=2.0)
    b = await start_dsp("b", price=2.0)
    low = await start_dsp("low", price=1.0)
    client = await start_ssp(dsps=[a, b, low], settings=ExchangeSettings(seed=5))
    winners = []
    for i in range(24):
        status, answer = await auction(client, bid_request(f"tie-{i}"))
        assert status == 200
        assert only_bid(answer)["price"] == 2.0
        assert answer is not None
        winners.append(answer["seatbid"][0]["seat"])
    assert set(winners) == {"a", "b"}  # 24 fair coin flips are all heads with p = 6e-8


@pytest.mark.parametrize(
    ("lists", "seat", "price"),
    [
        ({"bseat": ["high"]}, "mid", 1.01),
        ({"bseat": ["high", "mid"]}, "low", 0.01),
        ({"wseat": ["mid", "low"]}, "mid", 1.01),
        ({"wseat": ["low"]}, "low", 0.01),
    ],
)
async def test_bseat_and_wseat_decide_who_may_win(
    trio: list[Dsp], start_ssp: StartSsp, lists: dict[str, Any], seat: str, price: float
) -> None:
    client = await start_ssp(dsps=trio)
    status, answer = await auction(client, bid_request(**lists))
    assert status == 200
    assert answer is not None and answer["seatbid"][0]["seat"] == seat
    assert only_bid(answer)["price"] == price


async def test_deal_bids_win_over_open_bids(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    dealer = await start_dsp(
        "dealer", bidder=Fixed(seat="dealer", prices={"1": 1.5}, extra={"dealid": "d-1"})
    )
    open_high = await start_dsp("open", price=3.0)
    client = await start_ssp(dsps=[dealer, open_high])
    imp = {**banner_imp("1"), "pmp": {"deals": [{"id": "d-1", "bidfloor": 1.0}]}}
    status, answer = await auction(client, bid_request(imps=[imp]))
    assert status == 200
    assert answer is not None and answer["seatbid"][0]["seat"] == "dealer"
    bid = only_bid(answer)
    assert bid["dealid"] == "d-1"
    assert bid["price"] == 1.01  # the deal's floor + increment: the open bid does not set it
    # in a private auction only deal bids compete: the open bidder does not even bid
    imp["pmp"]["private_auction"] = 1
    status, answer = await auction(client, bid_request("private", imps=[imp]))
    assert answer is not None and answer["seatbid"][0]["seat"] == "dealer"
    # a deal the imp does not offer is dropped: the open bid wins
    other = {**banner_imp("1"), "pmp": {"deals": [{"id": "d-2"}]}}
    status, answer = await auction(client, bid_request("no-deal", imps=[other]))
    assert answer is not None and answer["seatbid"][0]["seat"] == "open"
    assert (await stats(client))["bidders"]["dealer"]["bids_dropped"] == 1


async def test_floor_in_another_currency_is_converted(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio, settings=ExchangeSettings(seed=1, rates={"EUR": 1.1}))
    imp = {**banner_imp("1", floor=2.0), "bidfloorcur": "EUR"}  # 2.20 USD
    status, answer = await auction(client, bid_request(imps=[imp]))
    assert status == 200
    assert only_bid(answer)["price"] == 2.21


async def test_public_url_is_the_beacon_base(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio, ssp=SspSettings(public_url="https://ssp.example/"))
    _, answer = await auction(client, bid_request())
    assert only_bid(answer)["burl"].startswith("https://ssp.example/imp?t=")
    ad = await client.post("/ad", json={"site": "news", "slot": "top"})
    assert (await ad.json())["impression_url"].startswith("https://ssp.example/imp?t=")


# -- malformed requests --------------------------------------------------------------------------

GOOD_IMP = {"id": "1", "banner": {"w": 300, "h": 250}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b'"a string"', "body"),
        ({"imp": [GOOD_IMP]}, "id"),
        ({"id": "", "imp": [GOOD_IMP]}, "id"),
        ({"id": 7, "imp": [GOOD_IMP]}, "id"),
        ({"id": "r"}, "imp"),
        ({"id": "r", "imp": []}, "imp"),
        ({"id": "r", "imp": {"id": "1"}}, "imp"),
        ({"id": "r", "imp": ["x"]}, "imp[0]"),
        ({"id": "r", "imp": [{"banner": {}}]}, "imp[0].id"),
        ({"id": "r", "imp": [{"id": "", "banner": {}}]}, "imp[0].id"),
        ({"id": "r", "imp": [{"id": "1"}]}, "imp[0].banner"),
        ({"id": "r", "imp": [GOOD_IMP, {"id": "2", "banner": None}]}, "imp[1].banner"),
        ({"id": "r", "imp": [GOOD_IMP, GOOD_IMP]}, "imp[1].id"),
        ({"id": "r", "imp": [GOOD_IMP], "tmax": -1}, "tmax"),
        ({"id": "r", "imp": [GOOD_IMP], "tmax": "soon"}, "tmax"),
        ({"id": "r", "imp": [{**GOOD_IMP, "bidfloor": "cheap"}]}, "imp[0].bidfloor"),
    ],
)
async def test_malformed_request_is_400_naming_the_field(
    start_dsp: StartDsp, start_ssp: StartSsp, body: Any, field: str
) -> None:
    dsp = await start_dsp("d", price=1.0)
    client = await start_ssp(dsps=[dsp])
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = await client.post(AUCTION, data=data, headers=JSON_HEADERS)
    text = await resp.text()
    assert resp.status == 400, text
    assert resp.content_type == "application/json"
    assert "Traceback" not in text
    err = orjson.loads(text)
    assert set(err) == {"error", "field", "nbr"}
    assert err["field"] == field
    assert err["nbr"] == 2  # OpenRTB no-bid reason: invalid request
    assert isinstance(err["error"], str) and err["error"]
    assert dsp.bidder.seen_ == []  # nothing was sent to the DSP
    s = await stats(client)
    assert (s["rejected"], s["auctions"]) == (1, 0)


async def test_body_over_the_limit_is_413(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    dsp = await start_dsp("d", price=1.0)
    client = await start_ssp(dsps=[dsp], ssp=SspSettings(max_request_bytes=2048))
    small = orjson.dumps(bid_request(ext={"pad": "x" * 1000}))
    resp = await client.post(AUCTION, data=small, headers=JSON_HEADERS)
    assert resp.status == 200
    big = orjson.dumps(bid_request(ext={"pad": "x" * 4000}))
    for path in (AUCTION, "/ad"):
        resp = await client.post(path, data=big, headers=JSON_HEADERS)
        text = await resp.text()
        assert resp.status == 413, (path, text)
        assert "Traceback" not in text
        assert orjson.loads(text)["field"] == "body"


# -- /ad ---------------------------------------------------------------------------------------


async def test_ad_request_gets_the_creative_and_beacons(
    trio: list[Dsp], start_ssp: StartSsp
) -> None:
    client = await start_ssp(dsps=trio)
    resp = await client.post(
        "/ad",
        json={
            "site": "news",
            "slot": "top",
            "user": "u-1",
            "segments": ["IAB17"],
            "device": {"ua": "Mozilla/5.0", "ip": "203.0.113.7", "devicetype": 2, "os": "iOS"},
            "geo": {"lat": 48, "lon": 2.35, "country": "FRA", "utcoffset": 60},
        },
    )
    assert resp.status == 200
    ad = await resp.json()
    assert ad["adm"] and "<div" in ad["adm"]
    assert (ad["w"], ad["h"]) == (728, 90)
    assert ad["price"] == 2.01
    assert ad["bidder"] == "high" and ad["seat"] == "high"
    assert ad["slot"] == "top"
    base = f"http://127.0.0.1:{client.port}"
    assert ad["impression_url"].startswith(f"{base}/imp?t=")
    assert ad["click_url"].startswith(f"{base}/click?t=")
    # what the DSPs saw: the enriched OpenRTB request
    seen = trio[0].bidder.seen_[0]
    assert seen.site is not None and seen.site["domain"] == "news.example"
    (imp,) = seen.imp
    assert (imp.w, imp.h, imp.bidfloor, imp.tagid) == (728, 90, 0.5, "top")
    assert seen.device is not None and seen.device["geo"]["lat"] == 48.0
    assert seen.user is not None and seen.user["id"] == "u-1"


async def test_ad_request_nobody_reaches_the_floor_is_204(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(dsps=[await start_dsp("cheap", price=0.1)])
    resp = await client.post("/ad", json={"site": "news", "slot": "top"})  # floor 0.5
    assert resp.status == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slot": "top"}, "site"),
        ({"site": "nowhere", "slot": "top"}, "site"),
        ({"site": "news"}, "slot"),
        ({"site": "news", "slot": "bottom"}, "slot"),
        ({"site": "news", "slot": "top", "geo": {"lat": "48.8"}}, "geo.lat"),
        ({"site": "news", "slot": "top", "geo": {"lat": 91}}, "geo.lat"),
        ({"site": "news", "slot": "top", "geo": {"lon": -181.0}}, "geo.lon"),
        ({"site": "news", "slot": "top", "geo": {"utcoffset": 1.5}}, "geo.utcoffset"),
        ({"site": "news", "slot": "top", "geo": [48, 2]}, "geo"),
        ({"site": "news", "slot": "top", "device": {"devicetype": "2"}}, "device.devicetype"),
        ({"site": "news", "slot": "top", "device": {"devicetype": True}}, "device.devicetype"),
        ({"site": "news", "slot": "top", "device": {"ua": 5}}, "device.ua"),
        ({"site": "news", "slot": "top", "device": {"colour": "red"}}, "device.colour"),
        ({"site": "news", "slot": "top", "segments": "IAB1"}, "segments"),
        ({"site": "news", "slot": "top", "user": 42}, "user"),
        (b"{", "body"),
        (b"[]", "body"),
    ],
)
async def test_bad_ad_request_is_400_naming_the_field(
    trio: list[Dsp], start_ssp: StartSsp, body: Any, field: str
) -> None:
    client = await start_ssp(dsps=trio)
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = await client.post("/ad", data=data, headers=JSON_HEADERS)
    text = await resp.text()
    assert resp.status == 400, text
    assert "Traceback" not in text
    err = orjson.loads(text)
    assert err["field"] == field
    assert err["error"]
    assert all(not d.bidder.seen_ for d in trio)


# -- beacons, /stats, /metrics, /healthz --------------------------------------------------------


async def won_ad(client: Client) -> dict[str, Any]:
    resp = await client.post("/ad", json={"site": "news", "slot": "top"})
    assert resp.status == 200
    return dict(await resp.json())


async def test_impression_beacon_bills_once(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    ad = await won_ad(client)
    first = await get(client, ad["impression_url"])
    assert first.status == 204
    assert first.headers["x-gavel-billed"] == "1"
    again = await get(client, ad["impression_url"])
    assert again.status == 204
    assert again.headers["x-gavel-billed"] == "0"
    s = await stats(client)
    assert s["impressions"] == 1
    assert s["bidders"]["high"]["impressions"] == 1
    assert s["spend"] == pytest.approx(2.01 / 1000, abs=1e-12)


async def test_openrtb_burl_is_the_impression_beacon(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    _, answer = await auction(client, bid_request())
    burl = only_bid(answer)["burl"]
    assert (await get(client, burl)).headers["x-gavel-billed"] == "1"
    assert (await get(client, burl)).headers["x-gavel-billed"] == "0"


async def test_beacon_tokens_are_checked(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    for path in ("/imp", "/click"):
        resp = await client.get(path)
        assert resp.status == 400
        assert (await resp.json())["field"] == "t"
    unknown = await client.get("/imp", params={"t": "no-such-token.0"})
    assert (unknown.status, unknown.headers["x-gavel-billed"]) == (204, "0")
    unknown = await client.get("/click", params={"t": "no-such-token.0"})
    assert (unknown.status, unknown.headers["x-gavel-counted"]) == (204, "0")
    assert (await stats(client))["impressions"] == 0


async def test_click_beacon_counts(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    ad = await won_ad(client)
    await get(client, ad["impression_url"])
    resp = await get(client, ad["click_url"])
    assert (resp.status, resp.headers["x-gavel-counted"]) == (204, "1")
    s = await stats(client)
    assert s["clicks"] == 1
    assert s["bidders"]["high"]["clicks"] == 1
    assert metric(await metrics_text(client), "gavel_clicks_total", bidder="high") == 1.0


async def test_stats_books_balance(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    n = 7
    for _ in range(n):
        ad = await won_ad(client)
        assert (await get(client, ad["impression_url"])).headers["x-gavel-billed"] == "1"
    s = await stats(client)
    assert (s["auctions"], s["filled"], s["impressions"]) == (n, n, n)
    assert s["fill_rate"] == 1.0
    # one impression costs price / 1000; the exchange keeps fee_bps = 10%
    assert s["spend"] == pytest.approx(n * 2.01 / 1000, abs=1e-12)
    assert s["exchange_fee"] == pytest.approx(n * 0.201 / 1000, abs=1e-12)
    assert s["publisher_revenue"] == pytest.approx(n * 1.809 / 1000, abs=1e-12)
    # the books balance to the micro-unit (1e-6 of a CPM is 1e-9 of money)
    assert abs(s["spend"] - (s["publisher_revenue"] + s["exchange_fee"])) < 1e-12
    assert s["bidders"]["high"]["spend"] == pytest.approx(s["spend"], abs=1e-12)
    assert set(s["latency_s"]) == {"p50", "p95", "p99", "max"}
    assert 0 < s["latency_s"]["p50"] <= s["latency_s"]["max"] < 1
    high = s["bidders"]["high"]
    assert (high["requests"], high["bids"], high["wins"]) == (n, n, n)
    assert s["in_flight"] == 0


async def test_metrics_exposition(trio: list[Dsp], start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=trio)
    ad = await won_ad(client)
    await get(client, ad["impression_url"])
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert metric(text, "gavel_auction_duration_seconds_count") == 1.0
    assert metric(text, "gavel_auction_duration_seconds_bucket", le="0.0001") is not None
    for name in ("high", "mid", "low"):
        assert metric(text, "gavel_bidder_outcomes_total", bidder=name, result="bid") == 1.0
        assert metric(text, "gavel_bidder_outcomes_total", bidder=name, result="timeout") == 0.0
        assert metric(text, "gavel_bidder_latency_seconds_count", bidder=name) == 1.0
    assert metric(text, "gavel_wins_total", bidder="high") == 1.0
    assert metric(text, "gavel_wins_total", bidder="mid") == 0.0
    assert metric(text, "gavel_clearing_price_cpm_count") == 1.0
    assert metric(text, "gavel_clearing_price_cpm_sum") == pytest.approx(2.01)
    assert metric(text, "gavel_auctions_total", result="filled") == 1.0
    assert metric(text, "gavel_impressions_total", bidder="high") == 1.0
    assert metric(text, "gavel_spend_total", bidder="high") == pytest.approx(2.01 / 1000)
    for kind in ("win", "loss", "billing"):
        assert metric(text, "gavel_notices_total", kind=kind, result="sent") is not None
    assert "req-" not in text and "/imp?t=" not in text  # no per-request ids as labels


async def test_healthz(start_ssp: StartSsp) -> None:
    client = await start_ssp()
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


# -- overload ------------------------------------------------------------------------------------


async def test_auctions_past_max_inflight_are_shed_at_once(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    slow = await start_dsp("slow", price=2.0, faults=Faults(latency_ms=500))
    client = await start_ssp(
        dsps=[slow],
        settings=ExchangeSettings(seed=1, tmax_ms=1000),
        ssp=SspSettings(max_inflight=1),
    )

    async def post(rid: str) -> tuple[int, str | None, float]:
        t0 = time.perf_counter()
        resp = await client.post(AUCTION, data=orjson.dumps(bid_request(rid)))
        await resp.read()
        return resp.status, resp.headers.get("x-gavel-nbr"), time.perf_counter() - t0

    first = asyncio.get_running_loop().create_task(post("first"))

    async def busy() -> bool:
        return (await stats(client))["in_flight"] == 1

    await eventually(busy, what="the first auction to be in flight")
    shed = await asyncio.gather(post("second"), post("third"), post("fourth"))
    assert not first.done(), "the shed requests were answered at once, not after the first"
    for status, nbr, _ in shed:
        assert (status, nbr) == (204, "1")  # OpenRTB no-bid reason 1: technical error
    ad = await client.post("/ad", json={"site": "news", "slot": "side"})
    assert (ad.status, ad.headers.get("x-gavel-nbr")) == (204, "1")
    status, nbr, _ = await first
    assert (status, nbr) == (200, None)
    s = await stats(client)
    assert s["overload"] == 4
    assert s["auctions"] == 1
    assert s["in_flight"] == 0
    assert s["bidders"]["slow"]["requests"] == 1
    text = await metrics_text(client)
    assert metric(text, "gavel_auctions_total", result="overload") == 4.0
    # capacity is back once the auction in flight is done
    status, _, _ = await post("fifth")
    assert status == 200


async def test_ad_answer_carries_what_attribution_needs_and_ts_reaches_bidders(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    recording = Recording(price=2.0, seat="rec", cat=("IAB17",))
    recording.reset(0)
    client = await start_ssp(dsps=[await start_dsp("rec", bidder=recording)])
    resp = await client.post("/ad", json={"site": "news", "slot": "top", "ts": 1_795_000_000.5})
    assert resp.status == 200
    ad = await resp.json()
    assert ad["imp"] == "1"
    assert ad["bid_id"] == recording.seen_[-1].id + "-1"
    assert ad["cat"] == ["IAB17"]
    assert recording.seen_[-1].ts == 1_795_000_000.5
    bad = await client.post("/ad", json={"site": "news", "slot": "top", "ts": "noon"})
    assert bad.status == 400
    assert (await bad.json())["field"] == "ts"
