"""The bidder's clock: event time, local time, calendar days and hours. Pure arithmetic.

A bidder's "now" is the request's event time (``BidRequest.ts``, from ``ext.gavel.ts``) when the
sender gives one, so a simulated world runs dayparts, pacing and frequency caps on its own clock;
otherwise it is the wall clock (:func:`time.time`). Local time is UTC plus an offset in minutes
(OpenRTB's ``device.geo.utcoffset``).
"""

from __future__ import annotations

import logging
import time

from exchange.openrtb import BidRequest

log = logging.getLogger(__name__)

DAY_S = 86_400
HOUR_S = 3_600
WEEK_MIN = 7 * 1440
#: 1970-01-01 was a Thursday; with Monday = 0, day 0 of the epoch is weekday 3.
_EPOCH_WEEKDAY = 3
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def request_now(request: BidRequest) -> float:
    """The request's event time in unix seconds, or the wall clock when it has none."""
    ts = request.ts
    return time.time() if ts is None else ts


def local_seconds(now: float, utcoffset_min: int) -> float:
    """Seconds since the epoch on a clock ``utcoffset_min`` minutes ahead of UTC."""
    return now + utcoffset_min * 60


def day_index(now: float, utcoffset_min: int = 0) -> int:
    """The local calendar day (days since 1970-01-01 in that time zone)."""
    return int(local_seconds(now, utcoffset_min) // DAY_S)


def hour_index(now: float) -> int:
    """The calendar hour (hours since the epoch; the same boundaries in whole-hour time zones)."""
    return int(now // HOUR_S)


def day_share(now: float, utcoffset_min: int = 0) -> float:
    """How much of the local day has passed, in [0, 1)."""
    return (local_seconds(now, utcoffset_min) % DAY_S) / DAY_S


def minute_of_week(now: float, utcoffset_min: int) -> int:
    """Local minute of the week, Monday 00:00 = 0 ... Sunday 23:59 = 10079."""
    local = local_seconds(now, utcoffset_min)
    days = int(local // DAY_S)
    weekday = (days + _EPOCH_WEEKDAY) % 7
    return weekday * 1440 + int(local % DAY_S) // 60


def local_hour(now: float, utcoffset_min: int) -> int:
    """Local hour of the day, 0-23."""
    return int(local_seconds(now, utcoffset_min) % DAY_S) // HOUR_S
