"""``pid``: a PID feedback controller on a bid multiplier, holding a CPM or eCPC target while
spending the daily budget evenly.

    bid = b0 x exp(phi),   phi_t = kp e_t + ki sum(e_1..e_t) + kd (e_t - e_{t-1})

after Zhang, Zhang, Wang, Yuan et al., "Feedback Control of Real-Time Display Advertising",
WSDM 2016 (the exponential actuator keeps the bid positive and makes the control multiplicative).
The reference bid ``b0`` is the target itself: ``target`` CPM (``metric = "cpm"``) or
``target`` x pCTR x 1000 (``metric = "ecpc"``, the Mcpc bid of the eCPC goal).

Every ``interval_s`` seconds of the bidder's clock the controller measures two relative errors and
acts on the more pressing one, e = min(e_pace, e_metric):

- pacing: e_pace = (planned - spent) / planned, planned = daily budget x share of the day gone:
  positive when behind the even line (bid up), negative when ahead (bid down);
- the target: e_metric = (target - measured) / target, measured over the last interval from billing
  (CPM paid) or click feedback (eCPC): negative when paying more than the target (bid down).

So the controller spends evenly unless that would mean paying over the target. Without a daily
budget it only holds the target. ``phi`` is clamped to [``min_phi``, ``max_phi``], and the
integral stops growing while it is clamped (anti-windup).
"""

from __future__ import annotations

import logging
import math

from dsp.state import Reservation
from dsp.strategy import BidContext, PricingStrategy
from exchange.feedback import AuctionEvent

log = logging.getLogger(__name__)


class PidPacing(PricingStrategy):
    """bid = b0 x exp(phi), phi from a PID on min(pacing error, target error)."""

    def __init__(
        self,
        *,
        target: float = 1.0,
        metric: str = "cpm",
        kp: float = 1.0,
        ki: float = 0.1,
        kd: float = 0.0,
        interval_s: float = 300.0,
        min_phi: float = -3.0,
        max_phi: float = 1.5,
    ) -> None:
        self.target = target
        self.metric = metric
        self.kp = kp
        self.ki = ki
        self.kd = kd
        self.interval_s = interval_s
        self.min_phi = min_phi
        self.max_phi = max_phi

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        if self.metric not in ("cpm", "ecpc"):
            raise ValueError(f"pid: metric must be 'cpm' or 'ecpc', got {self.metric!r}")
        self.phi_ = 0.0
        self.integral_ = 0.0
        self.last_error_: float | None = None
        self.next_step_: float | None = None
        self.window_cost_ = 0.0  # money paid in the current interval
        self.window_imps_ = 0
        self.window_clicks_ = 0
        self.steps_ = 0

    def price(self, ctx: BidContext) -> float | None:
        if self.next_step_ is None:
            self.next_step_ = ctx.now + self.interval_s
        elif ctx.now >= self.next_step_:
            self.step(self.error(ctx))
            self.next_step_ = ctx.now + self.interval_s
        b0 = self.target if self.metric == "cpm" else 1000.0 * self.target * ctx.pctr
        return b0 * math.exp(self.phi_)

    def error(self, ctx: BidContext) -> float:
        """e = min(e_pace, e_metric) over what is known; 0 when nothing is."""
        errors = []
        daily = ctx.daily_budget
        if daily:
            planned = daily * ctx.day_elapsed
            if planned > 0:
                errors.append((planned - ctx.spent_today) / planned)
        measured = None
        if self.metric == "cpm" and self.window_imps_:
            measured = 1000.0 * self.window_cost_ / self.window_imps_
        elif self.metric == "ecpc" and self.window_clicks_:
            measured = self.window_cost_ / self.window_clicks_
        if measured is not None and self.target > 0:
            errors.append((self.target - measured) / self.target)
        self.window_cost_, self.window_imps_, self.window_clicks_ = 0.0, 0, 0
        return max(-1.0, min(1.0, min(errors))) if errors else 0.0

    def step(self, error: float) -> None:
        """One control update with error ``error``."""
        derivative = 0.0 if self.last_error_ is None else error - self.last_error_
        integral = self.integral_ + error
        phi = self.kp * error + self.ki * integral + self.kd * derivative
        if self.min_phi <= phi <= self.max_phi:
            self.integral_ = integral  # anti-windup: integrate only while not saturated
        self.phi_ = max(self.min_phi, min(self.max_phi, phi))
        self.last_error_ = error
        self.steps_ += 1

    def on_billing(self, event: AuctionEvent, bid: Reservation) -> None:
        if event.price is not None:
            self.window_cost_ += event.price / 1000.0
        self.window_imps_ += 1

    def on_click(self, event: AuctionEvent, bid: Reservation) -> None:
        self.window_clicks_ += 1
