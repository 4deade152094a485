"""What the campaign bidder works out once per bid request (kept apart from the bidding loop).

:class:`Turn`: each time zone's calendar day, share of the day gone and minute of the week, the
campaigns budget and pacing admitted; :class:`PctrCache`: the pCTR of
each creative for one imp, computed on first use; :func:`imp_sizes`: the sizes an imp takes.
Pure: no I/O.
"""

from __future__ import annotations

import logging
from typing import Any

from dsp import clock
from dsp.campaign import Creative
from dsp.ctr import CtrModel
from dsp.targeting import RequestFacts
from exchange.openrtb import BidRequest, Imp

log = logging.getLogger(__name__)

_UNSET = object()


class Turn:
    """What one request computes once: each time zone's day and share of the day gone, and the
    campaigns budget and pacing admitted (or not) so far."""

    __slots__ = ("admitted", "minutes", "now", "zones")

    def __init__(self, now: float) -> None:
        self.now = now
        self.zones: dict[int, tuple[int, float]] = {}
        self.minutes: dict[int, int] = {}
        self.admitted: dict[int, bool] = {}

    def minute_of_week(self, utcoffset: int) -> int:
        m = self.minutes.get(utcoffset)
        if m is None:
            m = self.minutes[utcoffset] = clock.minute_of_week(self.now, utcoffset)
        return m

    def zone(self, utcoffset: int) -> tuple[int, float]:
        """(calendar day, share of the day gone) at ``utcoffset``: :func:`dsp.clock.day_index`
        and :func:`dsp.clock.day_share`, in one step."""
        z = self.zones.get(utcoffset)
        if z is None:
            day, seconds = divmod(self.now + utcoffset * 60, clock.DAY_S)
            z = self.zones[utcoffset] = (int(day), seconds / clock.DAY_S)
        return z


def imp_sizes(imp: Imp) -> list[tuple[int, int]]:
    """The sizes an imp takes: ``w``x``h`` first, then ``banner.format`` in order."""
    out = []
    if imp.w and imp.h:
        out.append((imp.w, imp.h))
    banner = imp.raw.get("banner")
    fmt = banner.get("format") if isinstance(banner, dict) else None
    if isinstance(fmt, list):
        for f in fmt:
            if isinstance(f, dict):
                w, h = f.get("w"), f.get("h")
                if isinstance(w, int) and isinstance(h, int) and (w, h) not in out:
                    out.append((w, h))
    return out


class PctrCache:
    """pCTR per creative for one imp, computed on first use (a strategy may never ask)."""

    __slots__ = ("_base", "_by_category", "_cache", "_facts", "_imp", "_model", "_now", "_request")

    def __init__(
        self,
        *,
        model: CtrModel,
        by_category: bool,
        request: BidRequest,
        imp: Imp,
        facts: RequestFacts,
        now: float,
    ) -> None:
        self._model = model
        self._by_category = by_category
        self._request = request
        self._imp = imp
        self._facts = facts
        self._now = now
        self._base: Any = _UNSET
        self._cache: dict[Any, float] = {}

    def base(self) -> Any:
        if self._base is _UNSET:
            facts = self._facts
            hour = int((self._now + (facts.utcoffset or 0) * 60) % clock.DAY_S) // clock.HOUR_S
            self._base = self._model.base(self._request, self._imp, facts, hour)
        return self._base

    def __call__(self, creative: Creative) -> float:
        key: Any = creative.cat if self._by_category else id(creative)
        p = self._cache.get(key)
        if p is None:
            base = self._base if self._base is not _UNSET else self.base()
            p = self._cache[key] = self._model.predict(base, self._request, self._imp, creative)
        return p

    def features(self, creative: Creative) -> Any:
        model = self._model
        return model.features(self.base(), creative) if model.learns else None
