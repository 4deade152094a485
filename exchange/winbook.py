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

The wins are kept in segments: dicts of at most :data:`SEGMENT` wins each, the oldest dropped
when emptied. One dict of a hundred thousand wins rebuilds its table from time to time as wins
come and go (every 74,762 adds at a steady 100,000), copying every entry while the event loop
waits: 8 ms on an idle core, 12-17 ms in a loaded SSP, one of the pauses not made by the garbage
collector that made answers late in benchmark 3 (bench/RESULTS.md). A segment's table is never
rebuilt larger than :data:`SEGMENT` wins, and takes no more wins once full, so no add copies more
than a few thousand entries. The order of the wins, for dropping the oldest, is a deque of their
tokens, which grows and shrinks by fixed blocks.
"""

from __future__ import annotations

import time
from collections import deque
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


#: The most wins in one of the book's dicts: growing one copies up to ~2/3 of this many entries
#: (tens of microseconds); a lookup of an unknown token tries every segment (~25 when full).
SEGMENT = 4096

#: Expired wins dropped by one add at most, beyond those the capacity requires: after a quiet spell
#: longer than the TTL, the first add would otherwise free the whole book in one go. Expired wins
#: are never found meanwhile, and a steady flow expires about one win an add.
EXPIRE_PER_ADD = 2


class WinBook:
    """Wins by beacon token. The oldest go first when full or older than ``ttl_s``.

    Tokens are unique (the exchange's auction ids): a token added again replaces its win only
    while that is in the newest segment, and is otherwise kept twice (each copy going in turn).
    """

    def __init__(self, *, capacity: int = 100_000, ttl_s: float = 300.0) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        #: Oldest first; only the last takes new wins.
        self._segments: deque[dict[str, tuple[Any, ...]]] = deque([{}])
        self._order: deque[str] = deque()  # every token in the book, oldest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._order)

    def add(self, token: str, auction_id: str, bid: Bid, price_micros: int, created: float) -> None:
        """Keep a win (``created``, ``time.monotonic()``, must not go back in time), dropping
        excess wins and (up to :data:`EXPIRE_PER_ADD`) expired ones."""
        segments, order = self._segments, self._order
        newest = segments[-1]
        if len(newest) >= SEGMENT:
            newest = {}
            segments.append(newest)
        packed = _pack(auction_id, bid, price_micros, created)
        if token in newest:  # the same token again, just added: the newer win replaces it
            newest[token] = packed
            return
        newest[token] = packed
        order.append(token)
        limit = created - self.ttl_s
        expire = EXPIRE_PER_ADD
        while order:
            oldest = segments[0]
            first = order[0]
            if len(order) <= self.capacity:
                if expire == 0 or oldest[first][_CREATED] >= limit:
                    break
                expire -= 1
            order.popleft()
            del oldest[first]
            self.evicted += 1
            if not oldest and len(segments) > 1:
                segments.popleft()

    def _find(self, token: str) -> tuple[dict[str, tuple[Any, ...]], tuple[Any, ...]] | None:
        """The segment holding ``token``'s win and the win, if it is there and not expired."""
        for segment in reversed(self._segments):  # the newest first: beacons follow their wins
            packed = segment.get(token)
            if packed is not None:
                if time.monotonic() - packed[_CREATED] > self.ttl_s:
                    return None
                return segment, packed
        return None

    def get(self, token: str) -> Win | None:
        """The win of ``token`` (a copy), or None if unknown or expired."""
        found = self._find(token)
        return None if found is None else _unpack(token, found[1])

    def bill(self, token: str) -> Win | None:
        """Mark the win billed and return it; None if unknown, expired or billed already."""
        found = self._find(token)
        if found is None or found[1][_BILLED]:
            return None
        segment, packed = found
        packed = (*packed[:_BILLED], True, *packed[_BILLED + 1 :])
        segment[token] = packed
        return _unpack(token, packed)

    def click(self, token: str) -> Win | None:
        """Count a click on the win and return it (with the new count); None if unknown or expired."""
        found = self._find(token)
        if found is None:
            return None
        segment, packed = found
        packed = (*packed[:_CLICKS], packed[_CLICKS] + 1, *packed[_CLICKS + 1 :])
        segment[token] = packed
        return _unpack(token, packed)
