"""Win, loss, billing and click notices from the SSP to real DSP servers, with macros substituted.

The DSP servers are :func:`dsp.server.make_app`: their bids carry ``nurl``/``lurl``/``burl``
pointing back at themselves, and ``/win``, ``/loss``, ``/bill``, ``/click`` feed the bidder's hooks.
``Dsp.hits`` records the raw request lines each server received, so the exact strings the SSP put in
for ``${AUCTION_PRICE}``, ``${AUCTION_LOSS}``... are checked too. Notices are sent off the request
path, so every check polls (bounded) until they arrive.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from aiohttp import web

from exchange.settings import ExchangeSettings
from ssp.config import SspSettings
from tests.conftest import (
    Client,
    Dsp,
    Fixed,
    StartDsp,
    StartSsp,
    banner_imp,
    bid_request,
    eventually,
    get,
    metric,
    metrics_text,
    recording,
)

AUCTION = "/openrtb2/auction"


@pytest.fixture(params=["aiohttp", "lean"])
def http_transport(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both DSP clients (exchange.transport)."""
    return str(request.param)


def notices(dsp: Dsp, path: str) -> list[dict[str, str]]:
    """The query strings of the ``path`` notices ``dsp`` received, one value per key."""
    out = []
    for hit in dsp.hits:
        method, _, target = hit.partition(" ")
        parts = urlsplit(target)
        if method == "GET" and parts.path == path:
            out.append({k: v[0] for k, v in parse_qs(parts.query).items()})
    return out


def catch_all() -> web.Application:
    """An app answering 204 to anything: a server that is not a DSP the SSP knows."""

    async def nothing(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", nothing)
    return app


async def run_auction(client: Client, req: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(AUCTION, data=orjson.dumps(req))
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def notice_count(client: Client, kind: str, result: str) -> float:
    return metric(await metrics_text(client), "gavel_notices_total", kind=kind, result=result) or 0


async def test_win_and_loss_notices_carry_price_and_loss_code(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    high = await start_dsp("high", price=3.0)
    mid = await start_dsp("mid", price=2.0)
    low = await start_dsp("low", price=1.0)
    client = await start_ssp(dsps=[high, mid, low])
    await run_auction(client, bid_request("auction-7"))

    await eventually(
        lambda: notices(high, "/win") and notices(mid, "/loss") and notices(low, "/loss"),
        what="the win and loss notices",
    )
    (win,) = notices(high, "/win")
    assert win == {
        "auction": "auction-7",
        "imp": "1",
        "bid": "auction-7-1",
        "seat": "high",
        "ad": "constant-banner-1",
        "price": "2.01",
        "cur": "USD",
    }
    for loser in (mid, low):
        (lost,) = notices(loser, "/loss")
        assert lost["auction"] == "auction-7"
        assert lost["seat"] == loser.name
        assert lost["loss"] == "102"  # lost to a higher bid
        assert lost["min_to_win"] == "3.01"
        assert lost["cur"] == "USD"
    assert (
        notices(high, "/loss") == [] and notices(mid, "/win") == [] and notices(low, "/win") == []
    )

    # the same, as the bidders' hooks saw it
    (won,) = high.bidder.events_
    assert (won.kind, won.auction_id, won.imp_id, won.price, won.seat) == (
        "win",
        "auction-7",
        "1",
        2.01,
        "high",
    )
    for loser in (mid, low):
        (event,) = loser.bidder.events_
        assert (event.kind, event.loss, event.min_to_win) == ("loss", 102, 3.01)

    await eventually(
        lambda: notice_count(client, "loss", "sent"), what="the loss notices to be counted"
    )
    assert await notice_count(client, "win", "sent") == 1
    assert await notice_count(client, "loss", "sent") == 2
    assert await notice_count(client, "win", "blocked") == 0


async def test_loss_codes_for_floor_and_first_price(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    # Fixed ignores floors, so its bid under the floor reaches the auction and loses with 100
    under = await start_dsp("under", bidder=Fixed(seat="under", prices={"1": 0.4}))
    top = await start_dsp("top", bidder=Fixed(seat="top", prices={"1": 2.5}))
    second = await start_dsp("second", bidder=Fixed(seat="second", prices={"1": 1.2}))
    client = await start_ssp(dsps=[under, top, second])
    await run_auction(client, bid_request("a-1", imps=[banner_imp("1", floor=0.5)], at=1))
    await eventually(
        lambda: notices(under, "/loss") and notices(second, "/loss") and notices(top, "/win"),
        what="the notices",
    )
    assert notices(under, "/loss")[0]["loss"] == "100"  # below floor
    assert notices(second, "/loss")[0]["loss"] == "102"
    assert notices(top, "/win")[0]["price"] == "2.5"  # first price: the bid itself


async def test_bidder_urls_get_every_macro(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    macros = (
        "a=${AUCTION_ID}&b=${AUCTION_BID_ID}&i=${AUCTION_IMP_ID}&s=${AUCTION_SEAT_ID}"
        "&ad=${AUCTION_AD_ID}&p=${AUCTION_PRICE}&c=${AUCTION_CURRENCY}&l=${AUCTION_LOSS}"
        "&m=${AUCTION_MIN_TO_WIN}"
    )
    win_bidder = Fixed(seat="w", prices={"1": 4.0}, extra={"adid": "ad-w"})
    lose_bidder = Fixed(seat="l", prices={"1": 1.5}, extra={"adid": "ad-l"})
    winner = await start_dsp("w", bidder=win_bidder)
    loser = await start_dsp("l", bidder=lose_bidder)
    # the bidders' own URLs (on their own hosts, so allowed), including URL-encoded macros
    win_bidder.extra.update(
        nurl=f"{winner.base}/custom-win?{macros}",
        adm="<img src='x?p=${AUCTION_PRICE}&enc=%24%7BAUCTION_PRICE%7D'>",
    )
    lose_bidder.extra.update(lurl=f"{loser.base}/custom-loss?{macros}")
    client = await start_ssp(dsps=[winner, loser])
    answer = await run_auction(client, bid_request("m-1"))
    bid = answer["seatbid"][0]["bid"][0]
    assert bid["adm"] == "<img src='x?p=1.51&enc=1.51'>"  # macros in the markup too

    await eventually(
        lambda: notices(winner, "/custom-win") and notices(loser, "/custom-loss"),
        what="the bidders' own notice URLs to be called",
    )
    assert notices(winner, "/custom-win") == [
        {
            "a": "m-1",
            "b": "w-1",
            "i": "1",
            "s": "w",
            "ad": "ad-w",
            "p": "1.51",
            "c": "USD",
            "l": "0",
            "m": "1.51",
        }
    ]
    (lost,) = notices(loser, "/custom-loss")
    assert (lost["a"], lost["b"], lost["s"], lost["ad"], lost["l"], lost["m"]) == (
        "m-1",
        "l-1",
        "l",
        "ad-l",
        "102",
        "4.01",
    )


async def test_impression_beacon_fires_the_winners_billing_notice(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    high = await start_dsp("high", price=3.0)
    mid = await start_dsp("mid", price=2.0)
    click_url = (
        f"{high.base}/click?auction=${{AUCTION_ID}}&imp=${{AUCTION_IMP_ID}}&bid=${{AUCTION_BID_ID}}"
    )
    client = await start_ssp(dsps=[high.endpoint(click_url=click_url), mid])
    answer = await run_auction(client, bid_request("bill-1"))
    burl = answer["seatbid"][0]["bid"][0]["burl"]
    await eventually(lambda: notices(high, "/win"), what="the win notice")
    assert notices(high, "/bill") == []  # billing waits for the impression

    assert (await get(client, burl)).headers["x-gavel-billed"] == "1"
    await eventually(lambda: notices(high, "/bill"), what="the billing notice")
    (bill,) = notices(high, "/bill")
    assert (bill["auction"], bill["price"], bill["seat"], bill["cur"]) == (
        "bill-1",
        "2.01",
        "high",
        "USD",
    )
    assert [e.price for e in high.bidder.kinds("billing")] == [2.01]
    assert notices(mid, "/bill") == []

    # a repeated beacon bills nothing more; a click reaches the DSP's click URL
    assert (await get(client, burl)).headers["x-gavel-billed"] == "0"
    click = burl.replace("/imp?", "/click?")
    assert (await get(client, click)).headers["x-gavel-counted"] == "1"
    await eventually(lambda: high.bidder.kinds("click"), what="the click notice")
    assert [e.auction_id for e in high.bidder.kinds("click")] == ["bill-1"]
    assert len(notices(high, "/bill")) == 1
    assert await notice_count(client, "billing", "sent") == 1


async def test_notice_to_a_host_that_is_not_a_dsp_is_blocked(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    catcher = await start_dsp("catcher", app=catch_all())  # a server, but not a configured DSP
    rogue_bidder = Fixed(seat="rogue", prices={"1": 3.0})
    rogue = await start_dsp("rogue", bidder=rogue_bidder)
    rogue_bidder.extra.update(
        nurl=f"{catcher.base}/win?p=${{AUCTION_PRICE}}",
        burl=f"{catcher.base}/bill?p=${{AUCTION_PRICE}}",
    )
    mid = await start_dsp("mid", price=2.0)
    client = await start_ssp(dsps=[rogue, mid])
    answer = await run_auction(client, bid_request("blocked-1"))
    assert answer["seatbid"][0]["seat"] == "rogue"
    await get(client, answer["seatbid"][0]["bid"][0]["burl"])

    # the loser's notice, queued with the winner's, goes through...
    await eventually(lambda: notices(mid, "/loss"), what="the loss notice to the other DSP")
    await eventually(
        lambda: notice_count(client, "loss", "sent"), what="the loss notice to be counted"
    )
    # ...while the win and billing notices to the foreign host are counted blocked, never sent
    assert await notice_count(client, "win", "blocked") == 1
    assert await notice_count(client, "billing", "blocked") == 1
    assert await notice_count(client, "win", "sent") == 0
    assert catcher.hits == []


async def test_notice_redirect_to_a_foreign_host_is_not_followed(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    """A DSP's notice endpoint must not be able to send the exchange to another host."""
    catcher = await start_dsp("catcher", app=catch_all())

    async def bid(request: web.Request) -> web.Response:
        req = await request.json()
        origin = str(request.url.origin())
        return web.json_response(
            {
                "id": req["id"],
                "seatbid": [
                    {
                        "seat": "redirector",
                        "bid": [
                            {
                                "id": "b-1",
                                "impid": req["imp"][0]["id"],
                                "price": 3.0,
                                "adm": "<div/>",
                                "nurl": f"{origin}/win?p=${{AUCTION_PRICE}}",
                            }
                        ],
                    }
                ],
            }
        )

    async def win(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{catcher.base}/stolen?{request.query_string}")

    app = web.Application()
    app.router.add_post("/openrtb2/bid", bid)
    app.router.add_get("/win", win)
    redirector = await start_dsp("redirector", app=app)
    client = await start_ssp(dsps=[redirector])
    await run_auction(client, bid_request("redirect-1"))

    async def win_done() -> bool:
        return (await notice_count(client, "win", "sent")) + (
            await notice_count(client, "win", "failed")
        ) >= 1

    await eventually(lambda: notices(redirector, "/win"), what="the win notice")
    await eventually(win_done, what="the win notice to be counted")
    assert catcher.hits == [], "the exchange followed a notice redirect to a host that is no DSP"


async def test_in_process_bidders_get_feedback_directly(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    local_high = recording(3.0, seat="local-high")
    local_low = recording(1.0, seat="local-low")
    mid = await start_dsp("mid", price=2.0)
    client = await start_ssp(
        dsps=[mid],
        inprocess={"local-high": local_high, "local-low": local_low},
        settings=ExchangeSettings(seed=3),
    )
    answer = await run_auction(client, bid_request("inproc-1"))
    assert answer["seatbid"][0]["seat"] == "local-high"
    burl = answer["seatbid"][0]["bid"][0]["burl"]
    await eventually(lambda: local_high.kinds("win"), what="the in-process win")
    (won,) = local_high.kinds("win")
    assert (won.auction_id, won.price, won.loss) == ("inproc-1", 2.01, None)
    await eventually(lambda: local_low.kinds("loss"), what="the in-process loss")
    (lost,) = local_low.kinds("loss")
    assert (lost.loss, lost.min_to_win) == (102, 3.01)
    await eventually(lambda: notices(mid, "/loss"), what="the HTTP DSP's loss notice")
    assert notices(mid, "/loss")[0]["loss"] == "102"

    await get(client, burl)
    await eventually(lambda: local_high.kinds("billing"), what="the in-process billing")
    assert [e.price for e in local_high.kinds("billing")] == [2.01]


async def test_markup_served_by_nurl_is_passed_on_not_called(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    """A bid without ``adm`` gets its markup from its ``nurl``: the renderer calls it, not the SSP."""
    served_bidder = Fixed(seat="served", prices={"1": 3.0})
    served = await start_dsp("served", bidder=served_bidder)
    served_bidder.extra.update(adm=None, nurl=f"{served.base}/markup?p=${{AUCTION_PRICE}}")
    other = await start_dsp("other", price=2.0)
    client = await start_ssp(dsps=[served, other])

    answer = await run_auction(client, bid_request("markup-1"))
    bid = answer["seatbid"][0]["bid"][0]
    assert not bid.get("adm")
    assert bid["nurl"] == f"{served.base}/markup?p=2.01"
    resp = await client.post("/ad", json={"site": "news", "slot": "side"})
    ad = await resp.json()
    assert ad["adm"] is None
    assert ad["markup_url"] == f"{served.base}/markup?p=2.01"

    await eventually(lambda: len(notices(other, "/loss")) == 2, what="the loss notices")
    assert notices(served, "/markup") == []
    assert await notice_count(client, "win", "sent") == 0


async def test_open_bid_losing_to_a_deal_gets_loss_code_103(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    dealer = await start_dsp(
        "dealer", bidder=Fixed(seat="dealer", prices={"1": 1.5}, extra={"dealid": "d-1"})
    )
    open_high = await start_dsp("open", price=3.0)
    client = await start_ssp(dsps=[dealer, open_high])
    imp = {**banner_imp("1"), "pmp": {"deals": [{"id": "d-1", "bidfloor": 1.0}]}}
    await run_auction(client, bid_request("deal-1", imps=[imp]))
    await eventually(lambda: notices(open_high, "/loss"), what="the loss notice")
    assert notices(open_high, "/loss")[0]["loss"] == "103"
    await eventually(lambda: dealer.bidder.events, what="the deal's win notice")
    assert [(e.kind, e.price) for e in dealer.bidder.events] == [("win", 1.01)]


async def test_full_notice_queue_drops_and_counts(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    dsps = [await start_dsp(f"d{i}", price=1.0 + i) for i in range(4)]
    client = await start_ssp(dsps=dsps, ssp=SspSettings(notice_queue=1))
    await run_auction(client, bid_request("drops-1"))  # one win and three losses at once

    async def settled() -> bool:
        sent = await notice_count(client, "win", "sent") + await notice_count(
            client, "loss", "sent"
        )
        return sent == 1

    await eventually(settled, what="the one queued notice to be sent")
    dropped = await notice_count(client, "win", "dropped") + await notice_count(
        client, "loss", "dropped"
    )
    assert dropped == 3
    assert sum(len(d.hits) for d in dsps) == 4 + 1  # four bid requests, one notice
