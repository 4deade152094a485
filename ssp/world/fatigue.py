"""Ad fatigue: how many times, recently, a user has seen the same campaign.

Each exposure counts 1 and halves every ``half_life_s`` of simulated time, so the count is an
exponentially decayed frequency: 3 exposures in the last hour count ~3, one a week ago ~0.
A campaign is any string key; the world uses ``"<advertiser domain>|<creative id>"``.
"""

from __future__ import annotations

import math


class ExposureBook:
    """Decayed exposure counts per (user, campaign), bounded in memory."""

    def __init__(self, *, half_life_s: float, max_entries: int = 500_000) -> None:
        self.half_life_s = half_life_s
        self.max_entries = max_entries
        self._seen: dict[tuple[int, str], tuple[float, float]] = {}  # -> (count, at time)
        self._ln2 = math.log(2) / half_life_s

    def __len__(self) -> int:
        return len(self._seen)

    def count(self, user: int, campaign: str, t: float) -> float:
        """The decayed number of exposures of ``user`` to ``campaign`` before time ``t``."""
        entry = self._seen.get((user, campaign))
        if entry is None:
            return 0.0
        n, at = entry
        return n * math.exp(-self._ln2 * max(0.0, t - at))

    def record(self, user: int, campaign: str, t: float) -> float:
        """Count one exposure at ``t``; returns the count before it."""
        before = self.count(user, campaign, t)
        if len(self._seen) >= self.max_entries and (user, campaign) not in self._seen:
            self._prune(t)
        self._seen[(user, campaign)] = (before + 1.0, t)
        return before

    def _prune(self, t: float) -> None:
        """Forget what has decayed below 0.05, else the oldest half: memory stays bounded."""
        keep = {k: v for k, v in self._seen.items() if self.count(k[0], k[1], t) >= 0.05}
        if len(keep) >= self.max_entries // 2:
            by_age = sorted(keep.items(), key=lambda kv: kv[1][1])
            keep = dict(by_age[len(by_age) // 2 :])
        self._seen = keep
