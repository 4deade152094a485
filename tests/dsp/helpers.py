"""Builders for the campaign tests: inline campaign files, OpenRTB requests, notices."""

from __future__ import annotations

from typing import Any

from dsp.bidders.campaign import CampaignBidder
from dsp.registry import make_bidder
from exchange.feedback import AuctionEvent
from exchange.openrtb import BidRequest, parse_bid_request

#: Wednesday 2025-06-04 17:30 UTC.
WED_1730_UTC = 1_749_058_200.0


def campaign(cid: str = "c1", **changes: Any) -> dict[str, Any]:
    """One campaign table: a constant 2.0 CPM, one 300x250 creative, no limits."""
    c: dict[str, Any] = {
        "id": cid,
        "adomain": f"{cid}.example",
        "cat": ["IAB22"],
        "strategy": "constant",
        "params": {"cpm": 2.0},
        "creatives": [{"id": f"{cid}-300x250", "w": 300, "h": 250}],
    }
    c.update(changes)
    return c


def config(
    *campaigns: dict[str, Any], ctr: float = 0.002, model: str = "constant", **dsp: Any
) -> dict[str, Any]:
    return {
        "dsp": {"name": "t", "seat": "t", "ctr": {"model": model, "ctr": ctr}, **dsp},
        "campaigns": list(campaigns) or [campaign()],
    }


def bidder(
    *campaigns: dict[str, Any],
    seed: int = 1,
    model: str = "constant",
    dsp: dict[str, Any] | None = None,
    **kwargs: Any,
) -> CampaignBidder:
    """A campaign bidder for ``campaigns``; ``dsp`` adds keys to the [dsp] table."""
    cfg = config(*campaigns, model=model, **(dsp or {}))
    b = make_bidder("campaign", {"config": cfg, "seed": seed, **kwargs})
    assert isinstance(b, CampaignBidder)
    return b


def raw_request(
    rid: str = "r1",
    *,
    ts: float | None = WED_1730_UTC,
    w: int = 300,
    h: int = 250,
    floor: float = 0.5,
    site: tuple[str, list[str]] | None = ("news.example", ["IAB12"]),
    user: str | None = "u1",
    segments: list[str] | None = None,
    device: dict[str, Any] | None = None,
    geo: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": rid,
        "imp": [{"id": "1", "banner": {"w": w, "h": h}, "bidfloor": floor}],
        "cur": ["USD"],
    }
    if ts is not None:
        raw["ext"] = {"gavel": {"ts": ts}}
    if site is not None:
        raw["site"] = {"domain": site[0], "cat": site[1]}
    dev = dict(device if device is not None else {"devicetype": 4, "os": "iOS"})
    if geo is not None:
        dev["geo"] = geo
    raw["device"] = dev
    if user is not None:
        raw["user"] = {"id": user}
        if segments:
            raw["user"]["data"] = [{"id": "d", "segment": [{"id": s} for s in segments]}]
    raw.update(top)
    return raw


def request(rid: str = "r1", **kwargs: Any) -> BidRequest:
    return parse_bid_request(raw_request(rid, **kwargs), strict=False)


def bids(response: dict[str, Any] | None) -> list[dict[str, Any]]:
    if response is None:
        return []
    return [b for sb in response["seatbid"] for b in sb["bid"]]


def price(b: CampaignBidder, req: BidRequest) -> float | None:
    """The one bid's price, or None for no bid."""
    found = bids(b.bid(req))
    assert len(found) <= 1
    return found[0]["price"] if found else None


def crid(b: CampaignBidder, req: BidRequest) -> str | None:
    found = bids(b.bid(req))
    return found[0]["crid"] if found else None


def event(kind: str, req_id: str, *, imp: str = "1", **fields: Any) -> AuctionEvent:
    return AuctionEvent(
        kind=kind, auction_id=req_id, imp_id=imp, bid_id=f"{req_id}-{imp}", **fields
    )


def win_and_bill(b: CampaignBidder, req_id: str, price: float) -> None:
    b.on_win(event("win", req_id, price=price))
    b.on_billing(event("billing", req_id, price=price))
