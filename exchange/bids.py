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
    if type(body) is dict:  # an in-process bidder's answer (the simulator's hot path)
        obj: Any = body
    else:
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
    bidid = obj.get("bidid")
    if not isinstance(bidid, str):
        bidid = None
    seat_rules = bool(request.bseat or request.wseat)
    bids: list[Bid] = []
    dropped: list[Dropped] = []
    for sb in seatbids:
        sb_bids = sb.get("bid") if isinstance(sb, dict) else None
        if not isinstance(sb_bids, list):
            dropped.append(
                Dropped(bidder, None, None, loss.INVALID_RESPONSE, "seatbid.bid must be an array")
            )
            continue
        seat = sb.get("seat")
        seat = seat if isinstance(seat, str) and seat else bidder
        # bseat/wseat judge the seat, the same for every bid of the seatbid: decided once here
        # (None, for a str subclass that could misbehave: per bid, when a bid gets that far)
        blocked = (
            (_seat_blocked(request, seat) if type(seat) is str else None) if seat_rules else False
        )
        for raw in sb_bids:
            checked = _check_bid(raw, request, bidder, seat, blocked, cur, cur_ok, currency, bidid)
            if type(checked) is Bid:
                bids.append(checked)
            else:
                dropped.append(checked)  # type: ignore[arg-type]
    return bids, dropped


def _seat_blocked(request: BidRequest, seat: str) -> bool:
    """Whether ``bseat`` or ``wseat`` (if any) keeps ``seat`` out."""
    return bool(
        (request.bseat and seat in request.bseat) or (request.wseat and seat not in request.wseat)
    )


def _check_bid(
    raw: Any,
    request: BidRequest,
    bidder: str,
    seat: str,
    blocked: bool | None,
    cur: Any,
    cur_ok: bool,
    currency: str,
    bidid: str | None,
) -> Bid | Dropped:
    """One bid, admitted (a :class:`Bid`) or dropped with its reason (a :class:`Dropped`).

    Checks in this order, the first failure naming the reason: the bid is an object; ``id``;
    ``impid`` of this request; ``price`` a finite number > 0; the response's currency; markup
    (``adm`` or ``nurl``); the seat (``blocked``: :func:`_seat_blocked`, None to ask it here);
    ``badv``; ``bcat`` (with IAB parent categories); ``dealid`` a deal of the imp. The optional
    strings are kept when they are non-empty strings, ``w``/``h`` when they are ints.
    Written for speed (this is the exchange's hot path, per bid): no helper calls per field.
    """
    if not isinstance(raw, dict):
        return Dropped(bidder, None, None, loss.INVALID_RESPONSE, "bid must be an object")
    get = raw.get
    bid_id = get("id")
    impid = get("impid")
    if not isinstance(bid_id, str):
        bid_id = None
    if not isinstance(impid, str):
        impid = None
    if not bid_id:
        return Dropped(bidder, bid_id, impid, loss.INVALID_RESPONSE, "bid.id is missing")
    imp = request.imp_by_id.get(impid) if impid is not None else None
    if imp is None or impid is None:
        reason = f"bid.impid {get('impid')!r} is not an imp of this request"
        return Dropped(bidder, bid_id, impid, loss.INVALID_RESPONSE, reason)
    price = get("price")
    if type(price) is float:
        micros = price * MICROS  # a float never overflows here: inf, dropped below
    elif isinstance(price, bool) or not isinstance(price, int | float):
        return Dropped(
            bidder, bid_id, impid, loss.MISSING_PRICE, "bid.price is missing or not a number"
        )
    else:
        try:
            micros = float(price) * MICROS
        except OverflowError:
            micros = math.inf
    if not 0 < micros < math.inf:  # NaN too
        reason = f"bid.price must be a finite number > 0, got {price!r}"
        return Dropped(bidder, bid_id, impid, loss.MISSING_PRICE, reason)
    if not cur_ok:
        return Dropped(
            bidder, bid_id, impid, loss.INVALID_RESPONSE, f"currency {cur!r} is not accepted"
        )
    adm = get("adm")
    nurl = get("nurl")
    if not (isinstance(adm, str) and adm):
        adm = None
    if not (isinstance(nurl, str) and nurl):
        nurl = None
    if adm is None and nurl is None:
        return Dropped(bidder, bid_id, impid, loss.MISSING_MARKUP, "bid has neither adm nor nurl")
    if blocked or (blocked is None and _seat_blocked(request, seat)):
        return Dropped(bidder, bid_id, impid, loss.SEAT_BLOCKED, f"seat {seat!r} is blocked")
    adomain = _str_tuple(get("adomain"))
    if request.badv and any(d in request.badv for d in adomain):
        reason = "advertiser domain is blocked (badv)"
        return Dropped(bidder, bid_id, impid, loss.ADVERTISER_EXCLUDED, reason)
    cats = _str_tuple(get("cat"))
    if request.bcat and any(c in request.bcat or c.split("-")[0] in request.bcat for c in cats):
        return Dropped(bidder, bid_id, impid, loss.CATEGORY_EXCLUDED, "category is blocked (bcat)")
    dealid = get("dealid")
    if dealid is not None:  # the common case: no deal
        if not (isinstance(dealid, str) and dealid):
            dealid = None
        elif dealid not in imp.deals:
            reason = f"dealid {dealid!r} is not a deal of imp {impid!r}"
            return Dropped(bidder, bid_id, impid, loss.INVALID_DEAL_ID, reason)
    w = get("w")
    h = get("h")
    burl = get("burl")
    lurl = get("lurl")
    adid = get("adid")
    crid = get("crid")
    return Bid(
        bidder,
        seat,
        bid_id,
        impid,
        round(micros),
        adm,
        nurl,
        burl if isinstance(burl, str) and burl else None,
        lurl if isinstance(lurl, str) and lurl else None,
        adid if isinstance(adid, str) and adid else None,
        crid if isinstance(crid, str) and crid else None,
        dealid,
        adomain,
        cats,
        w if type(w) is int else None,
        h if type(h) is int else None,
        bidid,
        currency,
        raw,
    )


def _str_tuple(value: Any) -> tuple[str, ...]:
    """The strings of a JSON array (anything else: none); the common all-strings case is cheap."""
    if type(value) is not list:
        return ()
    for v in value:
        if type(v) is not str:
            return tuple(v for v in value if isinstance(v, str))
    return tuple(value)
