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
