"""Pause windows: cutoffs that would fall inside a planned pause are moved to its start."""

from __future__ import annotations

import time
from typing import Any

import pytest

from exchange.engine import Exchange
from exchange.openrtb import parse_bid_request
from exchange.pauses import PauseWindows
from exchange.settings import ExchangeSettings
from exchange.transport import InProcessBidder
from tests.conftest import record_cutoffs


def test_a_cutoff_inside_a_window_moves_to_its_start_and_others_stay() -> None:
    pauses = PauseWindows()
    assert pauses.adjust(5.0) == 5.0 and pauses.moved == 0
    pauses.reserve(10.0, 10.02)
    pauses.reserve(11.0, 11.05)
    assert pauses.adjust(9.999) == 9.999  # before
    assert pauses.adjust(10.0) == 10.0  # at the start: already out of the pause's way
    assert pauses.adjust(10.019) == 10.0
    assert pauses.adjust(10.02) == 10.02  # the end is free again
    assert pauses.adjust(11.03) == 11.0
    assert pauses.moved == 3
    pauses.release(10.5)  # the first window is over
    assert pauses.windows == [(11.0, 11.05)]
    pauses.release(11.05)
    assert not pauses.windows


def test_an_empty_or_backwards_window_is_refused() -> None:
    with pytest.raises(ValueError, match="must start before it ends"):
        PauseWindows().reserve(2.0, 2.0)


class _Silent:
    def bid(self, request: Any) -> None:
        return None


async def test_the_engine_cuts_an_auction_off_before_a_reserved_pause() -> None:
    exchange = Exchange(
        settings=ExchangeSettings(seed=1, margin_max_ms=0),  # fixed margin: 5 ms
        transports=[InProcessBidder(name="silent", bidder=_Silent())],
    )
    cutoffs = record_cutoffs(exchange)
    request = parse_bid_request({"id": "r", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]})
    arrival = time.perf_counter()
    exchange.pauses.reserve(arrival + 0.080, arrival + 0.110)  # over the natural cutoff, 95 ms
    await exchange.auction(request, arrival=arrival)
    exchange.pauses.windows.clear()
    await exchange.auction(request, arrival=arrival)
    assert cutoffs == [pytest.approx(arrival + 0.080), pytest.approx(arrival + 0.095)]
    assert exchange.pauses.moved == 1
