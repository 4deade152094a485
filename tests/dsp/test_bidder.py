from __future__ import annotations

import pytest

from dsp.bidder import Bidder, clone
from exchange.feedback import WIN, AuctionEvent

from .conftest import make_request


class Tiny(Bidder):
    def __init__(self, *, base_bid: float = 1.0, seat: str = "tiny") -> None:
        self.base_bid = base_bid
        self.seat = seat

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.wins_ = 0

    def on_win(self, event: AuctionEvent) -> None:
        self.wins_ += 1


def test_get_params_reads_the_signature() -> None:
    b = Tiny(base_bid=2.5)
    assert b.get_params() == {"base_bid": 2.5, "seat": "tiny"}
    assert Tiny.param_names() == ("base_bid", "seat")
    assert repr(b) == "Tiny(base_bid=2.5, seat='tiny')"


def test_params_round_trip_through_the_constructor() -> None:
    b = Tiny(base_bid=0.75, seat="s")
    assert Tiny(**b.get_params()).get_params() == b.get_params()
    c = clone(b)
    assert c is not b and c.get_params() == b.get_params()


def test_set_params_checks_names() -> None:
    b = Tiny().set_params(base_bid=3.0)
    assert b.base_bid == 3.0
    with pytest.raises(ValueError, match="no parameter 'bse_bid'"):
        b.set_params(bse_bid=1.0)


def test_reset_seeds_rng_and_clears_learned_state() -> None:
    b = Tiny()
    b.reset(7)
    first = [b.rng_.random() for _ in range(3)]
    b.on_win(AuctionEvent(kind=WIN, auction_id="a", imp_id="1", bid_id="b", price=1.0))
    assert b.wins_ == 1
    b.reset(7)
    assert b.wins_ == 0
    assert [b.rng_.random() for _ in range(3)] == first


def test_base_bid_is_abstract_and_hooks_are_no_ops() -> None:
    b = Bidder()
    assert b.get_params() == {}
    with pytest.raises(NotImplementedError):
        b.bid(make_request())
    event = AuctionEvent(kind=WIN, auction_id="a", imp_id="1", bid_id="b")
    for hook in (b.on_win, b.on_loss, b.on_billing, b.on_click, b.on_conversion):
        assert hook(event) is None


def test_varargs_constructor_is_rejected() -> None:
    class Bad(Bidder):
        def __init__(self, *args: object) -> None:
            self.args = args

    with pytest.raises(TypeError, match="keyword parameters only"):
        Bad().get_params()
