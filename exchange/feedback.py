"""Feedback events a bidder receives: win, loss, billing, click and conversion.

The same event reaches an in-process bidder (called directly by the exchange) and a bidder behind
the DSP server (built from the notice URL's query string), so a bidder's hooks see one shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

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


def noop_hook(fn: F) -> F:
    """Marks a base class's do-nothing hook, so that nobody sends or builds events for it."""
    fn.__gavel_noop__ = True  # type: ignore[attr-defined]
    return fn


def listens(bidder: object) -> frozenset[str]:
    """The event kinds ``bidder`` has a real hook for (a method that is not a :func:`noop_hook`).

    The exchange delivers, and the DSP server asks for notices of, only these kinds: a bidder that
    learns nothing from losses costs no loss notice per bid.
    """
    kinds = set()
    for kind, name in HOOKS.items():
        hook = getattr(bidder, name, None)
        if callable(hook) and not getattr(hook, "__gavel_noop__", False):
            kinds.add(kind)
    return frozenset(kinds)


def deliver(bidder: object, event: AuctionEvent) -> Any:
    """Call the bidder's hook for ``event`` if it has one (hooks are optional).

    Returns what the hook returned: for an ``async def`` hook, the coroutine, which the caller
    must await or schedule.
    """
    hook = getattr(bidder, HOOKS[event.kind], None)
    if hook is not None:
        return hook(event)
    return None
