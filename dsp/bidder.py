"""The researcher's bidder API: a ``Bidder`` base class in the style of scikit-learn's estimators.

The contract (see docs and DESIGN.md, "Bidders"):

- ``__init__(self, *, ...)`` only stores its keyword parameters, unmodified: no logic, no
  validation, so that :meth:`Bidder.get_params` can read them back from the signature and every
  result row can record exactly what produced it.
- :meth:`Bidder.reset` starts a run: it seeds ``self.rng_`` and clears what was learned.
  Anything learned ends in ``_`` (``self.win_rate_``).
- :meth:`Bidder.bid` answers one :class:`~exchange.openrtb.BidRequest` with an OpenRTB BidResponse
  dict, or ``None`` for no-bid. It may be a plain method or ``async def``. The exchange passes the
  same request object to every bidder: a bidder never mutates it.
- Feedback hooks (``on_win``, ``on_loss``, ``on_billing``, ``on_click``, ``on_conversion``) receive
  an :class:`~exchange.feedback.AuctionEvent`; they are optional and do nothing here.

Subclassing ``Bidder`` is a convenience, not a requirement: the exchange and the DSP server accept
any object with a ``bid`` method.
"""

from __future__ import annotations

import logging
import random
from typing import Any, TypeVar

from dsp.params import Parameterized
from exchange.feedback import AuctionEvent, noop_hook
from exchange.openrtb import BidRequest

log = logging.getLogger(__name__)

B = TypeVar("B", bound="Bidder")


class Bidder(Parameterized):
    """Base class of bidders: parameters in, BidResponse dicts out, learning in ``*_`` attributes.

    ``param_names``, ``get_params``, ``set_params`` and ``repr`` come from
    :class:`dsp.params.Parameterized`.
    """

    rng_: random.Random

    def reset(self, seed: int | None = None) -> None:
        """Start a run: seed ``self.rng_`` and clear learned state.

        Subclasses that learn extend this (call ``super().reset(seed)`` first, then clear their own
        ``*_`` attributes). The same seed gives the same bids for the same requests.
        """
        self.rng_ = random.Random(seed)

    def bid(self, request: BidRequest) -> dict[str, Any] | None:
        """Answer one bid request with an OpenRTB BidResponse dict, or ``None`` for no-bid."""
        raise NotImplementedError(f"{type(self).__name__} must implement bid(request)")

    @noop_hook
    def on_win(self, event: AuctionEvent) -> None:
        """A bid won its auction (``event.price`` is the clearing price, CPM)."""

    @noop_hook
    def on_loss(self, event: AuctionEvent) -> None:
        """A bid lost (``event.loss`` is the OpenRTB loss reason code)."""

    @noop_hook
    def on_billing(self, event: AuctionEvent) -> None:
        """A won impression rendered and is billed (``event.price``, CPM)."""

    @noop_hook
    def on_click(self, event: AuctionEvent) -> None:
        """A billed impression was clicked."""

    @noop_hook
    def on_conversion(self, event: AuctionEvent) -> None:
        """A click led to a conversion at the advertiser."""


def clone(bidder: B) -> B:
    """A fresh, unfitted bidder with the same parameters (not reset: call ``reset(seed)``)."""
    return type(bidder)(**bidder.get_params())
