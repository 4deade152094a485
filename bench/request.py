"""The bid request every benchmark sends: what the SSP's ``/ad`` builds for a realistic page view.

One banner imp (the default world's ``news``/``top`` slot, floor 0.50), a site with publisher and
categories, a device with geo, and a user with interest segments: about 0.9 KB of JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from gavel.config import DEFAULT_CONFIG, load_world
from ssp.adrequest import parse_ad_request, to_openrtb

AD_REQUEST = {
    "site": "news",
    "slot": "top",
    "page": "https://dailyherald.example/world/europe/elections-2025",
    "ref": "https://search.example/?q=elections",
    "user": "u-5f3a9c2e",
    "segments": ["IAB12", "IAB17-44", "IAB19"],
    "device": {
        "ua": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "ip": "192.0.2.41",
        "devicetype": 4,
        "os": "iOS",
        "osv": "17.4",
        "make": "Apple",
        "model": "iPhone",
        "lang": "en",
    },
    "geo": {"lat": 48.8566, "lon": 2.3522, "country": "FRA", "city": "Paris", "utcoffset": 60},
}


def sample_request(*, request_id: str = "bench-1", tmax_ms: int = 100) -> dict[str, Any]:
    """The OpenRTB 2.6 BidRequest (a dict) the SSP builds for :data:`AD_REQUEST`."""
    sites = {s.id: s for s in load_world(DEFAULT_CONFIG).sites}
    ad = parse_ad_request(orjson.dumps(AD_REQUEST), sites)
    return to_openrtb(ad, request_id=request_id, tmax_ms=tmax_ms, currency="USD")
