"""The OpenRTB BidResponse the exchange answers with: the winning bid of each imp at its clearing price.

Macros in the winner's ``adm`` are substituted; its ``burl`` becomes the exchange's own impression
beacon (which fires the bidder's ``burl`` in turn); ``nurl`` and ``lurl`` are the exchange's to send
and are removed, except a ``nurl`` that serves the markup (no ``adm``), which is passed on substituted.
"""

from __future__ import annotations

from typing import Any

from exchange import loss
from exchange.engine import AuctionResult, Exchange
from exchange.macros import substitute
from exchange.openrtb import MICROS


def winning_bids(
    exchange: Exchange, result: AuctionResult, *, beacon_base: str
) -> list[tuple[int, dict[str, Any]]]:
    """(imp index, bid object as answered) for every won imp."""
    out = []
    for i, res in enumerate(result.imps):
        bid = res.winner
        if bid is None:
            continue
        values = exchange.macro_values(
            result.request.id, bid, res.price_micros, loss.WON, res.price_micros
        )
        obj = dict(bid.raw)
        obj["price"] = res.price_micros / MICROS
        obj.pop("lurl", None)
        if bid.adm is not None:
            obj["adm"] = substitute(bid.adm, values)
            obj.pop("nurl", None)
        else:
            obj["nurl"] = substitute(bid.nurl or "", values)
        obj["burl"] = f"{beacon_base}/imp?t={result.token}.{i}"
        out.append((i, obj))
    return out


def bid_response(
    exchange: Exchange, result: AuctionResult, *, beacon_base: str
) -> dict[str, Any] | None:
    """The BidResponse for ``result``, or None when no imp was won (answered as HTTP 204)."""
    seats: dict[str, list[dict[str, Any]]] = {}
    for i, obj in winning_bids(exchange, result, beacon_base=beacon_base):
        seat = result.imps[i].winner.seat  # type: ignore[union-attr]
        seats.setdefault(seat, []).append(obj)
    if not seats:
        return None
    return {
        "id": result.request.id,
        "bidid": result.token,
        "cur": exchange.settings.currency,
        "seatbid": [{"seat": seat, "bid": bids} for seat, bids in seats.items()],
    }
