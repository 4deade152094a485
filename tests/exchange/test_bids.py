"""Bid response validation: each bad bid dropped with its loss code, good ones kept beside them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from exchange import loss
from exchange.bids import Bid, Dropped, parse_bid_response
from exchange.errors import InvalidResponse
from exchange.openrtb import BidRequest, parse_bid_request

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "openrtb"


def make_request(**fields: Any) -> BidRequest:
    """Two banner imps; imp "2" has deals "d1" and "d2"."""
    body = {
        "id": "req-1",
        "imp": [
            {"id": "1", "banner": {"w": 300, "h": 250}},
            {"id": "2", "banner": {}, "pmp": {"deals": [{"id": "d1"}, {"id": "d2"}]}},
        ],
        **fields,
    }
    return parse_bid_request(body)


DELETE = object()  # a good_bid() field value meaning "leave this field out"


def good_bid(**fields: Any) -> dict[str, Any]:
    bid: dict[str, Any] = {"id": "b1", "impid": "1", "price": 1.5, "adm": "<div>ad</div>"}
    bid.update(fields)
    return {k: v for k, v in bid.items() if v is not DELETE}


def response(*bids: dict[str, Any], seat: Any = "seat-a", **fields: Any) -> dict[str, Any]:
    seatbid: dict[str, Any] = {"bid": list(bids)}
    if seat is not None:
        seatbid["seat"] = seat
    return {"id": "req-1", "seatbid": [seatbid], **fields}


def parse(
    body: Any, request: BidRequest | None = None, **kwargs: Any
) -> tuple[list[Bid], list[Dropped]]:
    return parse_bid_response(body, request or make_request(), "dsp-x", **kwargs)


def only_drop(body: Any, request: BidRequest | None = None, **kwargs: Any) -> Dropped:
    bids, dropped = parse(body, request, **kwargs)
    assert bids == []
    assert len(dropped) == 1
    return dropped[0]


# --- good bids -------------------------------------------------------------------------------


def test_good_bid_is_kept_with_every_field() -> None:
    raw = good_bid(
        id="bid-9",
        impid="1",
        price=2.345678,
        nurl="https://dsp/win?p=${AUCTION_PRICE}",
        burl="https://dsp/bill",
        lurl="https://dsp/loss",
        adid="ad-1",
        crid="cr-1",
        adomain=["brand.example", 5],
        w=300,
        h=250,
        ext={"dsp": {"anything": [1, 2]}},
    )
    body = {
        "id": "req-1",
        "bidid": "resp-7",
        "cur": "USD",
        "seatbid": [{"seat": "s1", "bid": [raw]}],
    }
    bids, dropped = parse(orjson.dumps(body))
    assert dropped == []
    (bid,) = bids
    assert bid.bidder == "dsp-x"
    assert bid.seat == "s1"
    assert bid.id == "bid-9"
    assert bid.impid == "1"
    assert bid.price_micros == 2_345_678
    assert bid.price == pytest.approx(2.345678)
    assert bid.adm == "<div>ad</div>"
    assert bid.nurl == "https://dsp/win?p=${AUCTION_PRICE}"
    assert bid.burl == "https://dsp/bill"
    assert bid.lurl == "https://dsp/loss"
    assert bid.adid == "ad-1"
    assert bid.crid == "cr-1"
    assert bid.dealid is None
    assert bid.adomain == ("brand.example",)
    assert (bid.w, bid.h) == (300, 250)
    assert bid.bidid == "resp-7"
    assert bid.currency == "USD"
    assert bid.raw == raw


@pytest.mark.parametrize(
    ("price", "micros"),
    [(1, 1_000_000), (0.01, 10_000), (1.01, 1_010_000), (0.000001, 1), (2.675, 2_675_000)],
)
def test_price_in_micro_units(price: Any, micros: int) -> None:
    (bid,), _ = parse(response(good_bid(price=price)))
    assert bid.price_micros == micros
    assert isinstance(bid.price_micros, int)


def test_nurl_alone_is_enough_markup() -> None:
    (bid,), dropped = parse(response(good_bid(adm=DELETE, nurl="https://dsp/win")))
    assert dropped == []
    assert bid.adm is None
    assert bid.nurl == "https://dsp/win"


def test_seat_defaults_to_the_bidder_name() -> None:
    for seat in (None, "", 42):
        (bid,), _ = parse(response(good_bid(), seat=seat))
        assert bid.seat == "dsp-x"


def test_response_without_id_is_accepted() -> None:
    body = response(good_bid())
    del body["id"]
    bids, dropped = parse(body)
    assert [b.id for b in bids] == ["b1"]
    assert dropped == []


# --- each drop reason with its loss code -----------------------------------------------------


NAN = float("nan")


@pytest.mark.parametrize(
    ("bid", "code"),
    [
        pytest.param(good_bid(id=DELETE), loss.INVALID_RESPONSE, id="id-missing"),
        pytest.param(good_bid(id=""), loss.INVALID_RESPONSE, id="id-empty"),
        pytest.param(good_bid(id=None), loss.INVALID_RESPONSE, id="id-null"),
        pytest.param(good_bid(impid="nope"), loss.INVALID_RESPONSE, id="impid-unknown"),
        pytest.param(good_bid(impid=DELETE), loss.INVALID_RESPONSE, id="impid-missing"),
        pytest.param(good_bid(impid=1), loss.INVALID_RESPONSE, id="impid-int"),
        pytest.param(good_bid(price=DELETE), loss.MISSING_PRICE, id="price-missing"),
        pytest.param(good_bid(price=None), loss.MISSING_PRICE, id="price-null"),
        pytest.param(good_bid(price="1.5"), loss.MISSING_PRICE, id="price-string"),
        pytest.param(good_bid(price=0), loss.MISSING_PRICE, id="price-zero"),
        pytest.param(good_bid(price=0.0), loss.MISSING_PRICE, id="price-zero-float"),
        pytest.param(good_bid(price=-1), loss.MISSING_PRICE, id="price-negative"),
        pytest.param(good_bid(price=True), loss.MISSING_PRICE, id="price-bool"),
        pytest.param(good_bid(price=NAN), loss.MISSING_PRICE, id="price-nan"),
        pytest.param(good_bid(price=float("inf")), loss.MISSING_PRICE, id="price-inf"),
        pytest.param(good_bid(price=[1]), loss.MISSING_PRICE, id="price-list"),
        pytest.param(good_bid(adm=DELETE), loss.MISSING_MARKUP, id="no-adm-no-nurl"),
        pytest.param(good_bid(adm="", nurl=""), loss.MISSING_MARKUP, id="empty-adm-and-nurl"),
        pytest.param(good_bid(adm={"native": 1}), loss.MISSING_MARKUP, id="adm-not-string"),
        pytest.param(good_bid(dealid="nope"), loss.INVALID_DEAL_ID, id="dealid-unknown"),
        pytest.param(good_bid(dealid="d1"), loss.INVALID_DEAL_ID, id="dealid-of-another-imp"),
    ],
)
def test_drop_reason_codes(bid: dict[str, Any], code: int) -> None:
    dropped = only_drop(response(bid))  # a dict body: NaN and inf reach the validator
    assert dropped.code == code
    assert dropped.bidder == "dsp-x"
    assert dropped.reason


def test_dropped_carries_bid_id_and_impid() -> None:
    dropped = only_drop(response(good_bid(id="b7", impid="1", price=0)))
    assert (dropped.bid_id, dropped.impid) == ("b7", "1")
    dropped = only_drop(response(good_bid(id=5, impid=6)))
    assert (dropped.bid_id, dropped.impid) == (None, None)


@pytest.mark.parametrize(
    ("req_cur", "resp_cur", "currency", "kept"),
    [
        (None, None, "USD", True),
        (None, "USD", "USD", True),
        (None, "EUR", "USD", False),
        (["USD", "EUR"], "USD", "USD", True),
        (["EUR"], "USD", "USD", False),  # the request does not accept the exchange currency
        (["EUR"], None, "USD", False),
        (["EUR"], "EUR", "USD", False),  # accepted by the request, but not the exchange's own
        (["EUR"], "EUR", "EUR", True),
        (None, "EUR", "EUR", True),
        (None, "usd", "USD", False),
        (None, 840, "USD", False),
    ],
)
def test_currency_must_be_accepted(req_cur: Any, resp_cur: Any, currency: str, kept: bool) -> None:
    request = make_request(**({} if req_cur is None else {"cur": req_cur}))
    body = response(good_bid(), **({} if resp_cur is None else {"cur": resp_cur}))
    bids, dropped = parse(body, request, currency=currency)
    if kept:
        assert [b.id for b in bids] == ["b1"] and dropped == []
        assert bids[0].currency == currency
    else:
        assert bids == []
        assert [d.code for d in dropped] == [loss.INVALID_RESPONSE]


@pytest.mark.parametrize(
    ("request_fields", "seat", "kept"),
    [
        ({"bseat": ["seat-a"]}, "seat-a", False),
        ({"bseat": ["seat-b"]}, "seat-a", True),
        ({"wseat": ["seat-b"]}, "seat-a", False),
        ({"wseat": ["seat-a", "seat-b"]}, "seat-a", True),
        ({"wseat": ["seat-a"]}, None, False),  # the default seat is the bidder name
        ({"wseat": ["dsp-x"]}, None, True),
        ({"bseat": ["dsp-x"]}, None, False),
    ],
)
def test_seat_blocks(request_fields: dict[str, Any], seat: Any, kept: bool) -> None:
    bids, dropped = parse(response(good_bid(), seat=seat), make_request(**request_fields))
    if kept:
        assert len(bids) == 1 and dropped == []
    else:
        assert bids == []
        assert [d.code for d in dropped] == [loss.SEAT_BLOCKED]


@pytest.mark.parametrize(
    ("adomain", "kept"),
    [(["evil.example"], False), (["ok.example", "evil.example"], False), (["ok.example"], True),
     (None, True), ("evil.example", True)],
)  # fmt: skip
def test_badv_blocks_advertiser_domains(adomain: Any, kept: bool) -> None:
    bid = good_bid() if adomain is None else good_bid(adomain=adomain)
    bids, dropped = parse(response(bid), make_request(badv=["evil.example"]))
    assert len(bids) == int(kept)
    assert [d.code for d in dropped] == ([] if kept else [loss.ADVERTISER_EXCLUDED])


@pytest.mark.parametrize(
    ("cat", "kept"),
    [
        (["IAB25"], False),
        (["IAB1"], False),
        (["IAB1-2"], False),  # subcategory of a blocked category
        (["IAB3", "IAB25-3"], False),
        (["IAB12"], True),  # a prefix is not a subcategory
        (["IAB2-1"], True),
        (["IAB3"], True),
        ([], True),
    ],
)
def test_bcat_blocks_categories_and_subcategories(cat: list[str], kept: bool) -> None:
    bids, dropped = parse(response(good_bid(cat=cat)), make_request(bcat=["IAB1", "IAB25"]))
    assert len(bids) == int(kept)
    assert [d.code for d in dropped] == ([] if kept else [loss.CATEGORY_EXCLUDED])


def test_blocked_subcategory_does_not_block_its_parent() -> None:
    bids, dropped = parse(response(good_bid(cat=["IAB1"])), make_request(bcat=["IAB1-2"]))
    assert len(bids) == 1 and dropped == []


def test_known_dealid_is_kept() -> None:
    (bid,), dropped = parse(response(good_bid(impid="2", dealid="d2")))
    assert dropped == []
    assert bid.dealid == "d2"


def test_good_bids_are_kept_beside_bad_ones() -> None:
    body = {
        "id": "req-1",
        "seatbid": [
            {
                "seat": "s1",
                "bid": [
                    good_bid(id="ok-1"),
                    good_bid(id="bad-price", price="2"),
                    "not a bid",
                    good_bid(id="ok-2", impid="2", dealid="d1"),
                    good_bid(id="bad-imp", impid="9"),
                ],
            },
            "not a seatbid",
            {"seat": "s2", "bid": "not a list"},
            {"seat": "s3", "bid": [good_bid(id="bad-markup", adm=DELETE), good_bid(id="ok-3")]},
        ],
    }
    bids, dropped = parse(orjson.dumps(body))
    assert [(b.id, b.seat) for b in bids] == [("ok-1", "s1"), ("ok-2", "s1"), ("ok-3", "s3")]
    assert sorted((d.bid_id or "", d.code) for d in dropped) == sorted(
        [
            ("bad-price", loss.MISSING_PRICE),
            ("", loss.INVALID_RESPONSE),  # "not a bid"
            ("bad-imp", loss.INVALID_RESPONSE),
            ("", loss.INVALID_RESPONSE),  # "not a seatbid"
            ("", loss.INVALID_RESPONSE),  # bid is not a list
            ("bad-markup", loss.MISSING_MARKUP),
        ]
    )


# --- no-bid and unusable bodies --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        b"",
        b"  \n",
        bytearray(b""),
        b"{}",
        {},
        {"id": "req-1"},
        {"id": "req-1", "seatbid": []},
        {"id": "req-1", "seatbid": None},
        {"id": "req-1", "nbr": 2},
        b'{"id": "req-1", "seatbid": [], "nbr": 8}',
        {"nbr": 1},
    ],
)
def test_no_bid_forms(body: Any) -> None:
    assert parse(body) == ([], [])


def test_memoryview_body_is_read_like_bytes() -> None:
    assert parse(memoryview(b"")) == ([], [])
    bids, _ = parse(memoryview(orjson.dumps(response(good_bid()))))
    assert [b.id for b in bids] == ["b1"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"id": "req-1",', id="truncated"),
        pytest.param(b"\xff", id="bad-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"[{}]", id="array-of-object"),
        pytest.param(b'"x"', id="string"),
        pytest.param(b"1", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param([1], id="list-input"),
        pytest.param({"id": "req-1", "seatbid": {"bid": []}}, id="seatbid-object"),
        pytest.param({"id": "req-1", "seatbid": "x"}, id="seatbid-string"),
        pytest.param({"id": "req-1", "seatbid": 5}, id="seatbid-number"),
        pytest.param({"id": "other", "seatbid": []}, id="id-mismatch"),
        pytest.param({"id": 1, "seatbid": []}, id="id-int"),
        pytest.param({"id": "", "seatbid": []}, id="id-empty"),
    ],
)
def test_invalid_response(body: Any) -> None:
    with pytest.raises(InvalidResponse) as info:
        parse(body)
    assert info.value.reason
    assert isinstance(info.value, ValueError)


def test_mismatched_id_wins_over_bids() -> None:
    with pytest.raises(InvalidResponse, match="does not match"):
        parse(orjson.dumps(response(good_bid()) | {"id": "someone-else"}))


@pytest.mark.parametrize(
    "price",
    [pytest.param(1e308, id="1e308"), pytest.param(1e300, id="1e300"),
     pytest.param(10**400, id="huge-int")],
)  # fmt: skip
def test_absurd_price_is_dropped_not_a_crash(price: Any) -> None:
    """The module promises no other exception for any input; an absurd price is a bad bid."""
    bids, dropped = parse(response(good_bid(price=price)))
    assert len(bids) + len(dropped) == 1
    for bid in bids:
        assert bid.price_micros > 0


def test_absurd_price_from_json_bytes_is_not_a_crash() -> None:
    body = b'{"id":"req-1","seatbid":[{"bid":[{"id":"b","impid":"1","price":1e308,"adm":"x"}]}]}'
    bids, dropped = parse(body)
    assert len(bids) + len(dropped) == 1


# --- conformance corpus ----------------------------------------------------------------------


def request_for(data: Any) -> BidRequest:
    """The request a corpus response could answer: its id, and one banner imp per impid in it."""
    rid = data.get("id") if isinstance(data, dict) else None
    impids: list[str] = []
    for bid in bid_objects(data):
        if isinstance(bid, dict):
            impid = bid.get("impid")
            if isinstance(impid, str) and impid and impid not in impids:
                impids.append(impid)
    return parse_bid_request(
        {
            "id": rid if isinstance(rid, str) and rid else "conformance",
            "imp": [{"id": i, "banner": {}} for i in impids or ["1"]],
        }
    )


def bid_objects(data: Any) -> list[Any]:
    """Every entry of every well-formed ``seatbid[].bid`` array."""
    if not isinstance(data, dict) or not isinstance(data.get("seatbid"), list):
        return []
    return [
        bid
        for sb in data["seatbid"]
        if isinstance(sb, dict) and isinstance(sb.get("bid"), list)
        for bid in sb["bid"]
    ]


def malformed_seatbids(data: Any) -> int:
    if not isinstance(data, dict) or not isinstance(data.get("seatbid"), list):
        return 0
    return sum(
        1
        for sb in data["seatbid"]
        if not (isinstance(sb, dict) and isinstance(sb.get("bid"), list))
    )


def corpus_responses() -> list[Any]:
    params = []
    lines = (CONFORMANCE / "bid_responses.jsonl").read_text().splitlines()
    for n, line in enumerate(lines, 1):
        if line.strip():
            entry = json.loads(line)
            params.append(
                pytest.param(entry["data"], entry["adapter"], id=f"{n}:{entry['source']}")
            )
    for path in sorted((CONFORMANCE / "spec-examples").glob("*.json")):
        data = json.loads(path.read_text())
        if "seatbid" in data or "nbr" in data:
            params.append(pytest.param(data, "spec", id=f"spec:{path.name}"))
    return params


def test_conformance_corpus_is_present() -> None:
    params = corpus_responses()
    assert len(params) >= 1000
    assert sum(1 for p in params if str(p.id).startswith("spec:")) >= 3


@pytest.mark.parametrize(("data", "adapter"), corpus_responses())
def test_conformance_bid_responses(data: Any, adapter: str) -> None:
    request = request_for(data)
    try:
        bids, dropped = parse_bid_response(orjson.dumps(data), request, adapter)
    except InvalidResponse as exc:
        assert exc.reason
        return
    objects = bid_objects(data)
    if not data.get("seatbid"):
        assert (bids, dropped) == ([], [])
        return
    # Each bid object is kept or dropped; a malformed seatbid entry is dropped as one.
    assert len(bids) + len(dropped) == len(objects) + malformed_seatbids(data)
    ids = Counter(str(b.get("id")) for b in objects if isinstance(b, dict))
    assert not Counter(b.id for b in bids) - ids  # every kept bid is one of the response's
    for bid in bids:
        assert bid.price_micros > 0
        assert bid.impid in request.imp_by_id
        assert bid.adm or bid.nurl
