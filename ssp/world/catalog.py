"""The site catalog compiled to arrays: traffic shares, audience skew, slot layouts, page URLs.

Sites and slots are the SSP's own (:class:`ssp.config.Site`, from ``[[sites]]``); this module reads
their simulated-world fields: ``share`` (of page views), ``audience`` (skew by interest),
``pages`` (URL patterns) and each slot's ``device`` (which layouts show it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ssp.config import Site, Slot
from ssp.world import taxonomy

#: Page layouts: phones get the mobile one, desktops and tablets the desktop one.
MOBILE, DESKTOP = 0, 1
_SHOWN = {"any": (MOBILE, DESKTOP), "mobile": (MOBILE,), "desktop": (DESKTOP,)}


class SiteCatalog:
    """The sites of the world, with the arrays the traffic generator draws from."""

    def __init__(self, *, sites: Sequence[Site]) -> None:
        if not any(s.slots and s.share > 0 for s in sites):
            raise ValueError("the world needs at least one site with a slot and a share > 0")
        self.sites = tuple(sites)
        n_sites, n_cats = len(self.sites), len(taxonomy.IDS)
        share = np.array([s.share if s.slots else 0.0 for s in self.sites], dtype=float)
        self.share = share / share.sum()
        self.cum_share = np.cumsum(self.share)
        self.cum_share[-1] = 1.0
        #: (sites, categories): how much more likely an interested user is to be a visitor.
        self.skew = np.ones((n_sites, n_cats), dtype=np.float32)
        for i, site in enumerate(self.sites):
            for cat, skew in site.audience.items():
                c = taxonomy.index_of(cat)
                if c == taxonomy.NONE:
                    raise ValueError(f"site {site.id!r}: audience.{cat} is not an IAB category")
                self.skew[i, c] = skew
        self.log_skew = np.log(self.skew)
        #: The site's content category index (its first known one), or taxonomy.NONE.
        self.site_cat = np.array([taxonomy.first_index(s.cat) for s in self.sites], np.int16)

        #: Every slot of every site, flat: ``slots[j]`` is on site ``slot_site[j]``.
        self.slots: list[Slot] = [slot for site in self.sites for slot in site.slots]
        self.slot_site = np.array(
            [i for i, site in enumerate(self.sites) for _ in site.slots], dtype=np.int16
        )
        self.slot_w = np.array([s.w for s in self.slots], dtype=np.int32)
        self.slot_h = np.array([s.h for s in self.slots], dtype=np.int32)
        self.slot_pos = np.array([s.pos for s in self.slots], dtype=np.int8)
        # Layouts: for site i and layout L, the flat slot indexes shown, at
        # layout_slots[layout_start[2i+L] : layout_start[2i+L] + layout_count[2i+L]].
        members: list[int] = []
        starts, counts = [], []
        offset = 0
        for site in self.sites:
            for layout in (MOBILE, DESKTOP):
                shown = [
                    offset + j for j, slot in enumerate(site.slots) if layout in _SHOWN[slot.device]
                ]
                starts.append(len(members))
                counts.append(len(shown))
                members += shown
            offset += len(site.slots)
        self.layout_slots = np.array(members, dtype=np.int32)
        self.layout_start = np.array(starts, dtype=np.int64)
        self.layout_count = np.array(counts, dtype=np.int64)

        self.pages: list[tuple[str, ...]] = []
        for site in self.sites:
            patterns = site.pages or (site.page or f"https://{site.domain}/",)
            for pattern in patterns:
                try:
                    pattern.format(id=1, date="2025/01/01")
                except (KeyError, IndexError, ValueError):
                    raise ValueError(
                        f"site {site.id!r}: page pattern {pattern!r} may only use {{id}} and {{date}}"
                    ) from None
            self.pages.append(tuple(patterns))
        self.n_pages = np.array([len(p) for p in self.pages], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.sites)

    def slots_per_page(self, mobile_share: float) -> float:
        """Expected ``/ad`` calls per page view, for a share of phone page views."""
        counts = self.layout_count.reshape(-1, 2).astype(float)
        per_site = counts[:, MOBILE] * mobile_share + counts[:, DESKTOP] * (1 - mobile_share)
        return float((self.share * per_site).sum())

    def site_index(self, site_id: str) -> int:
        for i, site in enumerate(self.sites):
            if site.id == site_id:
                return i
        raise KeyError(site_id)
