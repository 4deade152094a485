from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from dsp.bidders.constant import ConstantBidder
from dsp.notices import NoticeUrls, event_from_query
from exchange import loss, macros
from exchange.errors import RequestError
from exchange.feedback import BILLING, CLICK, LOSS, WIN, AuctionEvent, listens
from exchange.openrtb import parse_bid_request

VALUES = {
    "AUCTION_ID": "req 1",
    "AUCTION_SEAT_ID": "seat-a",
    "AUCTION_AD_ID": "ad-9",
    "AUCTION_PRICE": "1.23",
    "AUCTION_CURRENCY": "USD",
    "AUCTION_LOSS": str(loss.LOST_TO_HIGHER_BID),
    "AUCTION_MIN_TO_WIN": "2.5",
}


def response(**bid: Any) -> dict[str, Any]:
    return {"id": "r&1", "seatbid": [{"seat": "s", "bid": [{"id": "b/1", "impid": "i 1", **bid}]}]}


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(macros.substitute(url, VALUES)).query, keep_blank_values=True))


def test_fill_adds_urls_without_touching_the_original() -> None:
    original = response(adm="<div/>", price=1.0)
    filled, count = NoticeUrls("http://dsp.test:8081/").fill(original, "r&1")
    assert count == 1
    assert "nurl" not in original["seatbid"][0]["bid"][0]
    bid = filled["seatbid"][0]["bid"][0]
    assert bid["nurl"].startswith("http://dsp.test:8081/win?auction=r%261&imp=i%201&bid=b%2F1&")
    assert bid["lurl"].startswith("http://dsp.test:8081/loss?")
    assert bid["burl"].startswith("http://dsp.test:8081/bill?")
    assert "${AUCTION_PRICE}" in bid["nurl"] and "${AUCTION_LOSS}" in bid["lurl"]


def test_urls_round_trip_into_events() -> None:
    filled, _ = NoticeUrls("http://d").fill(response(adm="x"), "r&1")
    bid = filled["seatbid"][0]["bid"][0]
    win = event_from_query(WIN, query(bid["nurl"]))
    assert (win.auction_id, win.imp_id, win.bid_id) == ("r&1", "i 1", "b/1")
    assert (win.price, win.seat, win.ad_id, win.currency) == (1.23, "seat-a", "ad-9", "USD")
    lost = event_from_query(LOSS, query(bid["lurl"]))
    assert (lost.loss, lost.min_to_win, lost.price) == (102, 2.5, None)
    billed = event_from_query(BILLING, query(bid["burl"]))
    assert billed.kind == BILLING and billed.price == 1.23


def test_bidder_urls_are_kept_and_nurl_needs_markup() -> None:
    mine = response(adm="x", nurl="http://mine/win", lurl="http://mine/loss", burl="http://mine/b")
    filled, _ = NoticeUrls("http://d").fill(mine, "r")
    assert filled == mine
    no_adm, _ = NoticeUrls("http://d").fill(response(price=1.0), "r")
    bid = no_adm["seatbid"][0]["bid"][0]
    assert "nurl" not in bid and bid["lurl"] and bid["burl"]


@pytest.mark.parametrize(
    "resp, count",
    [
        ({}, 0),
        ({"id": "r", "seatbid": []}, 0),
        ({"id": "r", "seatbid": [{"bid": []}]}, 0),
        ({"id": "r", "nbr": 1}, 0),
        ({"id": "r", "seatbid": "oops"}, 1),
        ({"id": "r", "seatbid": [{"bid": "oops"}]}, 1),
        ({"id": "r", "seatbid": [{"bid": [1, {"id": 2, "impid": "1"}]}]}, 2),
    ],
)
def test_counts_and_odd_shapes_pass_through(resp: dict[str, Any], count: int) -> None:
    filled, n = NoticeUrls("http://d").fill(resp, "r")
    assert n == count
    if count and resp["seatbid"] != "oops":
        assert filled == resp


@pytest.mark.parametrize(
    "kind, qs, field",
    [
        (WIN, {"imp": "1", "bid": "b", "price": "1"}, "auction"),
        (WIN, {"auction": "a", "bid": "b", "price": "1"}, "imp"),
        (WIN, {"auction": "a", "imp": "1", "price": "1"}, "bid"),
        (WIN, {"auction": "a", "imp": "1", "bid": "b"}, "price"),
        (WIN, {"auction": "a", "imp": "1", "bid": "b", "price": "${AUCTION_PRICE}"}, "price"),
        (BILLING, {"auction": "a", "imp": "1", "bid": "b", "price": "inf"}, "price"),
        (LOSS, {"auction": "a", "imp": "1", "bid": "b"}, "loss"),
        (LOSS, {"auction": "a", "imp": "1", "bid": "b", "loss": "1.5"}, "loss"),
        (
            LOSS,
            {"auction": "a", "imp": "1", "bid": "b", "loss": "2", "min_to_win": "x"},
            "min_to_win",
        ),
    ],
)
def test_bad_queries_name_the_parameter(kind: str, qs: dict[str, str], field: str) -> None:
    with pytest.raises(RequestError) as info:
        event_from_query(kind, qs)
    assert info.value.field == field


def test_click_needs_no_price_and_blank_optional_values_are_none() -> None:
    event = event_from_query(
        CLICK, {"auction": "a", "imp": "1", "bid": "b", "seat": "", "price": ""}
    )
    assert event.kind == CLICK and event.price is None and event.seat is None


class _LossOnly(ConstantBidder):
    def on_loss(self, event: AuctionEvent) -> None:
        pass


def test_only_the_notices_a_bidder_listens_to_are_asked_for() -> None:
    assert listens(ConstantBidder()) == frozenset()
    assert listens(_LossOnly()) == {"loss"}
    request = parse_bid_request({"id": "r", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]})
    for bidder, expected in ((ConstantBidder(), set()), (_LossOnly(), {"lurl"})):
        bidder.reset(1)
        response = bidder.bid(request)
        filled, _ = NoticeUrls("http://dsp.example", listens(bidder)).fill(response, "r")
        bid = filled["seatbid"][0]["bid"][0]
        assert {k for k in ("nurl", "lurl", "burl") if k in bid} == expected
