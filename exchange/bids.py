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
    accepted = request.cur or (currency,)
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
            bid = _check_bid(raw, request, bidder, seat, cur, accepted, currency, bidid, dropped)
            if bid is not None:
                bids.append(bid)
    return bids, dropped


def _check_bid(
    raw: Any,
    request: BidRequest,
    bidder: str,
    seat: str,
    cur: Any,
    accepted: tuple[str, ...],
    currency: str,
    bidid: str | None,
    dropped: list[Dropped],
) -> Bid | None:
    def drop(code: int, reason: str) -> None:
        dropped.append(Dropped(bidder, bid_id, impid, code, reason))

    bid_id: str | None = None
    impid: str | None = None
    if not isinstance(raw, dict):
        drop(loss.INVALID_RESPONSE, "bid must be an object")
        return None
    bid_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    impid = raw.get("impid") if isinstance(raw.get("impid"), str) else None
    if not bid_id:
        drop(loss.INVALID_RESPONSE, "bid.id is missing")
        return None
    if impid is None or impid not in request.imp_by_id:
        drop(loss.INVALID_RESPONSE, f"bid.impid {raw.get('impid')!r} is not an imp of this request")
        return None
    price = raw.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float):
        drop(loss.MISSING_PRICE, "bid.price is missing or not a number")
        return None
    try:
        micros = float(price) * MICROS
    except OverflowError:
        micros = math.inf
    if not math.isfinite(micros) or micros <= 0:
        drop(loss.MISSING_PRICE, f"bid.price must be a finite number > 0, got {price!r}")
        return None
    if cur != currency or cur not in accepted:
        drop(loss.INVALID_RESPONSE, f"currency {cur!r} is not accepted")
        return None
    adm, nurl = raw.get("adm"), raw.get("nurl")
    adm = adm if isinstance(adm, str) and adm else None
    nurl = nurl if isinstance(nurl, str) and nurl else None
    if adm is None and nurl is None:
        drop(loss.MISSING_MARKUP, "bid has neither adm nor nurl")
        return None
    if (request.bseat and seat in request.bseat) or (request.wseat and seat not in request.wseat):
        drop(loss.SEAT_BLOCKED, f"seat {seat!r} is blocked")
        return None
    adomain = _str_tuple(raw.get("adomain"))
    if request.badv and any(d in request.badv for d in adomain):
        drop(loss.ADVERTISER_EXCLUDED, "advertiser domain is blocked (badv)")
        return None
    cats = _str_tuple(raw.get("cat"))
    if request.bcat and any(c in request.bcat or c.split("-")[0] in request.bcat for c in cats):
        drop(loss.CATEGORY_EXCLUDED, "category is blocked (bcat)")
        return None
    dealid = raw.get("dealid")
    dealid = dealid if isinstance(dealid, str) and dealid else None
    if dealid is not None and dealid not in request.imp_by_id[impid].deals:
        drop(loss.INVALID_DEAL_ID, f"dealid {dealid!r} is not a deal of imp {impid!r}")
        return None
    w, h = raw.get("w"), raw.get("h")
    return Bid(
        bidder=bidder,
        seat=seat,
        id=bid_id,
        impid=impid,
        price_micros=round(micros),
        adm=adm,
        nurl=nurl,
        burl=_str_or_none(raw.get("burl")),
        lurl=_str_or_none(raw.get("lurl")),
        adid=_str_or_none(raw.get("adid")),
        crid=_str_or_none(raw.get("crid")),
        dealid=dealid,
        adomain=adomain,
        cat=cats,
        w=w if isinstance(w, int) else None,
        h=h if isinstance(h, int) else None,
        bidid=bidid,
        currency=currency,
        raw=raw,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _str_tuple(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))
