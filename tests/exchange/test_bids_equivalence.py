"""``exchange.bids.parse_bid_response`` is the live exchange's hot path and was rewritten for
speed (issue 5): it must answer exactly as the version before, for any input. The previous
implementation is kept here, verbatim but for its names, as the oracle of a property test over
responses full of odd values (wrong types, str and int subclasses, bools, NaN, huge ints, empty
strings, blocked seats, advertisers, categories and deals), as dicts and as JSON bytes."""

from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import loss
from exchange.bids import Bid, Dropped, parse_bid_response
from exchange.errors import InvalidResponse
from exchange.openrtb import MICROS, BidRequest, parse_bid_request

# --- the implementation before the rewrite (git 3418d4e exchange/bids.py), renamed ------------


def reference_parse(
    body: bytes | dict[str, Any] | None,
    request: BidRequest,
    bidder: str,
    *,
    currency: str = "USD",
) -> tuple[list[Bid], list[Dropped]]:
    if body is None:
        return [], []
    if isinstance(body, memoryview):
        body = body.tobytes()
    if isinstance(body, bytes | bytearray):
        if not body.strip():
            return [], []
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidResponse(f"body is not valid JSON: {exc}") from None
    else:
        obj = body
    if not isinstance(obj, dict):
        raise InvalidResponse(f"body must be a JSON object, not {type(obj).__name__}")
    rid = obj.get("id")
    if rid is not None and rid != request.id:
        raise InvalidResponse(f"id {rid!r} does not match the request id {request.id!r}")
    seatbids = obj.get("seatbid")
    if not seatbids:
        return [], []
    if not isinstance(seatbids, list):
        raise InvalidResponse("seatbid must be an array")

    cur = obj.get("cur") or currency
    cur_ok = cur == currency and cur in (request.cur or (currency,))
    bidid = obj.get("bidid") if isinstance(obj.get("bidid"), str) else None
    bids: list[Bid] = []
    dropped: list[Dropped] = []
    for sb in seatbids:
        if not isinstance(sb, dict) or not isinstance(sb.get("bid"), list):
            dropped.append(
                Dropped(bidder, None, None, loss.INVALID_RESPONSE, "seatbid.bid must be an array")
            )
            continue
        seat = sb.get("seat")
        seat = seat if isinstance(seat, str) and seat else bidder
        for raw in sb["bid"]:
            checked = _ref_check_bid(raw, request, bidder, seat, cur, cur_ok, currency, bidid)
            if type(checked) is Bid:
                bids.append(checked)
            else:
                dropped.append(checked)  # type: ignore[arg-type]
    return bids, dropped


def _ref_check_bid(
    raw: Any,
    request: BidRequest,
    bidder: str,
    seat: str,
    cur: Any,
    cur_ok: bool,
    currency: str,
    bidid: str | None,
) -> Bid | Dropped:
    """One bid, admitted (a :class:`Bid`) or dropped with its reason (a :class:`Dropped`)."""
    if not isinstance(raw, dict):
        return Dropped(bidder, None, None, loss.INVALID_RESPONSE, "bid must be an object")
    get = raw.get
    bid_id = get("id")
    impid = get("impid")
    bid_id = bid_id if isinstance(bid_id, str) else None
    impid = impid if isinstance(impid, str) else None
    if not bid_id:
        return Dropped(bidder, bid_id, impid, loss.INVALID_RESPONSE, "bid.id is missing")
    imp = request.imp_by_id.get(impid) if impid is not None else None
    if imp is None or impid is None:
        reason = f"bid.impid {get('impid')!r} is not an imp of this request"
        return Dropped(bidder, bid_id, impid, loss.INVALID_RESPONSE, reason)
    price = get("price")
    if isinstance(price, bool) or not isinstance(price, int | float):
        return Dropped(
            bidder, bid_id, impid, loss.MISSING_PRICE, "bid.price is missing or not a number"
        )
    try:
        micros = float(price) * MICROS
    except OverflowError:
        micros = math.inf
    if not math.isfinite(micros) or micros <= 0:
        reason = f"bid.price must be a finite number > 0, got {price!r}"
        return Dropped(bidder, bid_id, impid, loss.MISSING_PRICE, reason)
    if not cur_ok:
        return Dropped(
            bidder, bid_id, impid, loss.INVALID_RESPONSE, f"currency {cur!r} is not accepted"
        )
    adm = get("adm")
    nurl = get("nurl")
    adm = adm if isinstance(adm, str) and adm else None
    nurl = nurl if isinstance(nurl, str) and nurl else None
    if adm is None and nurl is None:
        return Dropped(bidder, bid_id, impid, loss.MISSING_MARKUP, "bid has neither adm nor nurl")
    if (request.bseat and seat in request.bseat) or (request.wseat and seat not in request.wseat):
        return Dropped(bidder, bid_id, impid, loss.SEAT_BLOCKED, f"seat {seat!r} is blocked")
    adomain = _ref_str_tuple(get("adomain"))
    if request.badv and any(d in request.badv for d in adomain):
        reason = "advertiser domain is blocked (badv)"
        return Dropped(bidder, bid_id, impid, loss.ADVERTISER_EXCLUDED, reason)
    cats = _ref_str_tuple(get("cat"))
    if request.bcat and any(c in request.bcat or c.split("-")[0] in request.bcat for c in cats):
        return Dropped(bidder, bid_id, impid, loss.CATEGORY_EXCLUDED, "category is blocked (bcat)")
    dealid = get("dealid")
    dealid = dealid if isinstance(dealid, str) and dealid else None
    if dealid is not None and dealid not in imp.deals:
        reason = f"dealid {dealid!r} is not a deal of imp {impid!r}"
        return Dropped(bidder, bid_id, impid, loss.INVALID_DEAL_ID, reason)
    w = get("w")
    h = get("h")
    return Bid(
        bidder,
        seat,
        bid_id,
        impid,
        round(micros),
        adm,
        nurl,
        _ref_str_or_none(get("burl")),
        _ref_str_or_none(get("lurl")),
        _ref_str_or_none(get("adid")),
        _ref_str_or_none(get("crid")),
        dealid,
        adomain,
        cats,
        w if type(w) is int else None,
        h if type(h) is int else None,
        bidid,
        currency,
        raw,
    )


def _ref_str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ref_str_tuple(value: Any) -> tuple[str, ...]:
    """The strings of a JSON array (anything else: none); the common all-strings case is cheap."""
    if type(value) is not list:
        return ()
    for v in value:
        if type(v) is not str:
            return tuple(v for v in value if isinstance(v, str))
    return tuple(value)


# --- inputs -----------------------------------------------------------------------------------


class Str(str):
    """A str subclass: isinstance says str, type() does not."""


class Int(int):
    pass


def make_request(*, bcat: Any, badv: Any, bseat: Any, wseat: Any, cur: Any) -> BidRequest:
    body: dict[str, Any] = {
        "id": "req-1",
        "imp": [
            {"id": "1", "banner": {"w": 300, "h": 250}},
            {"id": "2", "banner": {}, "pmp": {"deals": [{"id": "d1"}, {"id": "d2"}]}},
        ],
    }
    for key, value in (("bcat", bcat), ("badv", badv), ("bseat", bseat), ("wseat", wseat),
                       ("cur", cur)):  # fmt: skip
        if value:
            body[key] = value
    return parse_bid_request(body)


ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([10**400, -(10**400)]),  # overflows a float
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "1", "2", "d1", "d3", "seat-a", "IAB1", "IAB1-2", "bad.example"]),
    st.builds(Str, st.sampled_from(["", "1", "b9", "seat-a", "IAB1", "bad.example"])),
    st.builds(Int, st.integers(0, 900)),
    st.just([]),
    st.just({}),
)
STRS = st.lists(st.one_of(st.sampled_from(["IAB1", "IAB1-2", "IAB7", "bad.example", "ok.example"]),
                          st.builds(Str, st.sampled_from(["IAB1", "bad.example"])), ODD),
                max_size=3)  # fmt: skip
FIELD = {
    "id": st.one_of(st.sampled_from(["b1", "b2"]), ODD),
    "impid": st.one_of(st.sampled_from(["1", "2"]), ODD),
    "price": st.one_of(st.floats(0.01, 50), st.integers(1, 50), ODD),
    "adm": st.one_of(st.just("<div>ad</div>"), ODD),
    "nurl": st.one_of(st.just("https://win.example/n"), ODD),
    "burl": ODD,
    "lurl": ODD,
    "adid": ODD,
    "crid": ODD,
    "dealid": st.one_of(st.sampled_from(["d1", "d2", "d3"]), ODD),
    "adomain": st.one_of(STRS, ODD),
    "cat": st.one_of(STRS, ODD),
    "w": ODD,
    "h": ODD,
}
_REQUIRED = ("id", "impid", "price", "adm")
_GOOD = {
    "id": st.sampled_from(["b1", "b2"]),
    "impid": st.sampled_from(["1", "2"]),
    "price": st.floats(0.01, 50) | st.integers(1, 50),
    "adm": st.just("<div>ad</div>"),
}
_OPTIONAL = {k: v for k, v in FIELD.items() if k not in _REQUIRED}
BID = st.one_of(
    st.fixed_dictionaries(_GOOD, optional=_OPTIONAL),  # gets past the first checks
    st.fixed_dictionaries({k: FIELD[k] for k in _REQUIRED}, optional=_OPTIONAL),
    st.fixed_dictionaries({}, optional=FIELD),
    ODD,
)
SEATBID = st.one_of(
    st.fixed_dictionaries(
        {"bid": st.one_of(st.lists(BID, max_size=4), ODD)},
        optional={"seat": st.one_of(st.sampled_from(["seat-a", "seat-b"]), ODD)},
    ),
    st.fixed_dictionaries(
        {"bid": st.lists(BID, min_size=1, max_size=4)},
        optional={"seat": st.sampled_from(["seat-a", "seat-b", "dsp-x"])},
    ),
    ODD,
)
RESPONSE = st.one_of(
    st.fixed_dictionaries(  # an answer to the request, in the exchange's currency
        {"id": st.just("req-1"), "seatbid": st.lists(SEATBID, min_size=1, max_size=3)},
        optional={"cur": st.just("USD"), "bidid": st.sampled_from(["r9", ""])},
    ),
    st.fixed_dictionaries(
        {"seatbid": st.one_of(st.lists(SEATBID, max_size=3), ODD)},
        optional={
            "id": st.one_of(st.just("req-1"), ODD),
            "cur": st.one_of(st.sampled_from(["USD", "EUR"]), ODD),
            "bidid": ODD,
            "nbr": ODD,
        },
    ),
    ODD,
)
SETS = st.lists(st.sampled_from(["IAB1", "IAB7-3", "bad.example", "seat-a", "seat-b", "dsp-x"]),
                max_size=2)  # fmt: skip


def outcome(fn: Any, body: Any, request: BidRequest, currency: str) -> Any:
    try:
        return fn(body, request, "dsp-x", currency=currency)
    except InvalidResponse as exc:
        return ("InvalidResponse", str(exc))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=RESPONSE,
    bcat=SETS,
    badv=SETS,
    bseat=SETS,
    wseat=SETS,
    cur=st.sampled_from([None, ["USD"], ["EUR"], ["USD", "EUR"]]),
    currency=st.sampled_from(["USD", "EUR"]),
)
def test_same_answers_as_before(
    body: Any, bcat: Any, badv: Any, bseat: Any, wseat: Any, cur: Any, currency: str
) -> None:
    request = make_request(bcat=bcat, badv=badv, bseat=bseat, wseat=wseat, cur=cur)
    want = outcome(reference_parse, body, request, currency)
    got = outcome(parse_bid_response, body, request, currency)
    assert got == want  # a NaN in a raw dict is the same object on both sides: equal
    if isinstance(want, tuple) and want and want[0] != "InvalidResponse":
        for new, old in zip(got[0], want[0], strict=True):  # the same types, not only equal values
            assert [type(getattr(new, f)) for f in Bid.__slots__] == [
                type(getattr(old, f)) for f in Bid.__slots__
            ]
    try:
        data = orjson.dumps(body)
    except TypeError:
        return  # huge ints and the like have no JSON form
    assert outcome(parse_bid_response, data, request, currency) == outcome(
        reference_parse, data, request, currency
    )


def test_a_blocked_seat_is_judged_once_per_seatbid_with_the_same_answers() -> None:
    request = make_request(bcat=[], badv=[], bseat=["seat-a"], wseat=[], cur=None)
    bids = [{"id": f"b{i}", "impid": "1", "price": 1.0, "adm": "x"} for i in range(3)]
    body = {"seatbid": [{"seat": "seat-a", "bid": bids}, {"seat": Str("seat-a"), "bid": bids},
                        {"seat": "seat-b", "bid": bids}]}  # fmt: skip
    got = parse_bid_response(body, request, "dsp-x")
    assert got == reference_parse(body, request, "dsp-x")
    assert [d.code for d in got[1]] == [loss.SEAT_BLOCKED] * 6
    assert len(got[0]) == 3
    assert math.isfinite(got[0][0].price_micros / MICROS)
    assert isinstance(got[1][0], Dropped)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bids=st.lists(st.fixed_dictionaries(_GOOD, optional=_OPTIONAL), min_size=1, max_size=4),
    seat=st.sampled_from(["seat-a", "seat-b", "dsp-x", Str("seat-a")]),
    bcat=SETS,
    badv=SETS,
    bseat=SETS,
    wseat=SETS,
)
def test_same_bids_as_before_for_answers_that_get_past_the_first_checks(
    bids: list[dict[str, Any]], seat: str, bcat: Any, badv: Any, bseat: Any, wseat: Any
) -> None:
    request = make_request(bcat=bcat, badv=badv, bseat=bseat, wseat=wseat, cur=None)
    body = {"id": "req-1", "cur": "USD", "seatbid": [{"seat": seat, "bid": bids}]}
    got = parse_bid_response(body, request, "dsp-x")
    want = reference_parse(body, request, "dsp-x")
    assert got == want
    for new, old in zip(got[0], want[0], strict=True):
        assert [type(getattr(new, f)) for f in Bid.__slots__] == [
            type(getattr(old, f)) for f in Bid.__slots__
        ]
