"""The engine in-process: feedback reaches only real hooks; notice URLs get percent-encoded ids."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from dsp.bidders.constant import ConstantBidder
from exchange.engine import Exchange
from exchange.feedback import AuctionEvent
from exchange.openrtb import parse_bid_request
from exchange.settings import ExchangeSettings
from exchange.transport import InProcessBidder
from tests.conftest import record_cutoffs

REQUEST = {"id": "r&1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}


class Listening(ConstantBidder):
    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.events_: list[AuctionEvent] = []

    def on_loss(self, event: AuctionEvent) -> None:
        self.events_.append(event)


async def _auction(*bidders: tuple[str, Any]) -> Exchange:
    transports = [InProcessBidder(name=name, bidder=b) for name, b in bidders]
    exchange = Exchange(settings=ExchangeSettings(seed=1), transports=transports)
    await exchange.auction(parse_bid_request(REQUEST), arrival=time.perf_counter())
    for _ in range(3):  # hooks run on the next loop iterations (call_soon)
        await asyncio.sleep(0)
    return exchange


async def test_events_are_built_only_for_hooks_a_bidder_has(monkeypatch: Any) -> None:
    built: list[str] = []
    original = Exchange._event

    def spy(self: Exchange, kind: str, *args: Any) -> AuctionEvent:
        built.append(kind)
        return original(self, kind, *args)

    monkeypatch.setattr(Exchange, "_event", spy)
    quiet_winner = ConstantBidder(price=3.0, seat="quiet")
    quiet_winner.reset(0)
    listener = Listening(price=1.0, seat="listener")
    listener.reset(0)
    await _auction(("quiet", quiet_winner), ("listener", listener))
    assert built == ["loss"]  # no win event for the winner without an on_win hook
    assert [e.loss for e in listener.events_] == [102]
    assert listener.events_[0].price == 1.01  # the clearing price: the loser's bid + 0.01


def test_notice_macro_values_are_percent_encoded_only_for_urls() -> None:
    exchange = Exchange(settings=ExchangeSettings(), transports=[])
    request = parse_bid_request(REQUEST)
    from exchange.bids import parse_bid_response

    bids, _ = parse_bid_response(
        {
            "seatbid": [
                {"seat": "a b", "bid": [{"id": "x/y", "impid": "1", "price": 1, "adm": "<a/>"}]}
            ]
        },
        request,
        "dsp",
    )
    raw = exchange.macro_values(request.id, bids[0], 1_000_000, 0, 1_000_000)
    quoted = exchange.macro_values(request.id, bids[0], 1_000_000, 0, 1_000_000, quote=True)
    assert (raw["AUCTION_ID"], raw["AUCTION_BID_ID"], raw["AUCTION_SEAT_ID"]) == (
        "r&1",
        "x/y",
        "a b",
    )
    assert (quoted["AUCTION_ID"], quoted["AUCTION_BID_ID"], quoted["AUCTION_SEAT_ID"]) == (
        "r%261",
        "x%2Fy",
        "a%20b",
    )
    assert quoted["AUCTION_PRICE"] == "1"


class _Silent:
    """An async bidder that never answers in time."""

    async def bid(self, request: Any) -> None:
        await asyncio.sleep(10)


async def test_an_exchange_that_answers_late_widens_its_margin() -> None:
    settings = ExchangeSettings(seed=1, tmax_ms=100, margin_ms=5, margin_max_ms=15)
    exchange = Exchange(
        settings=settings, transports=[InProcessBidder(name="silent", bidder=_Silent())]
    )
    assert exchange.margin is not None
    loop = asyncio.get_running_loop()
    request = parse_bid_request(REQUEST)
    # The loop is busy from 1 ms before the cutoff (at 95 ms) for 20 ms, as a long garbage
    # collection or another process would keep it: the auction finishes ~19 ms after its cutoff.
    loop.call_later(0.094, time.sleep, 0.020)
    late = await exchange.auction(request, arrival=time.perf_counter())
    assert late.duration > 0.105
    assert exchange.margin.current == 0.015  # the cap: bidders keep at least 85 ms
    cutoffs = record_cutoffs(exchange)
    arrival = time.perf_counter()
    await exchange.auction(request, arrival=arrival)
    assert cutoffs == [pytest.approx(arrival + 0.085)]  # 15 ms before tmax now, not 5
    fixed = Exchange(
        settings=ExchangeSettings(seed=1, margin_max_ms=0),
        transports=[InProcessBidder(name="silent", bidder=_Silent())],
    )
    assert fixed.margin is None


async def test_a_new_auction_lets_those_past_their_cutoff_answer_first() -> None:
    settings = ExchangeSettings(seed=1, tmax_ms=20, margin_ms=5, margin_max_ms=0)
    exchange = Exchange(
        settings=settings, transports=[InProcessBidder(name="silent", bidder=_Silent())]
    )
    exchange.fanout.track_cutoffs = True
    order: list[str] = []

    async def waiting() -> None:
        await exchange.auction(parse_bid_request(REQUEST), arrival=time.perf_counter())
        order.append("answered")

    async def arriving(first: bool) -> None:
        if first:
            await exchange.answers_first()
        order.append("new one starts")

    for first, expected in (
        (False, ["new one starts", "answered"]),  # queued behind the new one
        (True, ["answered", "new one starts"]),
    ):
        order.clear()
        old = asyncio.create_task(waiting())
        await asyncio.sleep(0.005)  # it waits for its bidder; its cutoff is at 15 ms
        time.sleep(0.02)  # the loop held past that cutoff: its timer has not run yet
        await asyncio.gather(old, asyncio.create_task(arriving(first)))
        assert order == expected
    assert exchange.stats.answers_first >= 1


async def test_answers_first_needs_the_cutoffs_tracked() -> None:
    exchange = Exchange(
        settings=ExchangeSettings(seed=1), transports=[InProcessBidder(name="s", bidder=_Silent())]
    )
    assert not exchange.fanout.track_cutoffs
    await exchange.answers_first()  # nothing to look at: returns at once
    assert exchange.stats.answers_first == 0
