from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsp.bidder import Bidder
from dsp.bidders.constant import ConstantBidder
from dsp.bidders.random_bid import RandomBidder
from exchange.bids import parse_bid_response
from exchange.openrtb import MICROS, BidRequest, parse_bid_request

from .conftest import make_raw, make_request

BIDDERS = [ConstantBidder, RandomBidder]


def fresh(cls: type[Bidder], seed: int = 1, **params: Any) -> Any:
    b = cls(**params)
    b.reset(seed)
    return b


def all_bids(response: dict[str, Any] | None) -> list[dict[str, Any]]:
    if response is None:
        return []
    return [b for sb in response["seatbid"] for b in sb["bid"]]


@pytest.mark.parametrize("cls", BIDDERS)
def test_params_round_trip(cls: type[Bidder]) -> None:
    b = cls()
    params = b.get_params()
    assert params and all(not k.endswith("_") for k in params)
    assert cls(**params).get_params() == params
    b.reset(3)
    assert b.get_params() == params  # learning never touches parameters


@pytest.mark.parametrize("cls", BIDDERS)
def test_same_seed_same_bids(cls: type[Bidder]) -> None:
    requests = [make_request(id=f"r{i}") for i in range(20)]
    a, b = fresh(cls, seed=42), fresh(cls, seed=42)
    first = [a.bid(r) for r in requests]
    assert first == [b.bid(r) for r in requests]
    a.reset(42)
    assert [a.bid(r) for r in requests] == first


def test_random_prices_vary_and_stay_in_range() -> None:
    requests = [make_request(id=f"r{i}") for i in range(50)]
    b = fresh(RandomBidder, seed=5, low=0.6, high=3.0)
    responses = [b.bid(r) for r in requests]
    prices = [bid["price"] for resp in responses for bid in all_bids(resp)]
    assert prices and all(0.6 <= p <= 3.0 for p in prices)
    assert len(set(prices)) > 10
    other = fresh(RandomBidder, seed=6, low=0.6, high=3.0)
    assert [other.bid(r) for r in requests] != responses


@pytest.mark.parametrize("cls", BIDDERS)
def test_request_is_not_mutated(cls: type[Bidder]) -> None:
    request = make_request()
    raw_before = copy.deepcopy(request.raw)
    typed_before = copy.deepcopy(request)
    response = fresh(cls).bid(request)
    assert request.raw == raw_before
    assert request == typed_before
    # the response shares no mutable structure with the request
    for bid in all_bids(response):
        bid["adomain"].append("x")
    assert request.raw == raw_before


def test_constant_respects_floors(request_1: BidRequest) -> None:
    response = fresh(ConstantBidder, price=1.0).bid(request_1)
    bids = all_bids(response)
    # imp 1 (floor 0.5) gets a bid; imp 2 (floor 2.5) is skipped; imp 3 is video (no banner)
    assert [b["impid"] for b in bids] == ["1"]
    assert response is not None and response["id"] == "req-1" and response["cur"] == "USD"
    assert all_bids(fresh(ConstantBidder, price=3.0).bid(request_1))[1]["impid"] == "2"
    assert fresh(ConstantBidder, price=0.4).bid(request_1) is None


@given(price=st.floats(0.01, 50), floor=st.floats(0, 50))
def test_constant_bids_iff_price_reaches_floor(price: float, floor: float) -> None:
    request = make_request(imp=[{"id": "1", "banner": {"w": 1, "h": 1}, "bidfloor": floor}])
    response = fresh(ConstantBidder, price=price).bid(request)
    reaches = round(price * MICROS) >= request.imp[0].floor_micros
    assert (response is not None) == reaches
    if response is not None:
        bids, dropped = parse_bid_response(response, request, "c")
        assert dropped == [] and bids[0].price_micros >= request.imp[0].floor_micros


@pytest.mark.parametrize("cls", BIDDERS)
def test_response_is_valid_openrtb(cls: type[Bidder]) -> None:
    request = make_request(imp=[{"id": str(i), "banner": {"w": 320, "h": 50}} for i in range(5)])
    response = fresh(cls).bid(request)
    bids, dropped = parse_bid_response(response, request, "x")
    assert dropped == [] and len(bids) == 5
    ids = [b.id for b in bids]
    assert len(set(ids)) == 5 and ids[0] == "req-1-0"
    for b in bids:
        assert b.adm and "width:320px;height:50px" in b.adm and b.crid and b.w == 320
        assert "${AUCTION_PRICE}" not in b.adm


@pytest.mark.parametrize(
    "changes",
    [
        {"cur": ["EUR"]},
        {"bseat": ["constant"]},
        {"wseat": ["someone-else"]},
        {"badv": ["constant-shoes.example"]},
        {"bcat": ["IAB18"]},
    ],
)
def test_constant_honours_request_blocks(changes: dict[str, Any]) -> None:
    assert fresh(ConstantBidder, price=10).bid(make_request(**changes)) is None


def test_skips_private_auctions_and_non_banner_imps() -> None:
    raw = make_raw(
        imp=[
            {"id": "p", "banner": {"w": 300, "h": 250}, "pmp": {"private_auction": 1, "deals": []}},
            {"id": "v", "video": {"w": 640, "h": 480}},
            {"id": "n", "native": {"request": "{}"}},
            {"id": "b", "banner": {}},
        ]
    )
    response = fresh(ConstantBidder).bid(parse_bid_request(raw, strict=False))
    bids = all_bids(response)
    assert [(b["impid"], b["w"], b["h"]) for b in bids] == [("b", 300, 250)]


def test_advertiser_name_is_escaped_in_markup() -> None:
    b = fresh(ConstantBidder, advertiser="<b>Tom & Jerry</b>")
    adm = all_bids(b.bid(make_request()))[0]["adm"]
    assert "&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;" in adm and "<b>" not in adm


def test_string_adomain_and_cat_params_are_one_value() -> None:
    b = fresh(ConstantBidder, adomain="one.example", cat="IAB1")
    bid = all_bids(b.bid(make_request()))[0]
    assert bid["adomain"] == ["one.example"] and bid["cat"] == ["IAB1"]


def _bid_with_the_helpers(b: Any, request: BidRequest) -> dict[str, Any] | None:
    """BannerBidder.bid as composed from dsp.response's helpers (before it built its dicts
    inline for speed): what the inline version must equal, key order included."""
    import math

    from dsp.creative import DEFAULT_SIZE, banner_html
    from dsp.response import make_bid, make_response, may_bid, open_banner_imps

    adomain = (b.adomain,) if isinstance(b.adomain, str) else tuple(b.adomain)
    cat = (b.cat,) if isinstance(b.cat, str) else tuple(b.cat)
    if not may_bid(request, seat=b.seat, adomain=adomain, cat=cat):
        return None
    bids = []
    for imp in open_banner_imps(request):
        price = b.price_for(request, imp)
        if not math.isfinite(price):
            continue
        micros = round(price * MICROS)
        if micros <= 0 or micros < imp.floor_micros:
            continue
        w, h = (imp.w, imp.h) if imp.w and imp.h else DEFAULT_SIZE
        bids.append(make_bid(request, imp, price=micros / MICROS, adm=banner_html(b.advertiser, w, h),
                             crid=b.crid, adomain=adomain, cat=cat, w=w, h=h))  # fmt: skip
    return make_response(request, bids, seat=b.seat)


@pytest.mark.parametrize("cls", BIDDERS)
@pytest.mark.parametrize(
    "changes",
    [{}, {"imp": [{"id": "a", "banner": {}}, {"id": "b", "banner": {"w": 728, "h": 90},
                                               "bidfloor": 0.9}, {"id": "v", "video": {}}]},
     {"bcat": ["IAB19"]}, {"cur": ["EUR"]}, {"bseat": ["random"]}],
)  # fmt: skip
def test_inline_response_is_the_helpers_response(
    cls: type[Bidder], changes: dict[str, Any]
) -> None:
    request = make_request(**changes)
    got, want = fresh(cls, seed=3).bid(request), _bid_with_the_helpers(fresh(cls, seed=3), request)
    assert got == want
    if got is not None and want is not None:  # the same key order too (the bytes on the wire)
        assert list(got) == list(want)
        assert [list(x) for x in all_bids(got)] == [list(x) for x in all_bids(want)]
