"""The request bodies of the load test, built once before the load starts (no Locust here).

Two kinds of traffic:

- **media-site ad requests** for ``POST /ad``: a page view on one of the world's sites, one of its
  slots (a phone sees only the slots laid out for phones, and so on), from one of ``users``
  simulated users, each with a stable device, home city and interest segments. Sites are drawn by
  their ``share`` of the world's page views. The simulated world's own generator
  (``ssp.world.requests.ad_requests``) is used when it is there (see :func:`ad_bodies`).
- **OpenRTB bid requests** for ``POST /openrtb2/auction``: real-world requests from the shared
  conformance corpus (``<repo>/../shared/conformance/openrtb/bid_requests.jsonl``, the ``data``
  of each line, about 5% deliberately invalid) mixed with generated ones (the OpenRTB request the
  SSP itself builds for a generated ad request, some with several imps).

Every body is bytes, ready to send; each OpenRTB body says whether it meets what OpenRTB requires
(:func:`meets_openrtb`), so that the load test can tell an expected 400 from a wrong one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from exchange.errors import RequestError
from exchange.openrtb import parse_bid_request
from ssp.adrequest import parse_ad_request, to_openrtb
from ssp.config import Site, Slot

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "conformance" / "openrtb" / "bid_requests.jsonl"

#: (devicetype, os, osv, make, model, user agent, layout): OpenRTB devicetype 4 = phone,
#: 5 = tablet, 2 = personal computer; the layout picks the slots a page shows.
DEVICES: tuple[tuple[int, str, str, str, str, str, str], ...] = (
    (4, "iOS", "17.4", "Apple", "iPhone",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
     "mobile"),
    (4, "Android", "14", "Google", "Pixel 8",
     "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36",
     "mobile"),
    (5, "iPadOS", "17.4", "Apple", "iPad",
     "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
     "desktop"),
    (2, "Windows", "10", "", "",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
     "desktop"),
    (2, "macOS", "14.4", "Apple", "",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
     "desktop"),
)  # fmt: skip
DEVICE_WEIGHTS = (0.30, 0.25, 0.08, 0.25, 0.12)
CITIES: tuple[tuple[str, str, float, float, int], ...] = (
    ("New York", "USA", 40.7128, -74.0060, -300),
    ("Los Angeles", "USA", 34.0522, -118.2437, -480),
    ("London", "GBR", 51.5074, -0.1278, 0),
    ("Paris", "FRA", 48.8566, 2.3522, 60),
    ("Berlin", "DEU", 52.5200, 13.4050, 60),
    ("Tokyo", "JPN", 35.6762, 139.6503, 540),
    ("São Paulo", "BRA", -23.5505, -46.6333, -180),
    ("Sydney", "AUS", -33.8688, 151.2093, 600),
)
INTERESTS = tuple(f"IAB{i}" for i in range(1, 24))


@dataclass(frozen=True, slots=True)
class OpenRtbBody:
    body: bytes
    #: Meets what OpenRTB 2.6 requires (the SSP must auction it: 200 or 204, never 400).
    valid: bool
    #: "corpus" or "generated".
    origin: str


@dataclass(frozen=True, slots=True)
class _User:
    id: str
    device: dict[str, Any]
    layout: str
    city: tuple[str, str, float, float, int]
    segments: tuple[str, ...]


def _users(n: int, rng: random.Random) -> list[_User]:
    users = []
    for i in range(n):
        dt, os_, osv, make, model, ua, layout = rng.choices(DEVICES, DEVICE_WEIGHTS)[0]
        device: dict[str, Any] = {"ua": ua, "devicetype": dt, "os": os_, "osv": osv, "lang": "en"}
        if make:
            device["make"] = make
        if model:
            device["model"] = model
        device["ip"] = f"198.51.100.{i % 254 + 1}"
        segments = tuple(sorted(rng.sample(INTERESTS, rng.randint(0, 4))))
        users.append(_User(f"u-{i:06x}", device, layout, rng.choice(CITIES), segments))
    return users


def _slots_for(site: Site, layout: str) -> list[Slot]:
    shown = [s for s in site.slots if s.device in ("any", layout)]
    return shown or list(site.slots)


def _page(site: Site, rng: random.Random) -> str:
    if site.pages:
        pattern = rng.choice(site.pages)
        return pattern.replace("{id}", str(rng.randint(1000, 99999))).replace(
            "{date}", "2026/11/22"
        )
    base = site.page or f"https://{site.domain}/"
    return f"{base.rstrip('/')}/{rng.randint(1000, 99999)}"


def generated_ad_requests(
    sites: Sequence[Site], *, n: int = 5000, users: int = 2000, seed: int = 1
) -> list[dict[str, Any]]:
    """``n`` ``/ad`` request objects from ``users`` users over the sites (by share)."""
    visited = [s for s in sites if s.slots and s.share > 0]
    if not visited:
        raise ValueError("no site with a slot and a share > 0: nothing to request")
    rng = random.Random(seed)
    people = _users(max(1, users), rng)
    weights = [s.share for s in visited]
    out = []
    for _ in range(n):
        site = rng.choices(visited, weights)[0]
        user = rng.choice(people)
        slot = rng.choice(_slots_for(site, user.layout))
        name, country, lat, lon, offset = user.city
        ad: dict[str, Any] = {
            "site": site.id,
            "slot": slot.id,
            "page": _page(site, rng),
            "user": user.id,
            "segments": list(user.segments),
            "device": user.device,
            "geo": {
                "lat": round(lat + rng.uniform(-0.08, 0.08), 4),
                "lon": round(lon + rng.uniform(-0.08, 0.08), 4),
                "country": country,
                "city": name,
                "utcoffset": offset,
            },
        }
        if rng.random() < 0.3:
            ad["ref"] = "https://search.example/?q=" + site.id
        out.append(ad)
    return out


def ad_bodies(sites: Sequence[Site], *, n: int = 5000, seed: int = 1) -> tuple[list[bytes], str]:
    """The ``/ad`` bodies and where they came from ("ssp.world" or "config sites")."""
    world = _world_bodies(sites, n=n, seed=seed)
    if world:
        return world, "ssp.world"
    return [orjson.dumps(a) for a in generated_ad_requests(sites, n=n, seed=seed)], "config sites"


def _world_bodies(sites: Sequence[Site], *, n: int, seed: int) -> list[bytes]:
    """Bodies from the simulated world's request generator, when ``ssp.world`` has one that this
    module knows how to call (``ssp.world.requests.ad_requests(sites, n=, seed=)``); else []."""
    try:
        from ssp.world import requests as world_requests
    except ImportError:
        return []
    make = getattr(world_requests, "ad_requests", None)
    if make is None:
        return []
    return [b if isinstance(b, bytes) else orjson.dumps(b) for b in make(sites, n=n, seed=seed)]


def meets_openrtb(req: Any) -> bool:
    """Whether the SSP accepts ``req``: its own parser decides (a rejected request is answered 400).
    tests/ssp/test_conformance.py checks that parser against an independent reading of OpenRTB."""
    try:
        parse_bid_request(req if isinstance(req, dict) else orjson.dumps(req))
    except RequestError:
        return False
    return True


def corpus_bodies(path: Path = CORPUS) -> list[OpenRtbBody]:
    """The corpus' requests as sent to an exchange ([] when the corpus is not there)."""
    if not path.exists():
        return []
    out = []
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                data = orjson.loads(line)["data"]
                out.append(OpenRtbBody(orjson.dumps(data), meets_openrtb(data), "corpus"))
    return out


def generated_openrtb(
    sites: Sequence[Site], *, n: int = 2000, seed: int = 2, tmax_ms: int = 100
) -> list[OpenRtbBody]:
    """OpenRTB requests as the SSP builds them from ad requests; one in five with every slot of
    its page as its own imp (a multi-imp request)."""
    by_id = {s.id: s for s in sites}
    rng = random.Random(seed)
    out = []
    for i, ad in enumerate(generated_ad_requests(sites, n=n, seed=seed)):
        parsed = parse_ad_request(orjson.dumps(ad), by_id)
        req = to_openrtb(parsed, request_id=f"lt-{seed}-{i}", tmax_ms=tmax_ms, currency="USD")
        site = by_id[ad["site"]]
        if len(site.slots) > 1 and rng.random() < 0.2:
            first = req["imp"][0]
            req["imp"] = [
                {
                    **first,
                    "id": str(k + 1),
                    "tagid": slot.id,
                    "banner": {"w": slot.w, "h": slot.h, "format": [{"w": slot.w, "h": slot.h}]},
                    "bidfloor": slot.floor,
                }
                for k, slot in enumerate(site.slots)
            ]
        out.append(OpenRtbBody(orjson.dumps(req), True, "generated"))
    return out


def openrtb_bodies(
    sites: Sequence[Site],
    *,
    corpus_share: float = 0.5,
    n: int = 4000,
    seed: int = 2,
    corpus: Path = CORPUS,
) -> list[OpenRtbBody]:
    """``n`` OpenRTB bodies, shuffled: ``corpus_share`` of them from the corpus (cycled), the rest
    generated. Without a corpus (or with ``corpus_share`` 0), all generated."""
    real = corpus_bodies(corpus) if corpus_share > 0 else []
    n_real = round(n * corpus_share) if real else 0
    mix = [real[i % len(real)] for i in range(n_real)]
    if n - n_real > 0:
        mix += generated_openrtb(sites, n=n - n_real, seed=seed)
    random.Random(seed).shuffle(mix)
    return mix
