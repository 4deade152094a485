"""Advertiser-site pixels: ``GET /pixel?event=...&user=...&advertiser=...`` read into a PixelEvent.

The contract (the world's traffic driver calls it)::

    GET /pixel?event=visit|purchase|conversion&user=<user id>&advertiser=<domain>
               [&category=<IAB cat>][&ts=<unix seconds>][&value=<money>]
               [&auction=<request id>&imp=<imp id>&bid=<bid id>]

- ``visit``: the user is on the advertiser's retargeting list from ``ts``;
- ``purchase``: the user bought: off the list until the next visit;
- ``conversion``: counted for the campaign that won the bid ``auction``/``imp``/``bid`` (and given to
  the bidder's ``on_conversion``); without them, for the advertiser's campaign with the user's
  latest impression within the attribution window.

The DSP server answers 204, or 400 with ``{"error", "field"}`` naming the bad parameter.
Pure: no I/O.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from exchange.errors import RequestError

log = logging.getLogger(__name__)

VISIT = "visit"
PURCHASE = "purchase"
CONVERSION = "conversion"
EVENTS = (VISIT, PURCHASE, CONVERSION)
_MAX_LEN = 512


@dataclass(frozen=True, slots=True)
class PixelEvent:
    event: str
    user: str
    advertiser: str  # lower-cased domain
    category: str | None = None
    ts: float | None = None  # None: the bidder's now
    value: float | None = None
    auction: str | None = None
    imp: str | None = None
    bid: str | None = None

    @property
    def bid_key(self) -> tuple[str, str] | None:
        """(auction id, bid id) when the pixel names the bid."""
        if self.auction and self.bid:
            return (self.auction, self.bid)
        return None


def parse_pixel(query: Mapping[str, str]) -> PixelEvent:
    """The pixel a query string describes; RequestError naming the parameter when it is bad."""
    event = _text(query, "event", required=True)
    if event not in EVENTS:
        raise RequestError(
            f"query parameter 'event' must be one of {', '.join(EVENTS)}, not {event!r}",
            field="event",
        )
    user = _text(query, "user", required=True)
    advertiser = _text(query, "advertiser", required=True)
    ids = {name: _text(query, name, required=False) for name in ("auction", "imp", "bid")}
    given = [name for name, v in ids.items() if v]
    if given and len(given) != 3:
        missing = next(name for name, v in ids.items() if not v)
        raise RequestError(
            f"query parameter {missing!r} is required with {', '.join(given)} "
            "(a bid is named by auction, imp and bid together)",
            field=missing,
        )
    return PixelEvent(
        event=event or "",
        user=user or "",
        advertiser=(advertiser or "").lower(),
        category=_text(query, "category", required=False) or None,
        ts=_number(query, "ts"),
        value=_number(query, "value"),
        auction=ids["auction"] or None,
        imp=ids["imp"] or None,
        bid=ids["bid"] or None,
    )


def _text(query: Mapping[str, str], name: str, *, required: bool) -> str | None:
    value = query.get(name)
    if not value:
        if required:
            raise RequestError(f"query parameter {name!r} is required", field=name)
        return None
    if len(value) > _MAX_LEN:
        raise RequestError(
            f"query parameter {name!r} is longer than {_MAX_LEN} characters", field=name
        )
    return value


def _number(query: Mapping[str, str], name: str) -> float | None:
    text = query.get(name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RequestError(
            f"query parameter {name!r} must be a number, not {text[:40]!r}", field=name
        ) from None
    if not math.isfinite(value) or value < 0:
        raise RequestError(
            f"query parameter {name!r} must be a finite number >= 0, not {text[:40]!r}",
            field=name,
        )
    return value
