"""The soak benchmark's bidder: a constant bidder that listens to win and loss notices.

With hooks, its DSP server asks for ``nurl``/``lurl`` notices, so the SSP's notice queue carries
real traffic during the soak (the built-in constant bidder has no hooks and gets no notices).
Served by ``gavel dsp --strategy bench.soak_bidder:NoticedBidder`` from the repository root.
"""

from __future__ import annotations

from dsp.bidders.constant import ConstantBidder
from exchange.feedback import AuctionEvent


class NoticedBidder(ConstantBidder):
    """Bids ``price`` like ``constant``; counts the wins and losses it is told about."""

    def on_win(self, event: AuctionEvent) -> None:
        self.wins_ = getattr(self, "wins_", 0) + 1

    def on_loss(self, event: AuctionEvent) -> None:
        self.losses_ = getattr(self, "losses_", 0) + 1
