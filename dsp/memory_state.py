"""The in-memory :class:`~dsp.state.CampaignState`: one process, one event loop, no locks needed.

Every method runs to completion without awaiting, so on one event loop each is atomic. Notices may
come in any order and any number of times: billing before the win settles from the pending bid, a
repeated notice is ignored, a notice for a bid whose TTL ran out is still honoured (the exchange
bills what it sold) and counted as ``late``. Reservations expire lazily: :meth:`MemoryState.sweep`
pops them from the front of insertion-ordered dicts, which costs nothing when nothing is due.
Memory is bounded: the records of billed, expired and lost bids keep at most ``capacity`` entries
(for late notices, clicks and conversions), frequency counts and audience entries at most
``people`` each; the least recently touched go first.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from dsp.state import (
    BILLED,
    EXPIRED,
    PENDING,
    RELEASED,
    WON,
    BidKey,
    BudgetView,
    Reservation,
)

log = logging.getLogger(__name__)


class _Book:
    """One campaign's money and counters."""

    __slots__ = ("counters", "daily", "day", "held", "spent", "spent_today", "total")

    def __init__(self) -> None:
        self.total = 0
        self.daily = 0
        self.spent = 0
        self.day = -(1 << 62)
        self.spent_today = 0
        self.held = 0
        self.counters: dict[str, int] = {}

    def roll(self, day: int) -> None:
        if day > self.day:
            self.day = day
            self.spent_today = 0

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


class MemoryState:
    """Budgets, frequency counts, audiences and counters in dicts (see the module docstring)."""

    def __init__(self, *, capacity: int = 100_000, people: int = 1_000_000) -> None:
        self.capacity = capacity
        self.people = people
        self._books: dict[str, _Book] = {}
        self._pending: dict[BidKey, Reservation] = {}
        self._won: dict[BidKey, Reservation] = {}
        self._done: OrderedDict[BidKey, Reservation] = OrderedDict()  # billed, lost, expired
        # (campaign, user) -> [hour, count in hour, day, count in day, last ts, last key]
        self._freq: OrderedDict[tuple[str, str], list[Any]] = OrderedDict()
        # (advertiser, user) -> [last visit ts, last purchase ts, {category: last visit ts}]
        self._audience: OrderedDict[tuple[str, str], list[Any]] = OrderedDict()

    def _book(self, campaign: str) -> _Book:
        book = self._books.get(campaign)
        if book is None:
            book = self._books[campaign] = _Book()
        return book

    # -- budgets -----------------------------------------------------------------------------------

    def open(self, campaign: str, *, total: int, daily: int) -> None:
        book = self._book(campaign)
        book.total, book.daily = total, daily

    def reserve(self, r: Reservation, *, now: float, ttl: float) -> bool:
        if r.key in self._pending:
            self.release(r.key)  # the same bid again: the latest one is live
        book = self._book(r.campaign)
        book.roll(r.day)
        amount = r.bid_micros
        committed = book.held + amount
        if book.total and book.spent + committed > book.total:
            return False
        if book.daily and book.spent_today + committed > book.daily:
            return False
        book.held += amount
        r.held = amount
        r.status = PENDING
        r.expires = now + ttl
        self._pending[r.key] = r
        return True

    def win(self, key: BidKey, price_micros: int, *, now: float, ttl: float) -> Reservation | None:
        r = self._pending.pop(key, None)
        if r is None:
            r = self._done.get(key)
            if r is None or r.status not in (EXPIRED, RELEASED) or r.price_micros is not None:
                return None  # unknown, or already won or billed
            del self._done[key]  # a win after its TTL or a loss notice: the exchange sold it
            self._book(r.campaign).count("late")
        book = self._book(r.campaign)
        book.held += price_micros - r.held
        r.held = price_micros
        r.price_micros = price_micros
        r.status = WON
        r.expires = now + ttl
        self._won[key] = r
        book.count("wins")
        return r

    def bill(self, key: BidKey, price_micros: int) -> Reservation | None:
        r = self._won.pop(key, None)
        if r is None:
            r = self._pending.pop(key, None)
            if r is not None:
                self._book(r.campaign).count("wins")  # billing came before the win notice
            else:
                r = self._done.get(key)
                if r is None or r.status == BILLED:
                    return None
                del self._done[key]
                book = self._book(r.campaign)
                book.count("late")
                if r.price_micros is None:
                    book.count("wins")  # never won before (a win expired still has its price)
        book = self._book(r.campaign)
        book.held -= r.held
        r.held = 0
        r.price_micros = price_micros
        r.status = BILLED
        book.spent += price_micros
        if r.day >= book.day:
            book.roll(r.day)
            book.spent_today += price_micros
        book.count("impressions")
        if r.user is not None:
            self._count_impression(r)
        self._remember(r)
        return r

    def release(self, key: BidKey) -> Reservation | None:
        r = self._pending.pop(key, None)
        if r is None:
            return None
        self._book(r.campaign).held -= r.held
        r.held = 0
        r.status = RELEASED
        self._remember(r)
        return r

    def sweep(self, now: float) -> list[Reservation]:
        out: list[Reservation] = []
        for table in (self._pending, self._won):
            while table:
                key = next(iter(table))
                r = table[key]
                if r.expires > now:
                    break
                del table[key]
                self._book(r.campaign).held -= r.held
                r.held = 0
                r.status = EXPIRED
                self._remember(r)
                out.append(r)
        return out

    def budget(self, campaign: str, day: int) -> BudgetView:
        book = self._book(campaign)
        book.roll(day)
        return BudgetView(book.total, book.daily, book.spent, book.spent_today, book.held)

    def shown(self, key: BidKey) -> Reservation | None:
        r = self._done.get(key) or self._won.get(key) or self._pending.get(key)
        return r if r is not None and r.status != RELEASED else None

    def in_flight(self) -> int:
        """Reservations pending or won (for tests and /stats)."""
        return len(self._pending) + len(self._won)

    def _remember(self, r: Reservation) -> None:
        """Keep the record of a bid that is no longer in flight (bounded, oldest first out)."""
        done = self._done
        done[r.key] = r
        if len(done) > self.capacity:
            done.popitem(last=False)

    # -- frequency ---------------------------------------------------------------------------------

    def _count_impression(self, r: Reservation) -> None:
        key = (r.campaign, r.user or "")
        hour = int(r.ts // 3600)
        rec = self._freq.get(key)
        if rec is None:
            rec = self._freq[key] = [hour, 0, r.day, 0, r.ts, r.key]
            if len(self._freq) > self.people:
                self._freq.popitem(last=False)
        else:
            self._freq.move_to_end(key)
        if hour > rec[0]:
            rec[0], rec[1] = hour, 0
        if r.day > rec[2]:
            rec[2], rec[3] = r.day, 0
        if hour == rec[0]:
            rec[1] += 1
        if r.day == rec[2]:
            rec[3] += 1
        if r.ts >= rec[4]:
            rec[4], rec[5] = r.ts, r.key

    def frequency(self, campaign: str, user: str, hour: int, day: int) -> tuple[int, int]:
        rec = self._freq.get((campaign, user))
        if rec is None:
            return 0, 0
        return (rec[1] if rec[0] == hour else 0), (rec[3] if rec[2] == day else 0)

    def last_touch(self, campaign: str, user: str) -> tuple[float, BidKey] | None:
        rec = self._freq.get((campaign, user))
        return None if rec is None else (rec[4], rec[5])

    # -- audiences ---------------------------------------------------------------------------------

    def _audience_record(self, advertiser: str, user: str) -> list[Any]:
        key = (advertiser, user)
        rec = self._audience.get(key)
        if rec is None:
            rec = self._audience[key] = [None, None, {}]
            if len(self._audience) > self.people:
                self._audience.popitem(last=False)
        else:
            self._audience.move_to_end(key)
        return rec

    def visit(self, advertiser: str, user: str, ts: float, category: str | None) -> None:
        rec = self._audience_record(advertiser, user)
        if rec[0] is None or ts > rec[0]:
            rec[0] = ts
        if category:
            cats = rec[2]
            if ts > cats.get(category, float("-inf")):
                cats[category] = ts

    def purchase(self, advertiser: str, user: str, ts: float) -> None:
        rec = self._audience_record(advertiser, user)
        if rec[1] is None or ts > rec[1]:
            rec[1] = ts

    def in_audience(
        self, advertiser: str, user: str, since: float, categories: frozenset[str]
    ) -> bool:
        rec = self._audience.get((advertiser, user))
        if rec is None:
            return False
        if categories:
            visits = rec[2]
            last = max((visits[c] for c in categories if c in visits), default=None)
        else:
            last = rec[0]
        if last is None or last < since:
            return False
        bought = rec[1]
        return bought is None or bought < last

    # -- counters ----------------------------------------------------------------------------------

    def add(self, campaign: str, counter: str, n: int = 1) -> None:
        self._book(campaign).count(counter, n)

    def counters(self, campaign: str) -> dict[str, int]:
        return dict(self._book(campaign).counters)
