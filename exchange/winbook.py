"""Won imps waiting for their impression and click beacons, bounded in size and age.

A win keeps only what its beacons need (ids, URLs, the price; no markup, no raw dict), packed in
one flat tuple of strings and numbers: the bid's ``adomain`` and ``cat`` tuples go in as one
string each. Python's cyclic garbage collector stops tracking such a tuple the first time a
collection sees it, so the book's hundred thousand wins stay out of the older generations, whose
collections would otherwise walk every one of them and stop the event loop for tens to hundreds
of milliseconds (benchmark 3 in bench/RESULTS.md). A tuple nested in it would keep it tracked
until a second collection, as the young collections reorder what they keep: the wins of the last
second then filled the middle generation (15,700 of them at 1,200 auctions/s).
:meth:`WinBook.get`, :meth:`~WinBook.bill` and :meth:`~WinBook.click` return a :class:`Win` built
from the packed tuple: a copy, so the book changes only through them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from exchange.bids import Bid


@dataclass(slots=True)
class Win:
    """One won imp, as the beacons need it (``bid`` has no markup and an empty ``raw``)."""

    token: str
    auction_id: str
    bid: Bid
    price_micros: int
    created: float  # time.monotonic()
    billed: bool = False
    clicks: int = 0


# The packed tuple: (created, auction_id, price_micros, billed, clicks, then the bid's fields in
# Bid's order without adm and raw, adomain and cat as strings).
_CREATED, _BILLED, _CLICKS = 0, 3, 4
_SEP = "\x1f"  # the ASCII unit separator: joins adomain and cat


def _flat(values: tuple[str, ...]) -> str | tuple[str, ...] | None:
    """A tuple of strings as one string (None for none); kept as it is in the odd case that a
    string holds the separator (that win is then untracked one collection later)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0] if _SEP not in values[0] else values
    joined = _SEP.join(values)
    return joined if joined.count(_SEP) == len(values) - 1 else values


def _unflat(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple):
        return value
    return tuple(value.split(_SEP)) if _SEP in value else (value,)


def _pack(auction_id: str, bid: Bid, price_micros: int, created: float) -> tuple[Any, ...]:
    b = bid
    return (
        created,
        auction_id,
        price_micros,
        False,
        0,
        b.bidder,
        b.seat,
        b.id,
        b.impid,
        b.price_micros,
        b.nurl,
        b.burl,
        b.lurl,
        b.adid,
        b.crid,
        b.dealid,
        _flat(b.adomain),
        _flat(b.cat),
        b.w,
        b.h,
        b.bidid,
        b.currency,
    )


def _unpack(token: str, t: tuple[Any, ...]) -> Win:
    bidder, seat, bid_id, impid, bid_price, nurl, burl, lurl, adid, crid, dealid = t[5:16]
    adomain, cat, w, h, bidid, currency = t[16:22]
    bid = Bid(
        bidder, seat, bid_id, impid, bid_price, None, nurl, burl, lurl, adid, crid, dealid,
        _unflat(adomain), _unflat(cat), w, h, bidid, currency, {},
    )  # fmt: skip
    return Win(token, t[1], bid, t[2], t[_CREATED], t[_BILLED], t[_CLICKS])


class WinBook:
    """Wins by beacon token. The oldest go first when full or older than ``ttl_s``."""

    def __init__(self, *, capacity: int = 100_000, ttl_s: float = 300.0) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._wins: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._wins)

    def add(self, token: str, auction_id: str, bid: Bid, price_micros: int, created: float) -> None:
        """Keep a win (``created``, ``time.monotonic()``, must not go back in time), dropping
        expired and excess wins."""
        wins = self._wins
        wins[token] = _pack(auction_id, bid, price_micros, created)
        limit = created - self.ttl_s
        while len(wins) > self.capacity or next(iter(wins.values()))[_CREATED] < limit:
            wins.popitem(last=False)
            self.evicted += 1

    def _live(self, token: str) -> tuple[Any, ...] | None:
        packed = self._wins.get(token)
        if packed is None or time.monotonic() - packed[_CREATED] > self.ttl_s:
            return None
        return packed

    def get(self, token: str) -> Win | None:
        """The win of ``token`` (a copy), or None if unknown or expired."""
        packed = self._live(token)
        return None if packed is None else _unpack(token, packed)

    def bill(self, token: str) -> Win | None:
        """Mark the win billed and return it; None if unknown, expired or billed already."""
        packed = self._live(token)
        if packed is None or packed[_BILLED]:
            return None
        packed = (*packed[:_BILLED], True, *packed[_BILLED + 1 :])
        self._wins[token] = packed
        return _unpack(token, packed)

    def click(self, token: str) -> Win | None:
        """Count a click on the win and return it (with the new count); None if unknown or expired."""
        packed = self._live(token)
        if packed is None:
            return None
        packed = (*packed[:_CLICKS], packed[_CLICKS] + 1, *packed[_CLICKS + 1 :])
        self._wins[token] = packed
        return _unpack(token, packed)
