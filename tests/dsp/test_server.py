"""The DSP server on a real loopback socket (pytest-aiohttp's ``aiohttp_client``)."""

from __future__ import annotations

import asyncio
import copy
import io
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dsp.bidders.constant import ConstantBidder
from dsp.faults import Faults
from dsp.server import BID_PATH, METRICS, SERVICE, make_app
from exchange import loss, macros
from exchange.bids import parse_bid_response
from exchange.errors import InvalidResponse
from exchange.feedback import AuctionEvent
from exchange.openrtb import BidRequest, parse_bid_request
from tests.conftest import Recording

from .conftest import make_raw

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


class AsyncBidder:
    """Not a Bidder subclass: any object with bid() is served, async def included."""

    def __init__(self) -> None:
        self.inner = ConstantBidder(price=1.0)
        self.inner.reset(0)
        self.wins: list[AuctionEvent] = []

    async def bid(self, request: BidRequest) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return self.inner.bid(request)

    async def on_win(self, event: AuctionEvent) -> None:
        await asyncio.sleep(0)
        self.wins.append(event)


class Broken:
    def bid(self, request: BidRequest) -> dict[str, Any]:
        raise RuntimeError("secret internal detail")


def recording(**params: Any) -> Recording:
    b = Recording(**params)
    b.reset(0)
    return b


async def post(client: Client, body: bytes | dict[str, Any]) -> aiohttp.ClientResponse:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(BID_PATH, data=data, headers={"Content-Type": "application/json"})


async def notice(client: Client, url: str, values: dict[str, str]) -> aiohttp.ClientResponse:
    """Substitute the macros as the exchange would and call the notice on this server."""
    parts = urlsplit(macros.substitute(url, values))
    return await client.get(f"{parts.path}?{parts.query}")


async def test_bid_is_valid_openrtb_with_notice_urls(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording(price=3.0), name="c1"))
    raw = make_raw()
    resp = await post(client, raw)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["x-openrtb-version"] == "2.6"
    body = await resp.read()
    request = parse_bid_request(raw, strict=False)
    bids, dropped = parse_bid_response(body, request, "c1")
    assert dropped == [] and [b.impid for b in bids] == ["1", "2"]
    origin = f"http://{client.host}:{client.port}"
    for b in bids:
        assert b.nurl and b.nurl.startswith(f"{origin}/win?auction=req-1&imp={b.impid}&bid={b.id}")
        assert b.lurl and b.lurl.startswith(f"{origin}/loss?") and "${AUCTION_LOSS}" in b.lurl
        assert b.burl and b.burl.startswith(f"{origin}/bill?") and "${AUCTION_PRICE}" in b.burl


async def test_server_gives_the_in_process_answer(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording(price=3.0)))
    raw = make_raw()
    served = orjson.loads(await (await post(client, raw)).read())
    direct = recording(price=3.0).bid(parse_bid_request(raw, strict=False))
    assert direct is not None
    for sb in served["seatbid"]:
        for b in sb["bid"]:
            for key in ("nurl", "lurl", "burl"):
                del b[key]
    assert served == direct


async def test_public_url_is_the_notice_base(aiohttp_client: MakeClient) -> None:
    app = make_app(bidder=recording(), public_url="https://dsp.example:9000/")
    client = await aiohttp_client(app)
    body = orjson.loads(await (await post(client, make_raw())).read())
    assert body["seatbid"][0]["bid"][0]["nurl"].startswith("https://dsp.example:9000/win?")


async def test_request_reaches_bidder_untouched(aiohttp_client: MakeClient) -> None:
    bidder = recording()
    client = await aiohttp_client(make_app(bidder=bidder))
    raw = make_raw()
    before = copy.deepcopy(raw)
    assert (await post(client, raw)).status == 200
    assert bidder.seen_[0].raw == before  # unknown fields and ext passed through


async def test_nothing_reaches_the_floor_is_204(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording(price=0.1)))
    resp = await post(client, make_raw())
    assert resp.status == 204
    assert await resp.read() == b""


async def test_notices_reach_the_hooks(aiohttp_client: MakeClient) -> None:
    bidder = recording(price=3.0)
    client = await aiohttp_client(make_app(bidder=bidder))
    bid = orjson.loads(await (await post(client, make_raw())).read())["seatbid"][0]["bid"][0]
    values = {
        "AUCTION_ID": "req-1",
        "AUCTION_SEAT_ID": "constant",
        "AUCTION_PRICE": "2.51",
        "AUCTION_CURRENCY": "USD",
        "AUCTION_LOSS": str(loss.LOST_TO_HIGHER_BID),
        "AUCTION_MIN_TO_WIN": "3.5",
    }
    for url in (bid["nurl"], bid["burl"], bid["lurl"]):
        assert (await notice(client, url, values)).status == 204
    click = await client.get("/click", params={"auction": "req-1", "imp": "1", "bid": bid["id"]})
    assert click.status == 204
    win, billing, lost, clicked = bidder.events_
    assert (win.kind, win.price, win.imp_id, win.bid_id) == ("win", 2.51, "1", bid["id"])
    assert (win.auction_id, win.seat, win.currency) == ("req-1", "constant", "USD")
    assert (billing.kind, billing.price) == ("billing", 2.51)
    assert (lost.kind, lost.loss, lost.min_to_win) == ("loss", 102, 3.5)
    assert clicked.kind == "click" and clicked.price is None
    metrics = (await (await client.get("/metrics")).read()).decode()
    assert 'gavel_dsp_notices_total{kind="win"} 1.0' in metrics
    assert 'gavel_dsp_notices_total{kind="click"} 1.0' in metrics


async def test_bad_notice_is_400_naming_the_parameter(aiohttp_client: MakeClient) -> None:
    bidder = recording()
    client = await aiohttp_client(make_app(bidder=bidder))
    resp = await client.get("/win", params={"auction": "a", "imp": "1", "bid": "b", "price": "x"})
    assert resp.status == 400
    assert (await resp.json())["field"] == "price"
    resp = await client.get("/loss", params={"auction": "a", "imp": "1", "bid": "b"})
    assert (await resp.json())["field"] == "loss"
    assert bidder.events_ == []


async def test_async_bidder_and_hooks(aiohttp_client: MakeClient) -> None:
    bidder = AsyncBidder()
    client = await aiohttp_client(make_app(bidder=bidder))
    resp = await post(client, make_raw())
    assert resp.status == 200
    qs = {"auction": "req-1", "imp": "1", "bid": "req-1-1", "price": "0.7"}
    assert (await client.get("/win", params=qs)).status == 204
    assert [e.price for e in bidder.wins] == [0.7]
    # a hook the bidder does not have is fine
    assert (await client.get("/bill", params=qs)).status == 204


async def test_malformed_json_is_400_naming_body(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording()))
    for body in (b"{not json", b"[1, 2]", b"", b'"id"'):
        resp = await post(client, body)
        assert resp.status == 400
        assert (await resp.json()) | {"error": ""} == {"error": "", "field": "body", "nbr": 2}


@pytest.mark.parametrize(
    "raw, rid",
    [
        (make_raw(id=None), ""),
        (make_raw(id=7), ""),
        (make_raw(imp=[]), "req-1"),
        (make_raw(imp=[{"banner": {}}]), "req-1"),
        (make_raw(imp=[{"id": "1", "banner": {}, "bidfloor": "cheap"}]), "req-1"),
        (make_raw(imp=[{"id": "1", "banner": {}, "pmp": {"deals": 5}}]), "req-1"),
        (make_raw(imp=[{"id": "1", "banner": {}, "bidfloor": 1e308}]), "req-1"),
    ],
)
async def test_invalid_request_is_a_no_bid_with_reason(
    aiohttp_client: MakeClient, raw: dict[str, Any], rid: str
) -> None:
    client = await aiohttp_client(make_app(bidder=recording()))
    resp = await post(client, raw)
    assert resp.status == 200
    assert await resp.json() == {"id": rid, "nbr": 2}


async def test_huge_body_is_413(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording(), max_request_bytes=4096))
    raw = make_raw(ext={"padding": "x" * 10_000})
    resp = await post(client, raw)
    assert resp.status == 413
    assert (await resp.json())["field"] == "body"
    assert (await post(client, make_raw())).status == 200


async def test_default_limit_is_one_mebibyte(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording()))
    body = io.BytesIO(orjson.dumps(make_raw(ext={"padding": "x" * (2 << 20)})))
    resp = await client.post(BID_PATH, data=body)
    assert resp.status == 413


async def test_bidder_exception_is_a_500_without_traceback(
    aiohttp_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(make_app(bidder=Broken(), name="broken"))
    with caplog.at_level(logging.ERROR, logger="dsp.server"):
        for _ in range(3):
            resp = await post(client, make_raw())
            assert resp.status == 500
            body = await resp.read()
            assert orjson.loads(body) == {"error": "bidder raised RuntimeError", "nbr": 1}
            assert b"secret" not in body and b"Traceback" not in body
    assert len([r for r in caplog.records if r.exc_info]) == 1  # logged once, not per request
    metrics = client.app[METRICS].requests.labels("exception").value
    assert metrics == 3


@pytest.mark.parametrize(
    "result", [[1, 2], "text", {"id": "req-1", "seatbid": [{"bid": [{"p": {1}}]}]}]
)
async def test_unusable_bidder_result_is_a_500(aiohttp_client: MakeClient, result: Any) -> None:
    class Odd:
        def bid(self, request: BidRequest) -> Any:
            return result

    client = await aiohttp_client(make_app(bidder=Odd()))
    assert (await post(client, make_raw())).status == 500


async def test_nbr_response_without_bids_is_passed_on(aiohttp_client: MakeClient) -> None:
    class Declines:
        def bid(self, request: BidRequest) -> dict[str, Any]:
            return {"id": request.id, "nbr": 8}

    client = await aiohttp_client(make_app(bidder=Declines()))
    resp = await post(client, make_raw())
    assert resp.status == 200 and await resp.json() == {"id": "req-1", "nbr": 8}


async def test_error_fault_is_500(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording(), faults=Faults(error_rate=1.0)))
    resp = await post(client, make_raw())
    assert resp.status == 500
    assert "error" in await resp.json()


async def test_garbage_fault_is_rejected_by_the_exchange(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording(), faults=Faults(garbage_rate=1.0)))
    raw = make_raw()
    resp = await post(client, raw)
    assert resp.status == 200
    with pytest.raises(InvalidResponse):
        parse_bid_response(await resp.read(), parse_bid_request(raw, strict=False), "g")


async def test_hang_fault_answers_204_after_hang_s(aiohttp_client: MakeClient) -> None:
    app = make_app(bidder=recording(), faults=Faults(hang_rate=1.0, hang_s=0.2))
    client = await aiohttp_client(app)
    resp = await post(client, make_raw())
    assert resp.status == 204
    assert app[METRICS].requests.labels("hang").value == 1
    assert app[SERVICE].bidder.seen_ == []  # the bidder never saw it


async def test_latency_fault_still_answers(aiohttp_client: MakeClient) -> None:
    faults = Faults(latency_ms=5, latency_jitter_ms=2, latency_dist="uniform")
    client = await aiohttp_client(make_app(bidder=recording(), faults=faults, seed=1))
    assert (await post(client, make_raw())).status == 200


async def test_shutdown_releases_hanging_requests(aiohttp_client: MakeClient) -> None:
    app = make_app(bidder=recording(), faults=Faults(hang_rate=1.0, hang_s=30.0))
    client = await aiohttp_client(app)
    hang = app[METRICS].requests.labels("hang")
    async with aiohttp.ClientSession() as session:
        task = asyncio.ensure_future(
            session.post(client.make_url(BID_PATH), data=orjson.dumps(make_raw()))
        )
        async with asyncio.timeout(10):
            while hang.value == 0:  # wait for the request to be held
                await asyncio.sleep(0.01)
            await client.server.close()
            resp = await task
        assert resp.status == 204


async def test_healthz_and_metrics(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(make_app(bidder=recording(price=3.0), name="shoes"))
    health = await client.get("/healthz")
    assert health.status == 200 and await health.json() == {"status": "ok", "bidder": "shoes"}
    await post(client, make_raw())
    await post(client, make_raw(imp=[{"id": "1", "banner": {}, "bidfloor": 9}]))
    await post(client, b"nope")
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    text = (await resp.read()).decode()
    for result in ("bid", "nobid", "invalid"):
        assert f'gavel_dsp_requests_total{{result="{result}"}} 1.0' in text
    assert "gavel_dsp_bid_duration_seconds_count 3.0" in text


def test_make_app_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="bid"):
        make_app(bidder=object())
    with pytest.raises(ValueError, match="public_url"):
        make_app(bidder=recording(), public_url="dsp.example")
    with pytest.raises(ValueError, match="max_request_bytes"):
        make_app(bidder=recording(), max_request_bytes=0)
