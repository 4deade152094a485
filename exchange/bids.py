"""Bid responses: each bid checked on its own, bad bids dropped with a reason, good ones kept.

A body that is not a BidResponse at all raises :class:`InvalidResponse`; the fan-out turns that into
an ``invalid`` outcome for that bidder. Nothing here raises anything else for any input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from exchange import loss
from exchange.errors import InvalidResponse
from exchange.openrtb import MICROS, BidRequest


@dataclass(slots=True)
class Bid:
    """A valid bid, priced in micro-units (CPM) of the exchange currency."""

    bidder: str
    seat: str
    id: str
    impid: str
    price_micros: int
    adm: str | None
    nurl: str | None
    burl: str | None
    lurl: str | None
    adid: str | None
    crid: str | None
    dealid: str | None
    adomain: tuple[str, ...]
    cat: tuple[str, ...]
    w: int | None
    h: int | None
    bidid: str | None
    currency: str
    raw: dict[str, Any]

    @property
    def price(self) -> float:
        return self.price_micros / MICROS


@dataclass(slots=True, frozen=True)
class Dropped:
    """A bid that was not admitted to the auction, with an OpenRTB loss reason code."""

    bidder: str
    bid_id: str | None
    impid: str | None
    code: int
    reason: str


def parse_bid_response(
    body: bytes | dict[str, Any] | None,
    request: BidRequest,
    bidder: str,
    *,
    currency: str = "USD",
) -> tuple[list[Bid], list[Dropped]]:
    """Validate one bidder's BidResponse against the request it answers.

    Returns the admitted bids and the dropped ones. An empty body, ``{}``, a response without
    ``seatbid`` (with or without ``nbr``) or an empty ``seatbid`` is a no-bid: two empty lists.
    """
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
            checked = _check_bid(raw, request, bidder, seat, cur, cur_ok, currency, bidid)
            if type(checked) is Bid:
                bids.append(checked)
            else:
                dropped.append(checked)  # type: ignore[arg-type]
    return bids, dropped


def _check_bid(
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
    adomain = _str_tuple(get("adomain"))
    if request.badv and any(d in request.badv for d in adomain):
        reason = "advertiser domain is blocked (badv)"
        return Dropped(bidder, bid_id, impid, loss.ADVERTISER_EXCLUDED, reason)
    cats = _str_tuple(get("cat"))
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
        _str_or_none(get("burl")),
        _str_or_none(get("lurl")),
        _str_or_none(get("adid")),
        _str_or_none(get("crid")),
        dealid,
        adomain,
        cats,
        w if type(w) is int else None,
        h if type(h) is int else None,
        bidid,
        currency,
        raw,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_tuple(value: Any) -> tuple[str, ...]:
    """The strings of a JSON array (anything else: none); the common all-strings case is cheap."""
    if type(value) is not list:
        return ()
    for v in value:
        if type(v) is not str:
            return tuple(v for v in value if isinstance(v, str))
    return tuple(value)
