from __future__ import annotations

import math

import pytest

from dsp import registry
from dsp.bidders.constant import ConstantBidder
from dsp.bidders.random_bid import RandomBidder
from dsp.registry import BIDDERS, make_bidder, parse_params, parse_value, resolve_bidder

from .conftest import make_request


class NoReset:
    """A duck-typed bidder: no base class, no reset, a seed parameter of its own."""

    def __init__(self, *, seed: int | None = None, level: int = 1) -> None:
        self.seed = seed
        self.level = level

    def bid(self, request: object) -> None:
        return None


class Picky:
    def __init__(self, **kwargs: object) -> None:
        if "bad" in kwargs:
            raise TypeError("Picky() does not like 'bad'")
        self.kwargs = kwargs

    def bid(self, request: object) -> None:
        return None


def test_registry_is_alphabetised_and_resolves() -> None:
    assert list(BIDDERS) == sorted(BIDDERS)
    assert resolve_bidder("constant") is ConstantBidder
    assert resolve_bidder("random") is RandomBidder
    assert resolve_bidder("dsp.bidders.constant:ConstantBidder") is ConstantBidder
    assert resolve_bidder(f"{__name__}:NoReset") is NoReset


def test_make_bidder_passes_params_and_resets_with_seed() -> None:
    a = make_bidder("random", {"low": 1.0, "high": 2.0, "seed": 9})
    b = make_bidder("dsp.bidders.random_bid:RandomBidder", {"low": 1.0, "high": 2.0, "seed": 9})
    assert isinstance(a, RandomBidder) and a.get_params()["low"] == 1.0
    request = make_request()
    assert a.bid(request) == b.bid(request) is not None


def test_make_bidder_without_seed_is_ready_to_bid() -> None:
    b = make_bidder("random", {"low": 1.0, "high": 2.0})
    assert b.bid(make_request(imp=[{"id": "1", "banner": {"w": 1, "h": 1}}])) is not None


def test_seed_goes_to_a_constructor_that_takes_it() -> None:
    b = make_bidder(f"{__name__}:NoReset", {"seed": 3, "level": 2})
    assert (b.seed, b.level) == (3, 2)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nope", "unknown bidder 'nope'"),
        ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
        ("dsp.bidders.constant:Nope", "has no attribute 'Nope'"),
        (":Nope", "must look like 'package.module:Class'"),
        ("", "registry id"),
    ],
)
def test_unknown_spec_is_a_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_bidder(spec, {})


def test_unknown_spec_lists_registry_ids() -> None:
    with pytest.raises(ValueError, match="constant, random"):
        resolve_bidder("lin")


def test_bad_parameter_is_named() -> None:
    with pytest.raises(ValueError, match="'constant' has no parameter 'prise'"):
        make_bidder("constant", {"prise": 1.0})
    with pytest.raises(ValueError, match="'seed' must be an integer"):
        make_bidder("constant", {"seed": "x"})
    with pytest.raises(ValueError, match=r"rejected its parameters: .*'bad'"):
        make_bidder(f"{__name__}:Picky", {"bad": 1})


def test_spec_that_is_not_a_bidder() -> None:
    with pytest.raises(ValueError, match="not a class"):
        make_bidder("dsp.registry:ENTRY_POINT_GROUP", {})
    with pytest.raises(ValueError, match="without a bid"):
        make_bidder("collections:OrderedDict", {})


def test_entry_points_are_listed() -> None:
    # No third-party bidders are installed here: the built-ins are everything available.
    assert registry.available() == BIDDERS


def test_parse_params_types_values() -> None:
    params = parse_params(
        [
            "price=1.5",
            "seed=7",
            "debug=true",
            "seat=acme",
            'advertiser="Acme Shoes"',
            "name=Acme Shoes",
            'cat=["IAB1", "IAB2"]',
            "big=1_000",
            "quoted='7'",
            "day=2024-05-01",
            "empty=",
            "eq=a=b",
        ]
    )
    assert params == {
        "price": 1.5,
        "seed": 7,
        "debug": True,
        "seat": "acme",
        "advertiser": "Acme Shoes",
        "name": "Acme Shoes",
        "cat": ["IAB1", "IAB2"],
        "big": 1000,
        "quoted": "7",
        "day": "2024-05-01",
        "empty": "",
        "eq": "a=b",
    }
    assert type(params["seed"]) is int and type(params["debug"]) is bool


def test_parse_value_edge_cases() -> None:
    assert parse_value("inf") == math.inf
    assert parse_value("nan") == "nan"
    assert parse_value("null") is None
    assert parse_value('{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("item", ["price", "=1", "1x=2", "a b=3"])
def test_parse_params_rejects_malformed_items(item: str) -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_params([item])


def test_parse_params_later_wins() -> None:
    assert parse_params(["a=1", "a=2"]) == {"a": 2}
