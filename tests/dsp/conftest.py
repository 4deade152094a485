"""Shared request fixtures for the demand-side tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exchange.openrtb import BidRequest, parse_bid_request

RAW_REQUEST: dict[str, Any] = {
    "id": "req-1",
    "imp": [
        {"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0.5, "ext": {"x": [1, 2]}},
        {"id": "2", "banner": {"format": [{"w": 728, "h": 90}]}, "bidfloor": 2.5},
        {"id": "3", "video": {"mimes": ["video/mp4"], "w": 640, "h": 480}},
    ],
    "site": {"id": "s1", "domain": "news.example", "cat": ["IAB12"]},
    "device": {"ua": "Mozilla/5.0", "ip": "192.0.2.1"},
    "user": {"id": "u1"},
    "tmax": 80,
    "cur": ["USD"],
    "ext": {"passthrough": True},
}


def make_raw(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`RAW_REQUEST` with top-level fields replaced (``None`` removes one)."""
    raw = copy.deepcopy(RAW_REQUEST)
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def make_request(**changes: Any) -> BidRequest:
    return parse_bid_request(make_raw(**changes), strict=False)


@pytest.fixture
def request_1() -> BidRequest:
    return make_request()
