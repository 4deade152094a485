"""Won imps waiting for their impression and click beacons, bounded in size and age."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from exchange.bids import Bid


@dataclass(slots=True)
class Win:
    """One won imp, as the beacons need it."""

    token: str
    auction_id: str
    bid: Bid
    price_micros: int
    created: float
    billed: bool = False
    clicks: int = 0


class WinBook:
    """Wins by beacon token. The oldest go first when full or older than ``ttl_s``."""

    def __init__(self, *, capacity: int = 200_000, ttl_s: float = 3600.0) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._wins: OrderedDict[str, Win] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._wins)

    def add(self, win: Win) -> None:
        self._wins[win.token] = win
        if len(self._wins) > self.capacity:
            self._wins.popitem(last=False)
            self.evicted += 1

    def get(self, token: str) -> Win | None:
        win = self._wins.get(token)
        if win is None:
            return None
        if time.monotonic() - win.created > self.ttl_s:
            self._expire()
            return None
        return win

    def _expire(self) -> None:
        limit = time.monotonic() - self.ttl_s
        while self._wins:
            oldest = next(iter(self._wins.values()))
            if oldest.created >= limit:
                break
            self._wins.popitem(last=False)
            self.evicted += 1
