"""``GET /pixel`` and ``GET /stats`` on the DSP server, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dsp.bidders.constant import ConstantBidder
from dsp.pixel import PixelEvent, parse_pixel
from dsp.server import BID_PATH, make_app
from dsp.state import Reservation
from dsp.strategies.constant import ConstantPrice
from exchange.errors import RequestError
from exchange.feedback import AuctionEvent
from tests.conftest import metric

from .helpers import WED_1730_UTC, bidder, campaign, raw_request

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


class CountingConversions(ConstantPrice):
    """A strategy that keeps the conversions it hears about."""

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.conversions_: list[tuple[str, str]] = []

    def on_conversion(self, event: AuctionEvent, bid: Reservation) -> None:
        self.conversions_.append((event.bid_id, bid.campaign))


async def serve(aiohttp_client: MakeClient, b: Any) -> Client:
    return await aiohttp_client(make_app(bidder=b, name="t"))


async def pixel(client: Client, **query: object) -> tuple[int, Any]:
    resp = await client.get("/pixel?" + urlencode({k: str(v) for k, v in query.items()}))
    return resp.status, (await resp.json() if resp.status != 204 else None)


async def bid_and_bill(client: Client, rid: str, price: float = 1.0, **kw: Any) -> str:
    resp = await client.post(BID_PATH, data=orjson.dumps(raw_request(rid, **kw)))
    assert resp.status == 200, await resp.text()
    bid = (await resp.json())["seatbid"][0]["bid"][0]
    q = urlencode({"auction": rid, "imp": "1", "bid": bid["id"], "price": price})
    for path in ("/win", "/bill"):
        assert (await client.get(f"{path}?{q}")).status == 204
    return str(bid["id"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"user": "u", "advertiser": "a.example"}, "event"),
        ({"event": "click", "user": "u", "advertiser": "a.example"}, "event"),
        ({"event": "visit", "advertiser": "a.example"}, "user"),
        ({"event": "visit", "user": "u"}, "advertiser"),
        ({"event": "visit", "user": "u", "advertiser": "a", "ts": "noon"}, "ts"),
        ({"event": "visit", "user": "u", "advertiser": "a", "ts": "-5"}, "ts"),
        ({"event": "conversion", "user": "u", "advertiser": "a", "value": "nan"}, "value"),
        (
            {"event": "conversion", "user": "u", "advertiser": "a", "auction": "r", "bid": "b"},
            "imp",
        ),
        ({"event": "conversion", "user": "u", "advertiser": "a", "imp": "1"}, "auction"),
        ({"event": "visit", "user": "u" * 600, "advertiser": "a"}, "user"),
    ],
)
async def test_bad_pixels_get_400_naming_the_parameter(
    aiohttp_client: MakeClient, query: dict[str, str], field: str
) -> None:
    client = await serve(aiohttp_client, bidder())
    status, body = await pixel(client, **query)
    assert status == 400
    assert body["field"] == field and field in body["error"]
    with pytest.raises(RequestError):
        parse_pixel(query)


async def test_visits_and_purchases_drive_retargeting_over_http(aiohttp_client: MakeClient) -> None:
    b = bidder(campaign(adomain="shoes.example", targeting={"retargeting": {"days": 14}}))
    client = await serve(aiohttp_client, b)

    async def bids_for(rid: str) -> int:
        resp = await client.post(BID_PATH, data=orjson.dumps(raw_request(rid)))
        return resp.status

    assert await bids_for("a") == 204
    assert (
        await pixel(
            client, event="visit", user="u1", advertiser="Shoes.Example", ts=WED_1730_UTC - 60
        )
    )[0] == 204
    assert await bids_for("b") == 200
    assert (
        await pixel(
            client,
            event="purchase",
            user="u1",
            advertiser="shoes.example",
            ts=WED_1730_UTC - 1,
            value=89.9,
        )
    )[0] == 204
    assert await bids_for("c") == 204
    # an advertiser nobody here serves: accepted and ignored
    assert (await pixel(client, event="visit", user="u1", advertiser="elsewhere.example"))[0] == 204
    stats = await (await client.get("/stats")).json()
    assert stats["pixels"] == {"visit": 1, "purchase": 1, "ignored": 1}
    exposition = await (await client.get("/metrics")).text()
    assert metric(exposition, "gavel_dsp_notices_total", kind="pixel") == 3


async def test_conversions_with_bid_ids_and_by_last_touch(aiohttp_client: MakeClient) -> None:
    b = bidder(
        campaign("a", adomain="shop.example", strategy=f"{__name__}:CountingConversions"),
        campaign("b", adomain="shop.example", strategy="constant", params={"cpm": 1.0}),
    )
    client = await serve(aiohttp_client, b)
    bid_id = await bid_and_bill(client, "r1", user="u1")
    ids = {"auction": "r1", "imp": "1", "bid": bid_id}
    status, _ = await pixel(
        client, event="conversion", user="u1", advertiser="shop.example", value=25.5, **ids
    )
    assert status == 204
    strategy = b.by_id_["a"].strategy
    assert strategy.conversions_ == [(bid_id, "a")]  # delivered to on_conversion
    # no ids: the user's latest impression of the advertiser's campaigns within 7 days
    await bid_and_bill(client, "r2", user="u2")
    status, _ = await pixel(
        client,
        event="conversion",
        user="u2",
        advertiser="shop.example",
        ts=WED_1730_UTC + 3600,
        value=10,
    )
    assert status == 204
    assert len(strategy.conversions_) == 2
    # too late, or never shown: not attributed
    await pixel(
        client,
        event="conversion",
        user="u2",
        advertiser="shop.example",
        ts=WED_1730_UTC + 8 * 86400,
    )
    await pixel(client, event="conversion", user="u9", advertiser="shop.example")
    await pixel(
        client,
        event="conversion",
        user="u1",
        advertiser="shop.example",
        auction="x",
        imp="1",
        bid="x-1",
    )
    stats = await (await client.get("/stats")).json()
    row = stats["campaigns"]["a"]
    assert (row["conversions"], row["conversion_value"]) == (2, 35.5)
    assert row["cpa"] == pytest.approx(row["spend"] / 2)
    assert stats["pixels"]["conversion"] == 5 and stats["pixels"]["unattributed"] == 3
    assert stats["totals"]["conversions"] == 2


async def test_stats_per_campaign_and_totals(aiohttp_client: MakeClient) -> None:
    b = bidder(
        campaign("a", budget_total=10.0, budget_daily=1.0, pacing="throttle"),
        campaign("b", params={"cpm": 1.0}, targeting={"site_cat": {"include": ["IAB17"]}}),
    )
    client = await serve(aiohttp_client, b)
    await bid_and_bill(client, "r1", price=1.5)
    await bid_and_bill(client, "r2", price=0.5, site=("scores.example", ["IAB17"]))
    assert (
        await client.get("/click?" + urlencode({"auction": "r1", "imp": "1", "bid": "r1-1"}))
    ).status == 204
    resp = await client.post(BID_PATH, data=orjson.dumps(raw_request("r3")))
    assert resp.status == 200  # in flight
    stats = await (await client.get("/stats")).json()
    assert stats["dsp"] == "t" and stats["seat"] == "t" and stats["currency"] == "USD"
    assert stats["now"] == WED_1730_UTC
    a = stats["campaigns"]["a"]
    assert {k: a[k] for k in ("bids", "wins", "impressions", "clicks", "conversions")} == {
        "bids": 3, "wins": 2, "impressions": 2, "clicks": 1, "conversions": 0,
    }  # fmt: skip
    assert a["spend"] == pytest.approx(0.002) and a["spend_today"] == pytest.approx(0.002)
    assert a["in_flight"] == pytest.approx(0.002)
    assert a["remaining_total"] == pytest.approx(10 - 0.004)
    assert a["remaining_today"] == pytest.approx(1 - 0.004)
    assert (a["budget_total"], a["budget_daily"]) == (10.0, 1.0)
    assert a["ctr"] == 0.5 and a["cpm"] == pytest.approx(1.0) and a["ecpc"] == pytest.approx(0.002)
    assert a["pacing"]["mode"] == "throttle" and a["strategy"]["name"] == "constant"
    # the second bid went to "a" (2.00 beats 1.00 on sports too)
    assert (
        stats["campaigns"]["b"]["bids"] == 0 and stats["campaigns"]["b"]["remaining_total"] is None
    )
    assert stats["totals"]["bids"] == 3 and stats["totals"]["spend"] == pytest.approx(0.002)


async def test_bidders_without_pixel_or_stats_get_404(aiohttp_client: MakeClient) -> None:
    plain = ConstantBidder()
    plain.reset(0)
    client = await serve(aiohttp_client, plain)
    resp = await client.get("/stats")
    assert resp.status == 404 and "stats()" in (await resp.json())["error"]
    status, body = await pixel(client, event="visit", user="u", advertiser="a.example")
    assert status == 404 and "pixel(event)" in body["error"]


class HookOnly:
    """No pixel(): a conversion naming its bid still reaches on_conversion."""

    def __init__(self) -> None:
        self.events: list[AuctionEvent] = []

    def bid(self, request: object) -> None:
        return None

    def on_conversion(self, event: AuctionEvent) -> None:
        self.events.append(event)


class AsyncPixels:
    def __init__(self) -> None:
        self.seen: list[PixelEvent] = []

    def bid(self, request: object) -> None:
        return None

    async def pixel(self, event: PixelEvent) -> None:
        self.seen.append(event)

    async def stats(self) -> dict[str, Any]:
        return {"pixels": len(self.seen), "odd": {1, 2}}


async def test_any_bidder_can_take_pixels_and_report(aiohttp_client: MakeClient) -> None:
    hook = HookOnly()
    client = await serve(aiohttp_client, hook)
    q = {"event": "conversion", "user": "u", "advertiser": "a.example"}
    assert (await pixel(client, **q, auction="r", imp="1", bid="r-1"))[0] == 204
    assert [(e.kind, e.auction_id, e.bid_id) for e in hook.events] == [("conversion", "r", "r-1")]
    assert (await pixel(client, **q))[0] == 404  # nothing to deliver it to
    other = AsyncPixels()
    client = await serve(aiohttp_client, other)
    assert (await pixel(client, event="visit", user="u", advertiser="A.example", ts=5))[0] == 204
    assert other.seen == [PixelEvent("visit", "u", "a.example", ts=5.0)]
    stats = await (await client.get("/stats")).json()
    assert stats["pixels"] == 1 and isinstance(stats["odd"], str)  # odd values as text, no 500
