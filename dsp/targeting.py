"""What a bid request says about the opportunity, read once, and the time-of-week rule.

:func:`read_request` pulls the fields targeting looks at out of an OpenRTB request (user id and
segments, site or app domain and categories, device type and OS, country, city, position and UTC
offset) into a :class:`RequestFacts`, normalised for lookups: IAB categories and segments also carry
their parent (``IAB17-44`` -> ``IAB17``), a domain also carries its parent domains
(``m.news.example`` -> ``news.example``, ``example``), OS and city are case-folded, countries
upper-cased. The campaign index (:mod:`dsp.index`) matches campaigns against these in a few set
lookups. Pure: no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from dsp.clock import WEEK_MIN
from dsp.config import DaypartConfig, parse_days, parse_hhmm
from exchange.openrtb import BidRequest

log = logging.getLogger(__name__)


class RequestFacts:
    """The targeting-relevant facts of one bid request (see the module docstring)."""

    __slots__ = (
        "city",
        "country",
        "devicetype",
        "domains",
        "lat",
        "lon",
        "os",
        "segments",
        "site_cats",
        "user",
        "utcoffset",
    )

    def __init__(
        self,
        *,
        user: str | None = None,
        segments: frozenset[str] = frozenset(),
        domains: tuple[str, ...] = (),
        site_cats: frozenset[str] = frozenset(),
        devicetype: int | None = None,
        os: str | None = None,
        country: str | None = None,
        city: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        utcoffset: int | None = None,
    ) -> None:
        self.user = user
        self.segments = segments
        self.domains = domains
        self.site_cats = site_cats
        self.devicetype = devicetype
        self.os = os
        self.country = country
        self.city = city
        self.lat = lat
        self.lon = lon
        self.utcoffset = utcoffset


_CACHE_MAX = 100_000
_parents_cache: dict[tuple[str, ...], frozenset[str]] = {}
_suffix_cache: dict[str, tuple[str, ...]] = {}


def with_parents(values: Iterable[str]) -> frozenset[str]:
    """IAB-style ids with their parents: ``{"IAB17-44"}`` -> ``{"IAB17-44", "IAB17"}``."""
    key = tuple(values)
    found = _parents_cache.get(key)
    if found is not None:
        return found
    out = set()
    for v in key:
        out.add(v)
        head, sep, _ = v.partition("-")
        if sep:
            out.add(head)
    if len(_parents_cache) > _CACHE_MAX:
        _parents_cache.clear()
    found = _parents_cache[key] = frozenset(out)
    return found


def domain_suffixes(domain: str) -> tuple[str, ...]:
    """``"m.news.example"`` -> ``("m.news.example", "news.example", "example")``."""
    found = _suffix_cache.get(domain)
    if found is not None:
        return found
    name = domain.strip().lower().rstrip(".")
    parts = name.split(".") if name else []
    if len(_suffix_cache) > _CACHE_MAX:
        _suffix_cache.clear()
    found = _suffix_cache[domain] = tuple(".".join(parts[i:]) for i in range(len(parts)))
    return found


def read_request(request: BidRequest) -> RequestFacts:
    """The facts targeting needs, from the request's ``user``, ``site``/``app`` and ``device``.
    (On every bid request: written for speed, one pass, no helper calls where a test will do.)"""
    user = request.user or _EMPTY
    device = request.device or _EMPTY
    place = request.site if request.site is not None else request.app
    if place is None:
        place = _EMPTY
    geo = device.get("geo")
    if not isinstance(geo, dict):
        geo = user.get("geo")
        if not isinstance(geo, dict):
            geo = _EMPTY
    uid = user.get("id") or user.get("buyeruid") or device.get("ifa")
    domain = place.get("domain") or place.get("bundle")
    cats = place.get("cat")
    devicetype = device.get("devicetype")
    os = device.get("os")
    country = geo.get("country")
    city = geo.get("city")
    lat: Any = geo.get("lat")
    lon: Any = geo.get("lon")
    offset: Any = geo.get("utcoffset")
    return RequestFacts(
        user=uid if uid.__class__ is str and uid else None,
        segments=with_parents(_segments(user)) if "data" in user else _NONE,
        domains=domain_suffixes(domain) if domain.__class__ is str else (),
        site_cats=with_parents(_strs(cats)) if cats else _NONE,
        devicetype=devicetype if devicetype.__class__ is int else None,
        os=os.casefold() if os.__class__ is str and os else None,
        country=country.upper() if country.__class__ is str and country else None,
        city=city.casefold() if city.__class__ is str and city else None,
        lat=float(lat) if _is_number(lat) else None,
        lon=float(lon) if _is_number(lon) else None,
        utcoffset=int(offset) if _is_number(offset) and -1440 < offset < 1440 else None,
    )


_EMPTY: dict[str, Any] = {}
_NONE: frozenset[str] = frozenset()


def _segments(user: dict[str, Any]) -> Iterable[str]:
    data = user.get("data")
    if not isinstance(data, list):
        return ()
    out = []
    for d in data:
        segs = d.get("segment") if isinstance(d, dict) else None
        if isinstance(segs, list):
            for s in segs:
                sid = s.get("id") if isinstance(s, dict) else None
                if isinstance(sid, str) and sid:
                    out.append(sid)
    return out


def _strs(value: Any) -> Iterable[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else ()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


class Dayparts:
    """Windows of the week in local time: one flag per minute of the week, so a check is one
    index. Windows ending before they start run past midnight into the next day."""

    __slots__ = ("minutes",)

    def __init__(self, *, parts: Iterable[DaypartConfig]) -> None:
        minutes = bytearray(WEEK_MIN)
        for part in parts:
            start = parse_hhmm(part.start, "daypart start")
            end = parse_hhmm(part.end, "daypart end")
            length = (end - start) % 1440 or 1440
            for day in parse_days(part.days, "daypart days"):
                first = day * 1440 + start
                for m in range(first, first + length):
                    minutes[m % WEEK_MIN] = 1
        self.minutes = bytes(minutes)

    def contains(self, minute_of_week: int) -> bool:
        return bool(self.minutes[minute_of_week])
