"""The world's advertisers, compiled for lookups: by domain, and by category for site visits.

An ad's category for the ground truth is what its advertiser sells when the world knows the
advertiser (by ``adomain``); otherwise the first known IAB category the bid declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ssp.world import taxonomy
from ssp.world.settings import Advertiser


class AdvertiserBook:
    """Advertisers by domain and by category."""

    def __init__(self, *, advertisers: Sequence[Advertiser]) -> None:
        self.advertisers = tuple(advertisers)
        self.by_domain = {a.domain.lower(): a for a in self.advertisers}
        if len(self.by_domain) != len(self.advertisers):
            raise ValueError("advertiser domains must be unique")
        self.cat = np.array([taxonomy.index_of(a.cat) for a in self.advertisers], dtype=np.int16)
        #: Per category index: (advertiser indexes, cumulative shares) of who sells it.
        self._sellers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for c in set(self.cat.tolist()):
            idx = np.flatnonzero(self.cat == c)
            share = np.array([self.advertisers[i].share for i in idx], dtype=float)
            if share.sum() > 0:
                self._sellers[c] = (idx, np.cumsum(share) / share.sum())

    def __len__(self) -> int:
        return len(self.advertisers)

    def find(self, adomain: Iterable[str]) -> Advertiser | None:
        for domain in adomain:
            found = self.by_domain.get(domain.lower())
            if found is not None:
                return found
        return None

    def category_of(self, adomain: Iterable[str], cat: Iterable[str]) -> int:
        """The category index of an ad: its known advertiser's, else the first it declares."""
        found = self.find(adomain)
        if found is not None:
            return taxonomy.index_of(found.cat)
        return taxonomy.first_index(cat)

    def sells(self, cat: int) -> bool:
        return cat in self._sellers

    def pick(self, cats: np.ndarray, u: np.ndarray) -> np.ndarray:
        """For each category in ``cats``, an advertiser index selling it, chosen by share with the
        uniforms ``u``; -1 where nobody sells the category."""
        out = np.full(cats.size, -1, dtype=np.int64)
        for c, (idx, cum) in self._sellers.items():
            here = cats == c
            if here.any():
                pick = np.minimum(np.searchsorted(cum, u[here], side="right"), idx.size - 1)
                out[here] = idx[pick]
        return out


def campaign_key(adomain: Sequence[str], crid: str | None) -> str:
    """The fatigue key of an ad: its advertiser and creative (``"runfast.example|shoe-1"``)."""
    return f"{adomain[0] if adomain else ''}|{crid or ''}"
