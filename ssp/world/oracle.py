"""The ground truth as the demand side's oracle: ``truth(request, imp, creative) -> P(click)``.

A bidder that is told the truth (an "oracle" pCTR, the upper bound every learned model is
measured against) receives an :class:`Oracle` as an injected callable. It reads what a bidder
sees, an OpenRTB :class:`~exchange.openrtb.BidRequest`, and looks the user up in the world:

- the user: ``request.user["id"]`` (``u123``); someone outside the population is judged on the
  segments of ``request.user["data"][*]["segment"]`` (equal weights) with dormant intent;
- the slot: ``imp.w``/``imp.h`` and ``imp.banner.pos``; the site: ``request.site["cat"]``;
- the time: ``request.ts`` (simulated time, ``ext.gavel.ts``), else the world's latest time;
- the creative: an IAB category (``"IAB17"``), or a bid-like mapping with ``cat``, ``adomain`` and
  ``crid`` (a known advertiser's category wins over the declared one, as in the live driver).

Reading the oracle never changes the world (see :mod:`ssp.world.intent`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from exchange.openrtb import BidRequest, Imp
from ssp.world import taxonomy
from ssp.world.advertisers import campaign_key
from ssp.world.world import SimWorld

Creative = str | Mapping[str, Any]


class Oracle:
    """``oracle(request, imp, creative)`` is P(click | the ad is seen) in ``world``."""

    def __init__(self, *, world: SimWorld) -> None:
        self.world = world

    def __call__(self, request: BidRequest, imp: Imp, creative: Creative) -> float:
        return self.world.truth.p_click(**self.opportunity(request, imp, creative))

    def conversion(self, request: BidRequest, imp: Imp, creative: Creative) -> float:
        """P(conversion | click) for the same opportunity."""
        o = self.opportunity(request, imp, creative)
        return self.world.truth.p_convert(user=o["user"], ad_cat=o["ad_cat"], t=o["t"])

    def opportunity(self, request: BidRequest, imp: Imp, creative: Creative) -> dict[str, Any]:
        """The keywords of :meth:`GroundTruth.p_click` for this request, imp and creative."""
        world = self.world
        user_obj = request.user or {}
        user = world.population.index(user_obj.get("id"))
        segments: tuple[int, ...] = ()
        if user is None:
            segments = tuple(
                c for c in (taxonomy.index_of(s) for s in _segment_ids(user_obj)) if c >= 0
            )
        banner = imp.raw.get("banner")
        pos = banner.get("pos") if isinstance(banner, dict) else None
        site = request.site or {}
        if isinstance(creative, str):
            ad_cat, campaign = taxonomy.index_of(creative), ""
        else:
            adomain, cats, crid = _creative_fields(creative)
            ad_cat = world.advertisers.category_of(adomain, cats)
            campaign = campaign_key(adomain, crid)
        return {
            "user": -1 if user is None else user,
            "w": imp.w or 300,
            "h": imp.h or 250,
            "pos": pos if isinstance(pos, int) else 0,
            "ad_cat": ad_cat,
            "t": request.ts if request.ts is not None else world.epoch + world.intent.now,
            "site_cat": taxonomy.first_index(_strings(site.get("cat"))),
            "campaign": campaign,
            "segments": segments,
        }


def _creative_fields(creative: Any) -> tuple[list[str], list[str], str | None]:
    """adomain, cat and crid of a bid-like dict or of a creative object (``id``, ``adomain``,
    ``cat`` attributes, as the campaign bidder's ``dsp.campaign.Creative``)."""
    if isinstance(creative, Mapping):
        crid = creative.get("crid")
        adomain, cats = creative.get("adomain"), creative.get("cat")
    else:
        crid = getattr(creative, "crid", None) or getattr(creative, "id", None)
        adomain, cats = getattr(creative, "adomain", None), getattr(creative, "cat", None)
    return _strings(adomain), _strings(cats), crid if isinstance(crid, str) else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def _segment_ids(user: Mapping[str, Any]) -> Iterable[str]:
    data = user.get("data")
    for entry in data if isinstance(data, list) else ():
        segments = entry.get("segment") if isinstance(entry, dict) else None
        for seg in segments if isinstance(segments, list) else ():
            if isinstance(seg, dict) and isinstance(seg.get("id"), str):
                yield seg["id"]
