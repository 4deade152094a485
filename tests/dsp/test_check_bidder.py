"""``check_bidder`` passes every built-in bidder and strategy, and catches what breaks the contract."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from dsp.bidder import Bidder
from dsp.bidders.constant import ConstantBidder
from dsp.conformance import DEFAULT_REQUESTS, check_bidder
from dsp.registry import BIDDERS, STRATEGIES, make_bidder
from exchange.openrtb import BidRequest, parse_bid_request

from .helpers import campaign, config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "dsp").glob("*.toml"))
STRATEGY_PARAMS: dict[str, dict[str, Any]] = {
    "constant": {"cpm": 1.5},
    "lin": {"base_bid": 1.2, "avg_ctr": 0.001},
    "mcpc": {"ecpc": 0.8},
    "ortb1": {"c": 2.0, "lam": 1e-4},
    "ortb2": {"c": 2.0, "lam": 1e-4},
    "pid": {"target": 1.5},
    "random": {"low": 0.5, "high": 2.5},
    "shading": {"base_cpm": 2.0, "explore": 0.2},
    "truthful": {"value": 1.0},
}


def bids_made(spec: str, params: dict[str, Any]) -> int:
    b = make_bidder(spec, {**params, "seed": 1})
    return sum(1 for raw in DEFAULT_REQUESTS if b.bid(parse_bid_request(raw, strict=False)))


@pytest.mark.parametrize("spec", sorted(set(BIDDERS) - {"campaign"}))
def test_builtin_bidders_conform(spec: str) -> None:
    check_bidder(make_bidder(spec, {"seed": 1}))
    assert bids_made(spec, {}) >= 5


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_campaign_dsps_conform(path: Path) -> None:
    check_bidder(make_bidder("campaign", {"config": str(path)}))
    assert bids_made("campaign", {"config": str(path)}) >= 3


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_conforms_in_a_campaign(strategy: str) -> None:
    assert set(STRATEGY_PARAMS) == set(STRATEGIES)
    cfg = config(
        campaign(
            budget_daily=5.0,
            pacing="throttle",
            strategy=strategy,
            params=STRATEGY_PARAMS[strategy],
            creatives=[{"id": f"k{w}x{h}", "w": w, "h": h} for w, h in ((300, 250), (728, 90))],
        )
    )
    check_bidder(lambda: make_bidder("campaign", {"config": copy.deepcopy(cfg)}))
    assert bids_made("campaign", {"config": cfg}) >= 2


# -- it catches what breaks the contract ----------------------------------------------------------


class Mutating(ConstantBidder):
    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        request.raw["seen"] = True
        return super().bid(request)


class Unseeded(ConstantBidder):
    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        self.price = random.uniform(1.0, 2.0)
        return super().bid(request)


class UnderFloor(ConstantBidder):
    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        answer = super().bid(request)
        if answer:
            for b in answer["seatbid"][0]["bid"]:
                imp = request.imp_by_id[b["impid"]]
                b["price"] = max(0.01, imp.bidfloor - 0.01)
        return answer


class WrongImp(ConstantBidder):
    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        answer = super().bid(request)
        if answer:
            answer["seatbid"][0]["bid"][0]["impid"] = "nope"
        return answer


class Euros(ConstantBidder):
    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        answer = super().bid(request)
        if answer:
            answer["cur"] = "EUR"
        return answer


class Doubling(Bidder):
    """Changes what it stores: STYLE item 2 says store parameters unmodified."""

    def __init__(self, *, price: float = 1.25) -> None:
        self.price = price * 2

    def bid(self, request: BidRequest) -> None:
        return None


class BadHook(ConstantBidder):
    def on_loss(self, event: object) -> None:
        raise KeyError("oops")


class IgnoresPrivate(ConstantBidder):
    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        imps = [imp for imp in request.imp]
        answer = super().bid(request)
        if answer is None and any(i.private for i in imps):
            imp = imps[0]
            return {
                "id": request.id,
                "seatbid": [
                    {
                        "seat": "x",
                        "bid": [{"id": "b", "impid": imp.id, "price": 9.0, "adm": "<a/>"}],
                    }
                ],
            }
        return answer


class AsyncConstant(ConstantBidder):
    async def bid(self, request: BidRequest) -> dict[str, Any] | None:  # type: ignore[override]
        return ConstantBidder.bid(self, request)


@pytest.mark.parametrize(
    ("bidder", "message"),
    [
        (Mutating(), "modified the request"),
        (Unseeded(), "different answers"),
        (UnderFloor(), "under the floor"),
        (WrongImp(), "would drop"),
        (Euros(), "currency"),
        (Doubling(price=1.25), "do not round-trip"),
        (BadHook(), "loss hook raised KeyError"),
        (IgnoresPrivate(), "private auction"),
        (object(), "expected a bidder"),
    ],
)
def test_check_bidder_catches(bidder: object, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_bidder(bidder)


def test_check_bidder_takes_factories_requests_and_async_bidders() -> None:
    check_bidder(ConstantBidder, requests=[DEFAULT_REQUESTS[0]])
    check_bidder(
        lambda: ConstantBidder(price=3.0), requests=[parse_bid_request(DEFAULT_REQUESTS[1])]
    )
    check_bidder(AsyncConstant())
    with pytest.raises(AssertionError, match="at least one request"):
        check_bidder(ConstantBidder(), requests=[])


async def test_check_bidder_works_inside_a_running_loop() -> None:
    check_bidder(AsyncConstant(), requests=DEFAULT_REQUESTS[:2])
