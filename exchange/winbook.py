"""Won imps waiting for their impression and click beacons, bounded in size and age.

A win keeps a slim copy of its bid (no markup, no raw dict): at a thousand wins a second, the
full bids would hold hundreds of megabytes for beacons that only need ids, URLs and the price.
"""

from __future__ import annotations

import dataclasses
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
    created: float  # time.monotonic()
    billed: bool = False
    clicks: int = 0


def slim(bid: Bid) -> Bid:
    """The bid without what beacons never read (its markup and raw dict)."""
    return dataclasses.replace(bid, adm=None, raw={})


class WinBook:
    """Wins by beacon token. The oldest go first when full or older than ``ttl_s``."""

    def __init__(self, *, capacity: int = 100_000, ttl_s: float = 300.0) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._wins: OrderedDict[str, Win] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._wins)

    def add(self, win: Win) -> None:
        """Keep ``win`` (``win.created`` must not go back in time), dropping expired and excess wins."""
        wins = self._wins
        wins[win.token] = win
        limit = win.created - self.ttl_s
        while len(wins) > self.capacity or next(iter(wins.values())).created < limit:
            wins.popitem(last=False)
            self.evicted += 1

    def get(self, token: str) -> Win | None:
        win = self._wins.get(token)
        if win is None or time.monotonic() - win.created > self.ttl_s:
            return None
        return win
