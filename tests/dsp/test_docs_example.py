"""The bidder tutorial's example runs as written: in-process and behind the DSP server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dsp.registry import make_bidder
from dsp.server import make_app as make_dsp
from exchange.engine import Exchange
from exchange.openrtb import parse_bid_request
from exchange.settings import ExchangeSettings
from exchange.transport import InProcessBidder

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
REQUEST = {"id": "r1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 1.0}]}


@pytest.fixture
def example_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield
    sys.modules.pop("floor_hugger", None)


async def test_example_bids_over_the_floor_and_learns_its_wins(example_path: None) -> None:
    import time

    bidder = make_bidder("floor_hugger:FloorHugger", {"margin": 0.25, "seed": 3})
    assert bidder.get_params() == {"margin": 0.25, "cap": 2.0, "seat": "hugger"}
    exchange = Exchange(
        settings=ExchangeSettings(seed=1), transports=[InProcessBidder(name="h", bidder=bidder)]
    )
    result = await exchange.auction(parse_bid_request(REQUEST), arrival=time.perf_counter())
    res = result.imps[0]
    assert res.winner is not None and res.winner.price == 1.25
    assert res.price_micros == 1_010_000  # a lone bid pays the floor + 0.01
    await _settled()
    assert bidder.wins_ == 1


def test_example_passes_check_bidder(example_path: None) -> None:
    from dsp.conformance import check_bidder

    check_bidder(make_bidder("floor_hugger:FloorHugger", {"margin": 0.1}))


async def test_example_behind_the_dsp_server(example_path: None, aiohttp_client) -> None:
    bidder = make_bidder("floor_hugger:FloorHugger", {"margin": 0.5})
    client = await aiohttp_client(make_dsp(bidder=bidder, name="hugger"))
    resp = await client.post(
        "/openrtb2/bid", json={**REQUEST, "imp": [{**REQUEST["imp"][0], "bidfloor": 1.8}]}
    )
    assert resp.status == 204  # 1.8 + 0.5 is over the cap of 2.0
    resp = await client.post("/openrtb2/bid", json=REQUEST)
    body = await resp.json()
    assert body["seatbid"][0]["bid"][0]["price"] == 1.5


async def _settled() -> None:
    import asyncio

    for _ in range(3):  # feedback hooks run on the next loop iterations
        await asyncio.sleep(0)


# -- the pricing-strategy example: docs/examples/win_rate.py with win_rate.toml --------------------


@pytest.fixture
def strategy_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.chdir(EXAMPLES)  # as the tutorial runs it: from the folder holding the files
    yield
    sys.modules.pop("win_rate", None)


def test_strategy_example_settles_at_its_target_win_rate(strategy_example: None) -> None:
    import random

    from dsp.conformance import check_bidder
    from exchange.feedback import AuctionEvent

    bidder = make_bidder("campaign", {"config": "win_rate.toml", "seed": 1})
    check_bidder(bidder)
    strategy = bidder.campaigns_[0].strategy
    assert type(strategy).__name__ == "WinRateTarget"
    assert strategy.get_params() == {"base_bid": 1.5, "avg_ctr": 0.001, "target": 0.3, "step": 0.05}
    rng = random.Random(2)
    wins = 0
    for i in range(3000):  # a market whose best other bid is uniform in [0.5, 3.0]
        raw = {**REQUEST, "id": f"m{i}", "imp": [{**REQUEST["imp"][0], "bidfloor": 0.1}],
               "ext": {"gavel": {"ts": 1_749_058_200 + i}}}  # fmt: skip
        answer = bidder.bid(parse_bid_request(raw))
        assert answer is not None
        bid = answer["seatbid"][0]["bid"][0]
        ids = {"auction_id": raw["id"], "imp_id": "1", "bid_id": bid["id"]}
        if bid["price"] > rng.uniform(0.5, 3.0):
            wins += i >= 1000
            bidder.on_win(AuctionEvent(kind="win", price=1.0, **ids))
        else:
            bidder.on_loss(AuctionEvent(kind="loss", price=3.0, loss=102, **ids))
    assert abs(wins / 2000 - 0.3) < 0.05


async def test_strategy_example_behind_the_dsp_server(
    strategy_example: None, aiohttp_client
) -> None:
    bidder = make_bidder("campaign", {"config": "win_rate.toml", "seed": 1})
    client = await aiohttp_client(make_dsp(bidder=bidder, name="winrate"))
    resp = await client.post("/openrtb2/bid", json=REQUEST)
    body = await resp.json()
    assert body["seatbid"][0]["bid"][0]["price"] == 1.5  # scale 1 x base_bid at the prior pCTR
    assert body["seatbid"][0]["seat"] == "winrate"
    assert body["seatbid"][0]["bid"][0]["lurl"].startswith("http")  # it listens to losses
    resp = await client.get("/loss?auction=r1&imp=1&bid=r1-1&loss=102&min_to_win=2.0")
    assert resp.status == 204
    assert bidder.campaigns_[0].strategy.scale_ == pytest.approx(1.015)
