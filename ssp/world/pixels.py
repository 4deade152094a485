"""Advertiser pixels: the URLs of visits, purchases and attributed conversions sent to DSPs.

The contract of the DSP's pixel endpoint (answers 204; 400 on bad parameters)::

    GET {dsp_base}/pixel?event=visit|purchase|conversion&user=<user id>&advertiser=<domain>
        [&category=<IAB cat>][&ts=<unix seconds>][&value=<money>]
        [&auction=<request id>&imp=<imp id>&bid=<bid id>]

Visits and purchases go to every DSP holding the advertiser's pixel; a conversion (a purchase
after an ad click) goes to the DSP that won the ad, with the ids of the served ad.
"""

from __future__ import annotations

from urllib.parse import urlencode

VISIT, PURCHASE, CONVERSION = "visit", "purchase", "conversion"
EVENTS = (VISIT, PURCHASE, CONVERSION)


def pixel_url(
    base: str,
    *,
    event: str,
    user: str,
    advertiser: str,
    category: str | None = None,
    ts: float | None = None,
    value: float | None = None,
    auction: str | None = None,
    imp: str | None = None,
    bid: str | None = None,
) -> str:
    """The pixel URL of one event at DSP ``base`` (``scheme://host:port``)."""
    if event not in EVENTS:
        raise ValueError(f"unknown pixel event {event!r}")
    query: list[tuple[str, str]] = [("event", event), ("user", user), ("advertiser", advertiser)]
    if category:
        query.append(("category", category))
    if ts is not None:
        query.append(("ts", f"{ts:.3f}"))
    if value is not None:
        query.append(("value", f"{value:.2f}"))
    for name, v in (("auction", auction), ("imp", imp), ("bid", bid)):
        if v:
            query.append((name, v))
    return f"{base.rstrip('/')}/pixel?{urlencode(query)}"
