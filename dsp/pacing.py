"""Budget pacing: spending a campaign's daily budget over the whole day, not in the first hour.

Three modes (``pacing`` of a campaign):

- ``asap``: bid whenever the budget allows.
- ``throttle``: even, by *probabilistic throttling*: take part in an auction with probability
  ``rate_``, adjusted every slot of the day so that spend follows the plan (Agarwal et al.,
  "Budget Pacing for Targeted Online Advertisements at LinkedIn", KDD 2014; Xu et al., "Smart
  Pacing for Effective Online Ad Campaign Optimization", KDD 2015).
- ``bid``: even, by *bid modification*: multiply the strategy's price by ``multiplier_``,
  adjusted the same way (a lower bid wins less often, and pays less when it wins).

The plan spreads what is left of the day's budget evenly over the slots left in the day. At the end
of each slot (``slot_s`` seconds of the campaign's local day) the control variable is multiplied
by how far the slot's spend was from its share of the plan, ``desired / observed`` (for ``bid``
its square root, since spend grows faster than linearly with the bid), bounded to [1/2, 2] per step.
Slots where the rate or the bid was held back by the guard below count as over-spending.

A hard guard bounds both even modes: no bid while the spend today plus the bids in flight reach
the even line plus ``ahead`` (a share of the day), so spend can never run ahead of schedule by more
than that, whatever the traffic does. The learnt rate and multiplier carry over to the next day.
Pure arithmetic, no I/O; the bidder feeds it the spend from :mod:`dsp.state`.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)

ASAP = "asap"
THROTTLE = "throttle"
BID = "bid"


class Pacer:
    """One campaign's pacing controller (see the module docstring)."""

    __slots__ = (
        "ahead",
        "day_",
        "gated_",
        "max_multiplier",
        "min_multiplier",
        "min_rate",
        "mode",
        "multiplier_",
        "rate_",
        "slot_",
        "slot_s",
        "slot_spent_",
        "slots",
        "tried_",
    )

    def __init__(
        self,
        *,
        mode: str = ASAP,
        slot_s: float = 300.0,
        ahead: float = 0.01,
        min_rate: float = 1e-3,
        min_multiplier: float = 0.05,
        max_multiplier: float = 5.0,
    ) -> None:
        self.mode = mode
        self.slot_s = slot_s
        self.ahead = ahead
        self.min_rate = min_rate
        self.min_multiplier = min_multiplier
        self.max_multiplier = max_multiplier
        self.slots = max(1, round(86_400 / slot_s))
        self.reset()

    def reset(self) -> None:
        self.rate_ = 1.0
        self.multiplier_ = 1.0
        self.day_: int | None = None
        self.slot_ = -1
        self.slot_spent_ = 0  # spend today when the current slot began
        self.tried_ = 0  # participations that reached the guard in this slot
        self.gated_ = 0  # of them, held back by the guard

    @property
    def even(self) -> bool:
        return self.mode != ASAP

    def observe(self, day: int, share: float, spent_today: int, daily: int) -> None:
        """Move to the slot of ``share`` (share of the day gone); on a new slot, adjust."""
        if self.mode == ASAP or daily <= 0:
            return
        slots = self.slots
        slot = min(slots - 1, int(share * slots))
        if slot == self.slot_ and day == self.day_:
            return
        if day != self.day_:
            self.day_, self.slot_ = day, slot
            self.slot_spent_, self.tried_, self.gated_ = spent_today, 0, 0
            return
        observed = spent_today - self.slot_spent_
        left = daily - spent_today
        slots_left = slots - slot
        desired = max(0.0, left / slots_left) * (slot - self.slot_)
        ratio = desired / observed if observed > 0 else 2.0 if desired > 0 else 1.0
        if self.gated_ and self.tried_:
            ratio = min(ratio, 1.0 - self.gated_ / self.tried_ / 2)
        ratio = max(0.5, min(2.0, ratio))
        if self.mode == THROTTLE:
            self.rate_ = max(self.min_rate, min(1.0, self.rate_ * ratio))
        else:
            m = self.multiplier_ * math.sqrt(ratio)
            self.multiplier_ = max(self.min_multiplier, min(self.max_multiplier, m))
        self.slot_, self.slot_spent_, self.tried_, self.gated_ = slot, spent_today, 0, 0

    def allows(self, share: float, committed_today: int, daily: int) -> bool:
        """The guard: whether spend today plus bids in flight are under the even line + ``ahead``."""
        if self.mode == ASAP or daily <= 0:
            return True
        self.tried_ += 1
        if committed_today < daily * min(1.0, share + self.ahead):
            return True
        self.gated_ += 1
        return False
