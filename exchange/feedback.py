"""Feedback events a bidder receives: win, loss, billing, click and conversion.

The same event reaches an in-process bidder (called directly by the exchange) and a bidder behind
the DSP server (built from the notice URL's query string), so a bidder's hooks see one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIN = "win"
LOSS = "loss"
BILLING = "billing"
CLICK = "click"
CONVERSION = "conversion"
HOOKS = {
    WIN: "on_win",
    LOSS: "on_loss",
    BILLING: "on_billing",
    CLICK: "on_click",
    CONVERSION: "on_conversion",
}


@dataclass(slots=True, frozen=True)
class AuctionEvent:
    """One notice about one bid. Prices are CPM in ``currency``; ``None`` where not known."""

    kind: str
    auction_id: str
    imp_id: str
    bid_id: str
    seat: str | None = None
    ad_id: str | None = None
    price: float | None = None  # the clearing price (win, billing)
    currency: str | None = None
    loss: int | None = None  # OpenRTB loss reason code (loss)
    min_to_win: float | None = None


def deliver(bidder: object, event: AuctionEvent) -> Any:
    """Call the bidder's hook for ``event`` if it has one (hooks are optional).

    Returns what the hook returned: for an ``async def`` hook, the coroutine, which the caller
    must await or schedule.
    """
    hook = getattr(bidder, HOOKS[event.kind], None)
    if hook is not None:
        return hook(event)
    return None
