"""The DSP's own notice URLs: building ``nurl``/``lurl``/``burl`` and reading them back.

A bid leaves with notice URLs pointing at the DSP server that made it; the exchange substitutes the
OpenRTB macros (``${AUCTION_PRICE}`` ...) and calls them; the server turns the query string back
into an :class:`~exchange.feedback.AuctionEvent` for the bidder's hooks. Pure, no I/O.

The request, imp and bid ids are known when the bid is made, so they are written literally
(URL-escaped) rather than as macros: they then survive any id, whatever characters it holds.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from exchange.errors import RequestError
from exchange.feedback import BILLING, CLICK, LOSS, WIN, AuctionEvent

N = TypeVar("N", int, float)

log = logging.getLogger(__name__)

# Query parameters the macros fill in, per notice.
_WIN_TAIL = (
    "&seat=${AUCTION_SEAT_ID}&ad=${AUCTION_AD_ID}&price=${AUCTION_PRICE}&cur=${AUCTION_CURRENCY}"
)
_BILL_TAIL = _WIN_TAIL
_LOSS_TAIL = (
    "&seat=${AUCTION_SEAT_ID}&ad=${AUCTION_AD_ID}&loss=${AUCTION_LOSS}"
    "&min_to_win=${AUCTION_MIN_TO_WIN}&cur=${AUCTION_CURRENCY}"
)
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
PATHS = {WIN: "/win", LOSS: "/loss", BILLING: "/bill", CLICK: "/click"}


class NoticeUrls:
    """Notice URL templates for one base URL (``scheme://host[:port]``, no trailing slash).

    ``kinds`` are the notices to ask for (``win``, ``loss``, ``billing``): those the bidder has
    hooks for (:func:`exchange.feedback.listens`). Asking for no more saves the exchange an HTTP
    call per bid for notices nobody reads.
    """

    __slots__ = ("base", "bill", "kinds", "loss", "win")

    def __init__(self, base: str, kinds: frozenset[str] = frozenset((WIN, LOSS, BILLING))) -> None:
        self.base = base.rstrip("/")
        self.kinds = kinds
        self.win = self.base + "/win?auction="
        self.loss = self.base + "/loss?auction="
        self.bill = self.base + "/bill?auction="

    def fill(self, response: dict[str, Any], request_id: str) -> tuple[dict[str, Any], int]:
        """A copy of ``response`` whose bids carry notice URLs where they had none, and the number
        of bids it holds (0: a no-bid).

        Only what can be filled is: a bid without string ``id``/``impid`` is left as it is (the
        exchange drops it), and ``nurl`` is added only to bids with ``adm``, because a bid without
        markup uses its ``nurl`` to fetch it. The bidder's own dicts are not modified. A
        ``seatbid`` that is not an array is passed through for the exchange to judge.
        """
        seatbids = response.get("seatbid")
        if not seatbids:
            return response, 0
        if not isinstance(seatbids, list):
            return response, 1
        auction = _escape(request_id)
        count = 0
        out = []
        for sb in seatbids:
            bids = sb.get("bid") if isinstance(sb, dict) else None
            if not isinstance(bids, list):
                out.append(sb)
                count += 1
                continue
            count += len(bids)
            out.append({**sb, "bid": [self._fill_bid(b, auction) for b in bids]})
        return {**response, "seatbid": out}, count

    def _fill_bid(self, bid: Any, auction: str) -> Any:
        if not isinstance(bid, dict):
            return bid
        bid_id, impid = bid.get("id"), bid.get("impid")
        if not (isinstance(bid_id, str) and isinstance(impid, str)):
            return bid
        kinds = self.kinds
        need_nurl = WIN in kinds and not bid.get("nurl") and bool(bid.get("adm"))
        need_lurl = LOSS in kinds and not bid.get("lurl")
        need_burl = BILLING in kinds and not bid.get("burl")
        if not (need_nurl or need_lurl or need_burl):
            return bid
        ids = auction + "&imp=" + _escape(impid) + "&bid=" + _escape(bid_id)
        bid = dict(bid)
        if need_nurl:
            bid["nurl"] = self.win + ids + _WIN_TAIL
        if need_lurl:
            bid["lurl"] = self.loss + ids + _LOSS_TAIL
        if need_burl:
            bid["burl"] = self.bill + ids + _BILL_TAIL
        return bid


def _escape(value: str) -> str:
    """``value`` for a query string (the common plain id is returned as is, cheaply)."""
    return value if _URL_SAFE(value) else quote(value, safe="")


def event_from_query(kind: str, query: Mapping[str, str]) -> AuctionEvent:
    """The event a notice URL describes; RequestError naming the parameter when one is missing
    or malformed. ``price`` is required for win and billing, ``loss`` for loss; an empty value
    (an unknown macro, substituted by "") counts as absent."""
    return AuctionEvent(
        kind=kind,
        auction_id=_required(query, "auction"),
        imp_id=_required(query, "imp"),
        bid_id=_required(query, "bid"),
        seat=query.get("seat") or None,
        ad_id=query.get("ad") or None,
        price=_float(query, "price", required=kind in (WIN, BILLING)),
        currency=query.get("cur") or None,
        loss=_int(query, "loss", required=kind == LOSS),
        min_to_win=_float(query, "min_to_win", required=False),
    )


def _required(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise RequestError(f"query parameter {name!r} is required", field=name)
    return value


def _float(query: Mapping[str, str], name: str, *, required: bool) -> float | None:
    value = _number(query, name, float, "a number", required=required)
    if value is not None and not math.isfinite(value):
        raise RequestError(
            f"query parameter {name!r} must be finite, not {query[name]!r}", field=name
        )
    return value


def _int(query: Mapping[str, str], name: str, *, required: bool) -> int | None:
    return _number(query, name, int, "an integer", required=required)


def _number(
    query: Mapping[str, str], name: str, parse: Callable[[str], N], what: str, *, required: bool
) -> N | None:
    text = query.get(name)
    if not text:
        if required:
            raise RequestError(f"query parameter {name!r} is required", field=name)
        return None
    try:
        return parse(text)
    except ValueError:
        raise RequestError(
            f"query parameter {name!r} must be {what}, not {text!r}", field=name
        ) from None
