"""Campaigns ready to bid: a campaign file's entries compiled for fast matching. Pure.

:func:`compile_campaigns` turns each :class:`~dsp.config.CampaignConfig` into a :class:`Campaign`
(budgets in CPM micro-units, creatives by size, dayparts as a minute-of-week table, geofences, its
pricing strategy and pacer) and builds the :class:`~dsp.index.CampaignIndex` over all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from dsp.config import CampaignConfig, parse_time
from dsp.creative import banner_html
from dsp.geo import Fence
from dsp.index import CampaignIndex, rules
from dsp.pacing import Pacer
from dsp.registry import make_strategy
from dsp.state import budget_units
from dsp.targeting import Dayparts, with_parents
from exchange.config import ConfigError
from exchange.openrtb import MICROS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Creative:
    """One creative as it goes into a bid."""

    id: str
    w: int
    h: int
    cat: tuple[str, ...]
    adomain: tuple[str, ...]
    adm: str
    #: ``cat`` with IAB parents, to check against a request's ``bcat`` in one set operation.
    cat_all: frozenset[str]


class Campaign:
    """A compiled campaign (see the module docstring). ``bit`` is its bit in the index."""

    __slots__ = (
        "adomain",
        "advertiser",
        "audience_cats",
        "audience_window_s",
        "bit",
        "budget_daily",
        "budget_total",
        "config",
        "cpc_goal",
        "creatives",
        "dayparts",
        "end",
        "fences",
        "first_creative",
        "id",
        "index",
        "max_bid_micros",
        "needs_user",
        "paced",
        "pacer",
        "per_day",
        "per_hour",
        "special",
        "start",
        "strategy",
        "utcoffset",
        "value_per_click",
    )

    def __init__(self, *, config: CampaignConfig, index: int) -> None:
        c = config
        where = f"campaign {c.id!r}"
        self.config = c
        self.id = c.id
        self.index = index
        self.bit = 1 << index
        self.adomain = c.adomain.lower()
        self.advertiser = c.advertiser or c.adomain
        self.budget_total = budget_units(c.budget_total)
        self.budget_daily = budget_units(c.budget_daily)
        self.utcoffset = c.utcoffset
        self.value_per_click = c.value_per_click
        self.cpc_goal = c.cpc_goal
        self.max_bid_micros = round(c.max_bid * MICROS) if c.max_bid else 0
        self.start = parse_time(c.start, f"{where}: start")
        self.end = parse_time(c.end, f"{where}: end")
        t = c.targeting
        self.dayparts = Dayparts(parts=t.dayparts) if t.dayparts else None
        self.fences = tuple(Fence(lat=f.lat, lon=f.lon, radius_m=f.radius_m) for f in t.geofences)
        rt = t.retargeting
        self.audience_window_s = rt.days * 86_400 if rt is not None else None
        self.audience_cats = frozenset(rt.categories) if rt is not None else frozenset()
        self.per_hour = c.frequency.per_hour
        self.per_day = c.frequency.per_day
        self.needs_user = bool(rt is not None or self.per_hour or self.per_day)
        creatives: dict[tuple[int, int], list[Creative]] = {}
        for cr in c.creatives:
            cat = cr.cat or c.cat
            adomain = (cr.adomain or c.adomain).lower()
            creative = Creative(
                id=cr.id,
                w=cr.w,
                h=cr.h,
                cat=tuple(cat),
                adomain=(adomain,),
                adm=cr.html or banner_html(self.advertiser, cr.w, cr.h),
                cat_all=with_parents(cat),
            )
            creatives.setdefault((cr.w, cr.h), []).append(creative)
        self.creatives = {size: tuple(found) for size, found in creatives.items()}
        #: The creative of each size when the request blocks nothing (the common case).
        self.first_creative = {size: found[0] for size, found in creatives.items()}
        #: Whether any check beyond budget and pacing applies (flight, fences, dayparts, user).
        self.special = bool(
            self.start is not None
            or self.end is not None
            or self.fences
            or self.dayparts is not None
            or self.needs_user
        )
        try:
            self.strategy = make_strategy(c.strategy, c.params)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        self.pacer = Pacer(mode=c.pacing)
        self.paced = self.pacer.even

    def live(self, now: float) -> bool:
        """Within its flight dates."""
        return (self.start is None or now >= self.start) and (self.end is None or now < self.end)

    def creative_for(
        self, sizes: Sequence[tuple[int, int]], bcat: frozenset[str], badv: frozenset[str]
    ) -> Creative | None:
        """The first creative of the first fitting size that the request does not block."""
        if not bcat and not badv:
            first = self.first_creative
            for size in sizes:
                cr = first.get(size)
                if cr is not None:
                    return cr
            return None
        for size in sizes:
            for cr in self.creatives.get(size, ()):
                if bcat and not bcat.isdisjoint(cr.cat_all):
                    continue
                if badv and cr.adomain[0] in badv:
                    continue
                return cr
        return None

    def __repr__(self) -> str:
        return f"Campaign({self.id!r})"


def compile_campaigns(configs: Sequence[CampaignConfig]) -> tuple[list[Campaign], CampaignIndex]:
    """The campaigns, in file order, and their targeting index."""
    campaigns = [Campaign(config=c, index=i) for i, c in enumerate(configs)]
    rule_list = []
    for camp in campaigns:
        t = camp.config.targeting
        rule_list.append(
            rules(
                segments=(t.segments.include, t.segments.exclude),
                site_cat=(t.site_cat.include, t.site_cat.exclude),
                site_domain=(t.site_domain.include, t.site_domain.exclude),
                devicetype=t.devicetype,
                os=t.os,
                countries=t.countries,
                cities=t.cities,
                fenced=bool(camp.fences),
                adomains=(camp.adomain,),
                sizes=camp.creatives.keys(),
            )
        )
    return campaigns, CampaignIndex(rules=rule_list)
