"""``ortb2``: optimal real-time bidding, second form.

    b(theta) = c x [ ((theta + sqrt(c^2 lambda^2 + theta^2)) / (c lambda))^(1/3)
                     - ((c lambda) / (theta + sqrt(c^2 lambda^2 + theta^2)))^(1/3) ]

Zhang, Yuan, Wang, "Optimal real-time bidding for display advertising", KDD 2014 (ORTB2): as
``ortb1`` but for the win-rate curve w(b) = b^2 / (c^2 + b^2), which rises more steeply; theta =
pCTR, ``c`` (CPM) fits the curve, ``lam`` (lambda) is the budget's Lagrange multiplier.
"""

from __future__ import annotations

import logging
import math

from dsp.strategy import BidContext, PricingStrategy

log = logging.getLogger(__name__)


class Ortb2(PricingStrategy):
    """bid = ``c`` x [(u / (``c`` ``lam``))^(1/3) - ((``c`` ``lam``) / u)^(1/3)],
    u = pCTR + sqrt(``c``^2 ``lam``^2 + pCTR^2)."""

    def __init__(self, *, c: float = 2.0, lam: float = 1e-4) -> None:
        self.c = c
        self.lam = lam

    def price(self, ctx: BidContext) -> float | None:
        c, lam = self.c, self.lam
        if c <= 0 or lam <= 0:
            return None
        theta = ctx.pctr
        cl = c * lam
        u = theta + math.sqrt(cl * cl + theta * theta)
        return c * ((u / cl) ** (1 / 3) - (cl / u) ** (1 / 3))
