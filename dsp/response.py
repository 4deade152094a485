"""Building OpenRTB 2.6 BidResponse dicts from a bidder's decisions.

Pure helpers over plain data; a bidder calls them, the DSP server serialises what they return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from exchange.openrtb import BidRequest, Imp

CURRENCY = "USD"


def bid_id(request: BidRequest, imp: Imp) -> str:
    """A bid id unique within the response and the same for the same request: ``<req>-<imp>``."""
    return f"{request.id}-{imp.id}"


def make_bid(
    request: BidRequest,
    imp: Imp,
    *,
    price: float,
    adm: str,
    crid: str,
    adomain: Sequence[str] = (),
    cat: Sequence[str] = (),
    w: int | None = None,
    h: int | None = None,
    adid: str | None = None,
) -> dict[str, Any]:
    """One bid object (``seatbid[].bid[]``) on ``imp``; ``price`` is a CPM."""
    bid: dict[str, Any] = {
        "id": bid_id(request, imp),
        "impid": imp.id,
        "price": price,
        "adm": adm,
        "adid": adid if adid is not None else crid,
        "crid": crid,
        "adomain": list(adomain),
        "cat": list(cat),
    }
    if w is not None and h is not None:
        bid["w"] = w
        bid["h"] = h
    return bid


def make_response(
    request: BidRequest, bids: Iterable[dict[str, Any]], *, seat: str, cur: str = CURRENCY
) -> dict[str, Any] | None:
    """A BidResponse with one seat holding ``bids``, or ``None`` (no-bid) when there are none."""
    bid_list = list(bids)
    if not bid_list:
        return None
    return {"id": request.id, "cur": cur, "seatbid": [{"seat": seat, "bid": bid_list}]}


def may_bid(
    request: BidRequest,
    *,
    seat: str,
    adomain: Sequence[str] = (),
    cat: Sequence[str] = (),
    cur: str = CURRENCY,
) -> bool:
    """Whether the request allows this seat, advertiser, categories and currency at all.

    Mirrors the exchange's checks (``cur``, ``bseat``/``wseat``, ``badv``, ``bcat`` with IAB
    parent categories), so that a bidder does not send bids the exchange would drop.
    """
    if request.cur and cur not in request.cur:
        return False
    if seat in request.bseat or (request.wseat and seat not in request.wseat):
        return False
    if request.badv and any(d in request.badv for d in adomain):
        return False
    return not (
        request.bcat and any(c in request.bcat or c.split("-")[0] in request.bcat for c in cat)
    )


def open_banner_imps(request: BidRequest) -> Iterable[Imp]:
    """The imps an open-auction banner bid can win: a banner, and not a private (deals-only) auction."""
    return (imp for imp in request.imp if "banner" in imp.media and not imp.private)
