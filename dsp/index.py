"""An inverted index of campaign targeting: which campaigns a request can go to, in a few lookups.

Each campaign is one bit of a Python int. For each targeting dimension (segments, site category,
site domain, device type, OS, country/city, advertiser blocks, creative sizes) the index keeps, per
value, the set of campaigns that include it and the set that exclude it, plus the set of campaigns
that do not restrict that dimension. Matching a request is then, per dimension, a dict lookup per
value of the request and a few big-int ANDs and ORs: the cost grows with the request's values,
not with the number of campaigns. What cannot be indexed (geofence distance, dayparts, budgets,
frequency, retargeting) is checked afterwards, only for the campaigns still standing.

Geography is one rule: a campaign with countries, cities and geofences matches a user in any of
them; :meth:`CampaignIndex.match` says which campaigns still need a geofence check.
Pure: no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from dsp.targeting import RequestFacts, domain_suffixes

log = logging.getLogger(__name__)


class Dimension:
    """Include/exclude sets of one targeting dimension, as campaign bit masks."""

    __slots__ = ("exclude", "free", "include")

    def __init__(self) -> None:
        self.free = 0  # campaigns without an include list on this dimension
        self.include: dict[Hashable, int] = {}
        self.exclude: dict[Hashable, int] = {}

    def add(self, bit: int, include: Iterable[Hashable], exclude: Iterable[Hashable] = ()) -> None:
        inc = tuple(include)
        if not inc:
            self.free |= bit
        for v in inc:
            self.include[v] = self.include.get(v, 0) | bit
        for v in exclude:
            self.exclude[v] = self.exclude.get(v, 0) | bit

    def mask(self, values: Iterable[Hashable]) -> int:
        """The campaigns this dimension lets through for a request with these values."""
        m = self.free
        inc, exc = self.include, self.exclude
        if exc:
            blocked = 0
            for v in values:
                m |= inc.get(v, 0)
                blocked |= exc.get(v, 0)
            return m & ~blocked
        if inc:
            for v in values:
                m |= inc.get(v, 0)
        return m


@dataclass(frozen=True, slots=True)
class Rules:
    """One campaign's indexable targeting, normalised (see :func:`rules`)."""

    segments: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    site_cat: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    site_domain: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    devicetype: frozenset[int] = frozenset()
    os: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    cities: frozenset[str] = frozenset()
    fenced: bool = False
    adomains: frozenset[str] = frozenset()
    sizes: frozenset[tuple[int, int]] = frozenset()


def rules(
    *,
    segments: tuple[Sequence[str], Sequence[str]] = ((), ()),
    site_cat: tuple[Sequence[str], Sequence[str]] = ((), ()),
    site_domain: tuple[Sequence[str], Sequence[str]] = ((), ()),
    devicetype: Iterable[int] = (),
    os: Iterable[str] = (),
    countries: Iterable[str] = (),
    cities: Iterable[str] = (),
    fenced: bool = False,
    adomains: Iterable[str] = (),
    sizes: Iterable[tuple[int, int]] = (),
) -> Rules:
    """Rules with values normalised the way :func:`dsp.targeting.read_request` reads requests."""

    def dom(values: Sequence[str]) -> frozenset[str]:
        return frozenset(d for v in values for d in domain_suffixes(v)[:1])

    return Rules(
        segments=(frozenset(segments[0]), frozenset(segments[1])),
        site_cat=(frozenset(site_cat[0]), frozenset(site_cat[1])),
        site_domain=(dom(site_domain[0]), dom(site_domain[1])),
        devicetype=frozenset(devicetype),
        os=frozenset(o.casefold() for o in os),
        countries=frozenset(c.upper() for c in countries),
        cities=frozenset(c.casefold() for c in cities),
        fenced=fenced,
        adomains=frozenset(d.lower() for d in adomains),
        sizes=frozenset(sizes),
    )


class CampaignIndex:
    """Campaign ``i`` of ``rules`` is bit ``1 << i``."""

    __slots__ = (
        "all",
        "badv",
        "devicetype",
        "fenced",
        "geo",
        "os",
        "segments",
        "site_cat",
        "site_domain",
        "sizes",
    )

    def __init__(self, *, rules: Sequence[Rules]) -> None:
        self.all = (1 << len(rules)) - 1
        self.segments = Dimension()
        self.site_cat = Dimension()
        self.site_domain = Dimension()
        self.devicetype = Dimension()
        self.os = Dimension()
        self.geo = Dimension()
        self.fenced = 0
        self.badv: dict[str, int] = {}
        self.sizes: dict[tuple[int, int], int] = {}
        for i, r in enumerate(rules):
            bit = 1 << i
            self.segments.add(bit, *r.segments)
            self.site_cat.add(bit, *r.site_cat)
            self.site_domain.add(bit, *r.site_domain)
            self.devicetype.add(bit, r.devicetype)
            self.os.add(bit, r.os)
            places = [("country", c) for c in r.countries] + [("city", c) for c in r.cities]
            if r.fenced:  # never free: the user must be in one of its places or fences
                self.fenced |= bit
                for p in places:
                    self.geo.include[p] = self.geo.include.get(p, 0) | bit
            else:
                self.geo.add(bit, places)
            for d in r.adomains:
                self.badv[d] = self.badv.get(d, 0) | bit
            for size in r.sizes:
                self.sizes[size] = self.sizes.get(size, 0) | bit

    def match(self, facts: RequestFacts, badv: Iterable[str] = ()) -> tuple[int, int]:
        """``(eligible, needs_fence)``: the campaigns this request passes on every indexed rule,
        and those of them that pass only if the user is inside one of their geofences."""
        m = self.all & self.segments.mask(facts.segments)
        if not m:
            return 0, 0
        m &= self.site_cat.mask(facts.site_cats)
        m &= self.site_domain.mask(facts.domains)
        dt = facts.devicetype
        m &= self.devicetype.mask(() if dt is None else (dt,))
        os = facts.os
        m &= self.os.mask(() if os is None else (os,))
        if not m:
            return 0, 0
        geo = self.geo.free
        inc = self.geo.include
        if facts.country is not None:
            geo |= inc.get(("country", facts.country), 0)
        if facts.city is not None:
            geo |= inc.get(("city", facts.city), 0)
        needs_fence = m & self.fenced & ~geo
        if facts.lat is None or facts.lon is None:
            needs_fence = 0
        m &= geo | needs_fence
        for d in badv:
            blocked = self.badv.get(d.lower())
            if blocked:
                m &= ~blocked
        return m, needs_fence

    def size_mask(self, sizes: Iterable[tuple[int, int]]) -> int:
        """The campaigns with a creative of one of these sizes."""
        m = 0
        get = self.sizes.get
        for s in sizes:
            m |= get(s, 0)
        return m


def bits(mask: int) -> Iterator[int]:
    """The indexes of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
