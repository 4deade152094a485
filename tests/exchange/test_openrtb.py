"""Bid request parsing: strict on what OpenRTB requires, lenient on what it recommends."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.errors import NBR_INVALID_REQUEST, RequestError
from exchange.openrtb import BidRequest, parse_bid_request

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "openrtb"
MEDIA = ("banner", "video", "audio", "native")


def imp(iid: Any = "1", **fields: Any) -> dict[str, Any]:
    """A minimal valid imp (a banner) with extra fields."""
    return {"id": iid, "banner": {"w": 300, "h": 250}, **fields}


def request(*imps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": "req-1", "imp": list(imps) or [imp()], **fields}


def rejected(body: Any, **kwargs: Any) -> RequestError:
    with pytest.raises(RequestError) as info:
        parse_bid_request(body, **kwargs)
    return info.value


# --- the smallest valid request --------------------------------------------------------------


def test_minimal_request_parses_to_typed_view() -> None:
    req = parse_bid_request(request())
    assert isinstance(req, BidRequest)
    assert req.id == "req-1"
    assert [i.id for i in req.imp] == ["1"]
    assert req.imp_by_id == {"1": req.imp[0]}
    assert req.tmax is None
    assert req.at == 2
    assert req.cur == ()
    assert req.bcat == req.badv == req.bseat == req.wseat == frozenset()
    assert req.site is None and req.app is None and req.device is None and req.user is None
    assert req.test is False
    only = req.imp[0]
    assert only.media == ("banner",)
    assert only.floor_micros == 0
    assert only.bidfloorcur == "USD"
    assert only.private is False
    assert only.deals == {}
    assert only.tagid is None


def test_bytes_and_str_bodies_parse_like_dicts() -> None:
    video = {"id": "b", "video": {"w": 640, "h": 480}}
    body = request(imp("a", tagid="slot-1"), video, tmax=80)
    for form in (orjson.dumps(body), orjson.dumps(body).decode()):
        req = parse_bid_request(form)
        assert req.id == "req-1"
        assert [i.id for i in req.imp] == ["a", "b"]
        assert req.imp[0].tagid == "slot-1"
        assert req.imp[1].media == ("video",)
        assert req.tmax == 80
        assert req.raw == body


def test_request_level_lists_and_fields() -> None:
    req = parse_bid_request(
        request(
            at=1,
            cur=["USD", "EUR"],
            bcat=["IAB25", "IAB26"],
            badv=["evil.example"],
            bseat=["s1"],
            wseat=["s2", "s3"],
            site={"id": "site-1"},
            device={"ua": "x"},
            user={"id": "u"},
            test=1,
        )
    )
    assert req.at == 1
    assert req.cur == ("USD", "EUR")
    assert req.bcat == frozenset({"IAB25", "IAB26"})
    assert req.badv == frozenset({"evil.example"})
    assert req.bseat == frozenset({"s1"})
    assert req.wseat == frozenset({"s2", "s3"})
    assert req.site == {"id": "site-1"}
    assert req.device == {"ua": "x"}
    assert req.user == {"id": "u"}
    assert req.test is True


def test_imp_lists_every_media_object_it_carries() -> None:
    both = {"id": "1", "video": {"w": 1, "h": 2}, "banner": {}, "native": {"request": "{}"}}
    req = parse_bid_request(request(both))
    assert set(req.imp[0].media) == {"banner", "video", "native"}
    req = parse_bid_request(request({"id": "1", "audio": {"mimes": ["audio/mp4"]}}))
    assert req.imp[0].media == ("audio",)


# --- strict in what is required --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"imp": [imp()]}, "id", id="id-missing"),
        pytest.param({"id": "", "imp": [imp()]}, "id", id="id-empty"),
        pytest.param({"id": 123, "imp": [imp()]}, "id", id="id-int"),
        pytest.param({"id": None, "imp": [imp()]}, "id", id="id-null"),
        pytest.param({"id": ["r"], "imp": [imp()]}, "id", id="id-list"),
        pytest.param({"id": "r"}, "imp", id="imp-missing"),
        pytest.param({"id": "r", "imp": []}, "imp", id="imp-empty"),
        pytest.param({"id": "r", "imp": imp()}, "imp", id="imp-object-not-list"),
        pytest.param({"id": "r", "imp": "1"}, "imp", id="imp-string"),
        pytest.param({"id": "r", "imp": None}, "imp", id="imp-null"),
        pytest.param({"id": "r", "imp": ["1"]}, "imp[0]", id="imp0-string"),
        pytest.param({"id": "r", "imp": [imp(), [imp("2")]]}, "imp[1]", id="imp1-list"),
        pytest.param({"id": "r", "imp": [imp(), None]}, "imp[1]", id="imp1-null"),
        pytest.param({"id": "r", "imp": [{"banner": {}}]}, "imp[0].id", id="imp-id-missing"),
        pytest.param({"id": "r", "imp": [imp(""), imp()]}, "imp[0].id", id="imp-id-empty"),
        pytest.param({"id": "r", "imp": [imp(), imp(7)]}, "imp[1].id", id="imp-id-int"),
        pytest.param({"id": "r", "imp": [imp("1"), imp("1")]}, "imp[1].id", id="imp-id-dup"),
        pytest.param(
            {"id": "r", "imp": [imp("a"), imp("b"), imp("a")]}, "imp[2].id", id="imp-id-dup-2"
        ),
    ],
)
def test_required_fields_are_rejected_naming_the_field(body: dict[str, Any], field: str) -> None:
    err = rejected(body)
    assert err.field == field
    assert err.nbr == NBR_INVALID_REQUEST
    assert err.message


@pytest.mark.parametrize(
    "bad_imp",
    [
        pytest.param({"id": "2"}, id="no-media"),
        pytest.param({"id": "2", "ext": {"banner": {}}}, id="media-only-in-ext"),
        pytest.param({"id": "2", "banner": None}, id="banner-null"),
        pytest.param({"id": "2", "banner": [{"w": 1}]}, id="banner-list"),
        pytest.param({"id": "2", "video": "vast"}, id="video-string"),
        pytest.param({"id": "2", "pmp": {}, "bidfloor": 1}, id="other-fields-only"),
    ],
)
def test_imp_without_a_media_object_is_rejected(bad_imp: dict[str, Any]) -> None:
    err = rejected(request(imp("1"), bad_imp))
    assert err.field.startswith("imp[1]")
    assert err.nbr == NBR_INVALID_REQUEST


@pytest.mark.parametrize("tmax", [-1, -100, "-5", -0.5, "-0.5"], ids=repr)
def test_negative_tmax_is_rejected(tmax: Any) -> None:
    assert rejected(request(tmax=tmax)).field == "tmax"


@pytest.mark.parametrize("tmax", ["abc", "", [100], {"ms": 100}, True, False, "NaN", "inf"])
def test_non_numeric_tmax_is_rejected(tmax: Any) -> None:
    assert rejected(request(tmax=tmax)).field == "tmax"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (request(imp(bidfloor="cheap")), "imp[0].bidfloor"),
        (request(imp(bidfloorcur=5)), "imp[0].bidfloorcur"),
        (request(at="first"), "at"),
        (request(bcat="IAB25"), "bcat"),
        (request(site="example.com"), "site"),
        (request(imp(pmp={"deals": [{"bidfloor": 1}]})), "imp[0].pmp.deals[0].id"),
        (
            request(imp(pmp={"deals": [{"id": "d", "bidfloor": "x"}]})),
            "imp[0].pmp.deals[0].bidfloor",
        ),
    ],
)
def test_malformed_optional_fields_name_the_field(body: dict[str, Any], field: str) -> None:
    assert rejected(body).field == field


@pytest.mark.parametrize("floor", [-1, -3.5, "-2"])
def test_negative_floor_means_no_floor(floor: Any) -> None:
    # Seen in real traffic (a Prebid fixture sends bidfloor -3): lenient, the imp has no floor.
    parsed = parse_bid_request(request(imp(bidfloor=floor)))
    assert parsed.imp[0].floor_micros == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"id": "r",}', b"\xff\xfe", "{'id': 'r'}", '{"id": "r"'],
)
def test_malformed_json_body_names_body(body: bytes | str) -> None:
    err = rejected(body)
    assert err.field == "body"
    assert err.nbr == NBR_INVALID_REQUEST


@pytest.mark.parametrize("body", [b"[]", b"[{}]", b"1", b'"req"', b"null", b"true", "[1, 2]"])
def test_non_object_json_body_names_body(body: bytes | str) -> None:
    assert rejected(body).field == "body"


def test_request_error_to_json_shape() -> None:
    err = rejected({"id": "r", "imp": []})
    out = err.to_json()
    assert set(out) == {"error", "field", "nbr"}
    assert out["field"] == "imp"
    assert out["nbr"] == NBR_INVALID_REQUEST
    assert isinstance(out["error"], str) and out["error"]
    assert orjson.loads(orjson.dumps(out)) == out  # serialisable as the 400 body
    assert isinstance(err, ValueError)


def test_request_error_carries_a_custom_nbr() -> None:
    err = RequestError("too busy", field="body", nbr=1)
    assert err.to_json() == {"error": "too busy", "field": "body", "nbr": 1}
    assert str(err) == "too busy"


# --- lenient in what is recommended ----------------------------------------------------------


def test_neither_site_nor_app_is_accepted() -> None:
    req = parse_bid_request(request())
    assert req.site is None and req.app is None
    app = parse_bid_request(request(app={"bundle": "com.example"}))
    assert app.app == {"bundle": "com.example"} and app.site is None


@pytest.mark.parametrize(("tmax", "expected"), [("120", 120), (120.0, 120), (0, 0), ("0", 0)])
def test_tmax_as_numeric_string_or_float_is_accepted(tmax: Any, expected: int) -> None:
    req = parse_bid_request(request(tmax=tmax))
    assert req.tmax == expected
    assert isinstance(req.tmax, int)


@pytest.mark.parametrize(
    ("bidfloor", "micros"),
    [("1.5", 1_500_000), (" 2 ", 2_000_000), ("0", 0), (0.3, 300_000), (1.01, 1_010_000)],
)
def test_bidfloor_as_numeric_string_is_accepted(bidfloor: Any, micros: int) -> None:
    assert parse_bid_request(request(imp(bidfloor=bidfloor))).imp[0].floor_micros == micros


def test_regs_ext_gdpr_passes_through() -> None:
    body = request(regs={"ext": {"gdpr": 1}}, user={"ext": {"consent": "CO-abc"}})
    req = parse_bid_request(orjson.dumps(body))
    assert req.raw["regs"] == {"ext": {"gdpr": 1}}
    assert req.user == {"ext": {"consent": "CO-abc"}}


def test_unknown_fields_and_ext_are_kept_untouched() -> None:
    body = request(
        imp(
            "1",
            ext={"bidder": {"placementId": 13144370}, "gpid": "/1/home"},
            x_custom=[1, {"deep": None}],
            banner={"w": 300, "h": 250, "ext": {"z": 1.5}},
        ),
        source={"tid": "t-1", "ext": {"schain": {"ver": "1.0", "nodes": []}}},
        ext={"prebid": {"debug": True}},
        unknown_top="kept",
        dooh={"id": "screen-7"},
    )
    before = copy.deepcopy(body)
    req = parse_bid_request(body)
    assert body == before  # not mutated
    assert req.raw is body
    assert req.imp[0].raw is body["imp"][0]
    assert req.imp[0].raw["ext"] == {"bidder": {"placementId": 13144370}, "gpid": "/1/home"}
    assert req.raw["unknown_top"] == "kept"
    # From bytes: the raw dict is exactly the decoded JSON.
    from_bytes = parse_bid_request(orjson.dumps(body))
    assert from_bytes.raw == before


# --- strict=False: a DSP reading what an exchange sent ---------------------------------------


def test_non_strict_keeps_media_less_imps() -> None:
    req = parse_bid_request(request(imp("1"), {"id": "2", "bidfloor": 1}), strict=False)
    assert [i.id for i in req.imp] == ["1", "2"]
    assert req.imp[1].media == ()
    assert req.imp[1].floor_micros == 1_000_000


def test_non_strict_skips_repeated_imp_ids_keeping_the_first() -> None:
    req = parse_bid_request(
        request(imp("1", tagid="first"), imp("2"), imp("1", tagid="second")), strict=False
    )
    assert [i.id for i in req.imp] == ["1", "2"]
    assert req.imp_by_id["1"].tagid == "first"


def test_non_strict_reads_integer_imp_id_as_string() -> None:
    req = parse_bid_request(request(imp(3)), strict=False)
    assert req.imp[0].id == "3"
    assert "3" in req.imp_by_id


def test_non_strict_still_requires_id_and_imp() -> None:
    assert rejected({"imp": [imp()]}, strict=False).field == "id"
    assert rejected({"id": "r", "imp": []}, strict=False).field == "imp"
    assert rejected({"id": "r", "imp": [{"banner": {}}]}, strict=False).field == "imp[0].id"


# --- floors and currencies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bidfloor", "micros"),
    [
        (None, 0),
        (0, 0),
        (1, 1_000_000),
        (0.5, 500_000),
        (1.01, 1_010_000),
        (2.675, 2_675_000),
        (0.000001, 1),
        (1234.56789, 1_234_567_890),
    ],
)
def test_floors_are_integer_micro_units(bidfloor: Any, micros: int) -> None:
    fields = {} if bidfloor is None else {"bidfloor": bidfloor}
    got = parse_bid_request(request(imp(**fields))).imp[0]
    assert got.floor_micros == micros
    assert isinstance(got.floor_micros, int)
    assert got.bidfloor == micros / 1_000_000


def test_bidfloorcur_is_converted_with_a_rate() -> None:
    req = parse_bid_request(
        request(imp("1", bidfloor=2, bidfloorcur="EUR"), imp("2", bidfloor=100, bidfloorcur="JPY")),
        rates={"EUR": 1.1, "JPY": 0.0067},
    )
    assert req.imp[0].floor_micros == 2_200_000
    assert req.imp[0].bidfloorcur == "EUR"
    assert req.imp[1].floor_micros == 670_000


def test_bidfloorcur_without_a_rate_is_taken_at_face_value() -> None:
    body = request(imp("1", bidfloor=2, bidfloorcur="GBP"))
    assert parse_bid_request(body).imp[0].floor_micros == 2_000_000
    assert parse_bid_request(body, rates={"EUR": 1.1}).imp[0].floor_micros == 2_000_000


def test_floor_in_the_exchange_currency_ignores_rates() -> None:
    body = request(imp("1", bidfloor=2, bidfloorcur="USD"))
    assert parse_bid_request(body, rates={"USD": 3.0}).imp[0].floor_micros == 2_000_000
    eur = request(imp("1", bidfloor=2, bidfloorcur="EUR"))
    got = parse_bid_request(eur, currency="EUR", rates={"EUR": 3.0}).imp[0]
    assert got.floor_micros == 2_000_000


def test_empty_bidfloorcur_means_the_exchange_currency() -> None:
    got = parse_bid_request(request(imp(bidfloor=1, bidfloorcur="")), rates={"": 9.0}).imp[0]
    assert got.bidfloorcur == "USD"
    assert got.floor_micros == 1_000_000


# --- private marketplace ---------------------------------------------------------------------


def test_pmp_deals_and_private_auction() -> None:
    pmp = {
        "private_auction": 1,
        "deals": [
            {"id": "d1", "bidfloor": 3.5, "wseat": ["seat-a", "seat-b"], "ext": {"x": 1}},
            {"id": "d2"},
            {"id": "d3", "bidfloor": 2, "bidfloorcur": "EUR"},
        ],
    }
    req = parse_bid_request(request(imp(pmp=pmp, bidfloor=1)), rates={"EUR": 1.25})
    got = req.imp[0]
    assert got.private is True
    assert set(got.deals) == {"d1", "d2", "d3"}
    assert got.deals["d1"].floor_micros == 3_500_000
    assert got.deals["d1"].wseat == frozenset({"seat-a", "seat-b"})
    assert got.deals["d2"].floor_micros == 0
    assert got.deals["d2"].wseat == frozenset()
    assert got.deals["d3"].floor_micros == 2_500_000
    assert got.floor_micros == 1_000_000


def test_deal_floor_inherits_the_imp_bidfloorcur() -> None:
    body = request(imp(bidfloorcur="EUR", pmp={"deals": [{"id": "d", "bidfloor": 4}]}))
    assert parse_bid_request(body, rates={"EUR": 0.5}).imp[0].deals["d"].floor_micros == 2_000_000


@pytest.mark.parametrize(
    ("private_auction", "expected"),
    [(1, True), (True, True), ("1", True), (0, False), (None, False), (False, False)],
)
def test_private_auction_flag(private_auction: Any, expected: bool) -> None:
    pmp = {"deals": [{"id": "d"}]}
    if private_auction is not None:
        pmp["private_auction"] = private_auction
    assert parse_bid_request(request(imp(pmp=pmp))).imp[0].private is expected


def test_imp_without_pmp_is_open() -> None:
    got = parse_bid_request(request(imp(pmp="nonsense"))).imp[0]
    assert got.private is False
    assert got.deals == {}


# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media", "size"),
    [
        ({"banner": {"w": 300, "h": 250}}, (300, 250)),
        ({"banner": {"format": [{"w": 320, "h": 50}, {"w": 300, "h": 250}]}}, (320, 50)),
        ({"banner": {"w": 728, "h": 90, "format": [{"w": 1, "h": 1}]}}, (728, 90)),
        ({"banner": {"w": 728, "format": [{"w": 320, "h": 50}]}}, (320, 50)),
        ({"banner": {}}, (None, None)),
        ({"banner": {"format": []}}, (None, None)),
        ({"banner": {"w": "300", "h": "250"}}, (None, None)),
        ({"video": {"w": 640, "h": 480}}, (640, 480)),
        ({"video": {"mimes": ["video/mp4"]}}, (None, None)),
        ({"native": {"request": "{}"}}, (None, None)),
    ],
)
def test_size_from_w_h_or_first_format(media: dict[str, Any], size: tuple[Any, Any]) -> None:
    got = parse_bid_request(request({"id": "1", **media})).imp[0]
    assert (got.w, got.h) == size


# --- never anything but RequestError ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kwargs"),
    [
        pytest.param(request(imp(bidfloor=1e303)), {}, id="bidfloor-1e303"),
        pytest.param(request(imp(bidfloor="1e303")), {}, id="bidfloor-str-1e303"),
        pytest.param(request(imp(bidfloor=10**400)), {}, id="bidfloor-huge-int"),
        pytest.param(request(tmax=10**400), {}, id="tmax-huge-int"),
        pytest.param(request(imp(pmp={"deals": 5})), {}, id="deals-int"),
        pytest.param(request(imp(pmp={"deals": True})), {}, id="deals-true"),
        pytest.param(
            request(imp(pmp={"deals": [{"id": "d", "bidfloorcur": ["EUR"]}]})),
            {"rates": {"EUR": 1.1}},
            id="deal-bidfloorcur-list",
        ),
    ],
)
def test_odd_values_raise_request_error_not_a_crash(body: Any, kwargs: dict[str, Any]) -> None:
    """Whatever the value, the parser answers a RequestError (a 400) or a BidRequest, never a 500."""
    try:
        req = parse_bid_request(body, **kwargs)
    except RequestError as exc:
        assert exc.field.startswith(("imp[0]", "tmax"))
    else:
        assert req.imp[0].id == "1"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=4,
)
DEAL = st.fixed_dictionaries(
    {"id": st.just("d") | JSON}, optional={k: JSON for k in ("bidfloor", "bidfloorcur", "wseat")}
)
PMP = st.fixed_dictionaries(
    {}, optional={"private_auction": JSON, "deals": st.lists(DEAL, max_size=2) | JSON}
)
IMP = st.fixed_dictionaries(
    {"id": st.just("1") | JSON},
    optional={
        "banner": st.just({}) | JSON,
        "video": st.fixed_dictionaries({}, optional={"w": JSON, "h": JSON}) | JSON,
        "bidfloor": JSON,
        "bidfloorcur": st.sampled_from(["USD", "EUR", ""]) | JSON,
        "pmp": PMP | JSON,
        "tagid": JSON,
    },
)
REQUEST = st.fixed_dictionaries(
    {"id": st.just("r") | JSON, "imp": st.lists(IMP | JSON, max_size=3) | JSON},
    optional={k: JSON for k in ("tmax", "at", "cur", "bcat", "bseat", "site", "user", "test")},
)


@settings(max_examples=250, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(body=REQUEST, strict=st.booleans())
def test_fuzz_only_request_error(body: dict[str, Any], strict: bool) -> None:
    """Any JSON in any field: a BidRequest or a RequestError naming a field, nothing else."""
    try:
        req = parse_bid_request(body, strict=strict, rates={"EUR": 1.1})
    except RequestError as exc:
        assert isinstance(exc.field, str) and exc.field
    else:
        assert req.imp and all(isinstance(i.floor_micros, int) for i in req.imp)


# --- conformance corpus ----------------------------------------------------------------------


def meets_openrtb_requirements(data: Any) -> bool:
    """An independent reading of what OpenRTB 2.6 requires of a BidRequest."""
    if not isinstance(data, dict):
        return False
    if not isinstance(data.get("id"), str) or not data["id"]:
        return False
    imps = data.get("imp")
    if not isinstance(imps, list) or not imps:
        return False
    seen: set[str] = set()
    for one in imps:
        if not isinstance(one, dict):
            return False
        iid = one.get("id")
        if not isinstance(iid, str) or not iid or iid in seen:
            return False
        seen.add(iid)
        if not any(isinstance(one.get(m), dict) for m in MEDIA):
            return False
    if "tmax" in data:
        tmax = data["tmax"]
        if not (type(tmax) is int and tmax >= 0):
            return False
    return True


def corpus_requests() -> list[Any]:
    path = CONFORMANCE / "bid_requests.jsonl"
    lines = path.read_text().splitlines()
    return [
        pytest.param(json.loads(line)["data"], id=f"{n}:{json.loads(line)['source']}")
        for n, line in enumerate(lines, 1)
        if line.strip()
    ]


def test_conformance_corpus_is_present() -> None:
    assert len(corpus_requests()) >= 1000


@pytest.mark.parametrize("data", corpus_requests())
def test_conformance_bid_requests(data: Any) -> None:
    valid = meets_openrtb_requirements(data)
    try:
        req = parse_bid_request(orjson.dumps(data))
    except RequestError as exc:
        assert not valid, f"a valid request was rejected: {exc.field}: {exc.message}"
        assert exc.field
        return
    assert req.id == data["id"]
    assert [i.id for i in req.imp] == [i["id"] for i in data["imp"]]


SPEC_REQUESTS = sorted(
    p for p in (CONFORMANCE / "spec-examples").glob("*.json") if "imp" in json.loads(p.read_text())
)


def test_spec_examples_include_requests() -> None:
    assert len(SPEC_REQUESTS) >= 3


@pytest.mark.parametrize("path", SPEC_REQUESTS, ids=lambda p: p.name)
def test_spec_example_requests_are_accepted(path: Path) -> None:
    data = json.loads(path.read_text())
    assert meets_openrtb_requirements(data)
    req = parse_bid_request(path.read_bytes())
    assert req.id == data["id"]
    assert len(req.imp) == len(data["imp"])
    assert req.raw == data
