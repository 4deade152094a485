"""The simple ad request a media site sends to ``POST /ad``, and the OpenRTB request built from it.

Body (JSON object)::

    {"site": "news", "slot": "top",              # required: ids from the SSP's catalog
     "page": "https://...", "ref": "...",        # optional
     "user": "u-123", "segments": ["IAB17"],     # optional: user id and interest segments
     "device": {"ua": ..., "ip": ..., "devicetype": 2, "os": "iOS", "lang": "en"},
     "geo": {"lat": 48.85, "lon": 2.35, "country": "FRA", "city": "Paris", "utcoffset": 60},
     "ts": 1795000000.0}                         # optional: the event's time (unix seconds)

``ts`` lets a simulated world run on its own clock: it reaches bidders as ``ext.gavel.ts`` of the
bid request (read as ``BidRequest.ts``), so dayparts, pacing and frequency caps follow simulated time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exchange.errors import RequestError
from exchange.openrtb import loads_object
from ssp.config import Site, Slot

_DEVICE_KEYS = {
    "ua": str,
    "ip": str,
    "devicetype": int,
    "os": str,
    "osv": str,
    "make": str,
    "model": str,
    "lang": str,
}
_GEO_KEYS = {
    "lat": float,
    "lon": float,
    "country": str,
    "region": str,
    "city": str,
    "zip": str,
    "utcoffset": int,
}


@dataclass(slots=True, frozen=True)
class AdRequest:
    site: Site
    slot: Slot
    page: str | None
    ref: str | None
    user: str | None
    segments: tuple[str, ...]
    device: dict[str, Any]
    geo: dict[str, Any]
    ts: float | None = None


def parse_ad_request(body: bytes, sites: dict[str, Site]) -> AdRequest:
    obj = loads_object(body, what="ad request")
    site_id = obj.get("site")
    if not isinstance(site_id, str) or not site_id:
        raise RequestError("site is required (a site id of the catalog)", field="site")
    site = sites.get(site_id)
    if site is None:
        raise RequestError(f"unknown site {site_id!r}", field="site")
    slot_id = obj.get("slot")
    if not isinstance(slot_id, str) or not slot_id:
        raise RequestError("slot is required (a slot id of the site)", field="slot")
    slot = site.slot_by_id.get(slot_id)
    if slot is None:
        raise RequestError(f"site {site_id!r} has no slot {slot_id!r}", field="slot")
    segments = obj.get("segments") or []
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        raise RequestError("segments must be an array of strings", field="segments")
    geo = _typed(obj.get("geo"), "geo", _GEO_KEYS)
    if not -90 <= geo.get("lat", 0) <= 90:
        raise RequestError("geo.lat must be between -90 and 90", field="geo.lat")
    if not -180 <= geo.get("lon", 0) <= 180:
        raise RequestError("geo.lon must be between -180 and 180", field="geo.lon")
    ts = obj.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int | float) or ts < 0):
        raise RequestError("ts must be a unix time in seconds (a number >= 0)", field="ts")
    return AdRequest(
        site=site,
        slot=slot,
        page=_opt_str(obj, "page"),
        ref=_opt_str(obj, "ref"),
        user=_opt_str(obj, "user"),
        segments=tuple(segments),
        device=_typed(obj.get("device"), "device", _DEVICE_KEYS),
        geo=geo,
        ts=float(ts) if ts is not None else None,
    )


def to_openrtb(ad: AdRequest, *, request_id: str, tmax_ms: int, currency: str) -> dict[str, Any]:
    """The OpenRTB 2.6 BidRequest the SSP sends for ``ad``: one banner imp for the slot."""
    site, slot = ad.site, ad.slot
    imp: dict[str, Any] = {
        "id": "1",
        "tagid": slot.id,
        "banner": {
            "w": slot.w,
            "h": slot.h,
            "format": [{"w": slot.w, "h": slot.h}],
            "pos": slot.pos,
        },
        "bidfloor": slot.floor,
        "bidfloorcur": currency,
        "secure": 1 if (ad.page or site.page).startswith("https") else 0,
    }
    site_obj: dict[str, Any] = {"id": site.id, "domain": site.domain, "cat": list(site.cat)}
    if site.name:
        site_obj["name"] = site.name
    page = ad.page or site.page
    if page:
        site_obj["page"] = page
    if ad.ref:
        site_obj["ref"] = ad.ref
    if site.publisher:
        site_obj["publisher"] = {"id": site.publisher}
    device = dict(ad.device)
    if ad.geo:
        device["geo"] = {**ad.geo, "type": 2}
    req: dict[str, Any] = {
        "id": request_id,
        "imp": [imp],
        "site": site_obj,
        "device": device,
        "at": 2,
        "tmax": tmax_ms,
        "cur": [currency],
    }
    if ad.ts is not None:
        req["ext"] = {"gavel": {"ts": ad.ts}}
    if ad.user or ad.segments:
        user: dict[str, Any] = {}
        if ad.user:
            user["id"] = ad.user
        if ad.segments:
            user["data"] = [
                {
                    "id": "gavel",
                    "name": "gavel-segments",
                    "segment": [{"id": s} for s in ad.segments],
                }
            ]
        req["user"] = user
    return req


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(f"{key} must be a string", field=key)
    return value


def _typed(value: Any, where: str, keys: dict[str, type]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"{where} must be an object", field=where)
    out: dict[str, Any] = {}
    for key, v in value.items():
        tp = keys.get(key)
        if tp is None:
            raise RequestError(
                f"unknown key {key!r} (expected one of {', '.join(keys)})", field=f"{where}.{key}"
            )
        if tp is float and isinstance(v, int | float) and not isinstance(v, bool):
            v = float(v)
        elif not isinstance(v, tp) or isinstance(v, bool):
            raise RequestError(f"{where}.{key} must be {tp.__name__}", field=f"{where}.{key}")
        out[key] = v
    return out
