"""OpenRTB requests of the per-request path, built straight from the world's traffic arrays.

Live, the world's ``/ad`` body is JSON that the SSP parses (:func:`ssp.adrequest.parse_ad_request`),
turns into an OpenRTB dict (:func:`ssp.adrequest.to_openrtb`) and the exchange parses again
(:func:`exchange.openrtb.parse_bid_request`). In one process that JSON round trip and the
re-validation of data the simulator made itself were most of the cost of an auction. Here:

* :class:`SimTraffic` is the world's traffic generator with the same random draws, in the same
  order, but keeps each page view's fields as Python values (a :class:`PageView`) instead of
  serialising them to an ``/ad`` body;
* :class:`RequestBuilder` builds, per ad request, the very dict ``to_openrtb`` builds from the
  parsed body (same keys, same order, same values) and its typed views
  (:class:`exchange.openrtb.BidRequest`, :class:`exchange.openrtb.Imp`) directly. What does not
  depend on the request (a slot's floor in micro-units, media, size, tag id, currency) is taken
  once per slot from a template request that went through the real parsers; everything a bidder
  can reach (``raw`` and every dict or list in it, ``imp_by_id``, ``deals``) is a fresh object per
  request, so a bidder that mutated its request (which the Bidder contract forbids) could not
  change another request. Only immutable values (strings, numbers, tuples, frozensets) are shared.

``tests/sim/test_requests.py`` checks, request by request, that the dicts (byte for byte once
serialised) and the views (field by field) equal those of the ``/ad`` path, and that a run gives
the same results on both paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from exchange.openrtb import BidRequest, Imp, parse_bid_request
from ssp.adrequest import AdRequest, to_openrtb
from ssp.config import Site, Slot
from ssp.world import taxonomy
from ssp.world.traffic import TrafficGenerator

_NO_STRINGS: frozenset[str] = frozenset()


class PageView(NamedTuple):
    """The fields of one page view's ``/ad`` bodies (shared by the page's slots), parsed.
    Immutable; a named tuple rather than a frozen dataclass, which takes twice as long to build
    (one per page view)."""

    site: int  # catalog site index
    page: str
    user: str
    segments: tuple[str, ...]
    device: tuple[tuple[str, Any], ...]  # the /ad body's device object, in its key order
    geo: tuple[tuple[str, Any], ...]  # the OpenRTB geo object, in its key order (with type 2)
    ts: float


class SimTraffic(TrafficGenerator):
    """The world's traffic, one :class:`PageView` per ad request in ``Batch.bodies`` instead of
    a JSON body: the same page views (:meth:`TrafficGenerator._page_fields`), encoded otherwise."""

    def _bodies(
        self,
        sites: np.ndarray,
        users: np.ndarray,
        ts: np.ndarray,
        page: np.ndarray,
        slots: np.ndarray,
    ) -> list[Any]:
        ids, lang = taxonomy.IDS, self._lang
        devices = [tuple(d.items()) for d in self._devices]
        city_geo = [tuple(g.items()) for g in self._city_geo]
        views: list[PageView] = []
        for s, u, c, d, t, la, lo, url, segs in self._page_fields(sites, users, ts):
            ip = f"10.{u >> 16 & 255}.{u >> 8 & 255}.{u & 255}"
            views.append(
                PageView(
                    site=s,
                    page=url,
                    user=f"u{u}",
                    segments=tuple([ids[x] for x in segs]),
                    device=(*devices[d], ("ip", ip), ("lang", lang[c])),
                    geo=(("lat", la), ("lon", lo), *city_geo[c], ("type", 2)),
                    ts=t,
                )
            )
        return [views[p] for p in page.tolist()]


@dataclass(slots=True, frozen=True)
class _SlotParts:
    """What the requests of one slot share: immutable values only."""

    tagid: str
    w: int
    h: int
    pos: int
    bidfloor: Any  # the imp's ``bidfloor`` as to_openrtb writes it (scaled)
    floor_micros: int
    bidfloorcur: str
    media: tuple[str, ...]
    imp_w: int | None
    imp_h: int | None
    imp_tagid: str | None
    site_id: str
    domain: str
    site_cat: tuple[str, ...]
    site_name: str
    site_page: str
    publisher: str


class RequestBuilder:
    """The OpenRTB request of one ad request of :class:`SimTraffic`, raw dict and typed views."""

    def __init__(
        self,
        *,
        sites: list[Site],
        slots: list[Slot],
        slot_site: list[int],
        currency: str,
        tmax_ms: int,
        at: int,
        floor_scale: float,
    ) -> None:
        self.currency = currency
        self.tmax_ms = tmax_ms
        self.at = at
        self.slots = [
            _slot_parts(sites[slot_site[j]], slot, currency, tmax_ms, at, floor_scale)
            for j, slot in enumerate(slots)
        ]

    def build(self, rid: str, view: PageView, slot: int) -> BidRequest:
        """The request ``rid`` for ``view``'s ad request in catalog slot ``slot``: what
        ``parse_bid_request(to_openrtb(parse_ad_request(body)))`` gives, then ``at`` and the
        floor scale applied, as the ``/ad`` path of :class:`gavel.sim.market.Market` does."""
        p = self.slots[slot]
        cur = self.currency
        page = view.page or p.site_page
        w, h = p.w, p.h
        imp_raw: dict[str, Any] = {
            "id": "1",
            "tagid": p.tagid,
            "banner": {"w": w, "h": h, "format": [{"w": w, "h": h}], "pos": p.pos},
            "bidfloor": p.bidfloor,
            "bidfloorcur": cur,
            "secure": 1 if page.startswith("https") else 0,
        }
        site: dict[str, Any] = {"id": p.site_id, "domain": p.domain, "cat": list(p.site_cat)}
        if p.site_name:
            site["name"] = p.site_name
        if page:
            site["page"] = page
        if p.publisher:
            site["publisher"] = {"id": p.publisher}
        device = dict(view.device)
        device["geo"] = dict(view.geo)
        user: dict[str, Any] = {"id": view.user}
        if view.segments:
            user["data"] = [
                {
                    "id": "gavel",
                    "name": "gavel-segments",
                    "segment": [{"id": s} for s in view.segments],
                }
            ]
        ts = view.ts
        raw = {
            "id": rid,
            "imp": [imp_raw],
            "site": site,
            "device": device,
            "at": self.at,
            "tmax": self.tmax_ms,
            "cur": [cur],
            "ext": {"gavel": {"ts": ts}},
            "user": user,
        }
        imp = Imp(
            id="1",
            floor_micros=p.floor_micros,
            bidfloorcur=p.bidfloorcur,
            media=p.media,
            w=p.imp_w,
            h=p.imp_h,
            private=False,
            deals={},
            tagid=p.imp_tagid,
            raw=imp_raw,
        )
        return BidRequest(
            id=rid,
            imp=(imp,),
            tmax=self.tmax_ms,
            at=self.at,
            cur=(cur,),
            bcat=_NO_STRINGS,
            badv=_NO_STRINGS,
            bseat=_NO_STRINGS,
            wseat=_NO_STRINGS,
            site=site,
            app=None,
            device=device,
            user=user,
            test=False,
            ts=float(ts),
            raw=raw,
            imp_by_id={"1": imp},
        )


def _slot_parts(
    site: Site, slot: Slot, currency: str, tmax_ms: int, at: int, floor_scale: float
) -> _SlotParts:
    """A template request of the slot through the real builders and parsers: the typed fields
    the exchange derives from the slot's constant parts, taken from its own parser."""
    raw = to_openrtb(
        AdRequest(site=site, slot=slot, page=None, ref=None, user=None, segments=(),
                  device={}, geo={}, ts=None),
        request_id="template", tmax_ms=tmax_ms, currency=currency,
    )  # fmt: skip
    raw["at"] = at
    imp_raw = raw["imp"][0]
    if floor_scale != 1.0:
        imp_raw["bidfloor"] = round(imp_raw["bidfloor"] * floor_scale, 6)
    req = parse_bid_request(raw, currency=currency)
    # what build() assumes of the parser's view; a change in either shows here, not in results
    if req.tmax != tmax_ms or req.at != at or req.cur != (currency,) or len(req.imp) != 1:
        raise AssertionError("RequestBuilder is out of date with exchange.openrtb")
    imp = req.imp[0]
    if imp.id != "1" or imp.private or imp.deals:
        raise AssertionError("RequestBuilder is out of date with exchange.openrtb")
    return _SlotParts(
        tagid=slot.id,
        w=slot.w,
        h=slot.h,
        pos=slot.pos,
        bidfloor=imp_raw["bidfloor"],
        floor_micros=imp.floor_micros,
        bidfloorcur=imp.bidfloorcur,
        media=imp.media,
        imp_w=imp.w,
        imp_h=imp.h,
        imp_tagid=imp.tagid,
        site_id=site.id,
        domain=site.domain,
        site_cat=tuple(site.cat),
        site_name=site.name,
        site_page=site.page,
        publisher=site.publisher,
    )
