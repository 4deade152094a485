"""The ground truth: whether a served ad is seen, clicked, and followed by a purchase.

One model for the live traffic driver and the offline simulator alike (docs/world.md has the
formulas and the reasoning behind the defaults)::

    P(view)            = viewability(pos)
    P(click | view)    = min(max_ctr, base_ctr * size(w, h) * position(pos) * match(m)
                             * intent(state) * context * fatigue(n))
        match(m)       = match_floor + match_gain * m     m = the user's weight on the ad's category
        intent(state)  = 1 dormant | lift_researching | lift_purchased | lift_satiated
        context        = context_lift when the ad's category is the site's, else 1
        fatigue(n)     = 1 / (1 + fatigue * n)            n = recent exposures to the campaign
    P(conv | click)    = cvr_dormant | cvr_researching | 0 purchased | 0 satiated
                         (0 when the ad's category is not one of the user's interests)

Scalar calls (:meth:`GroundTruth.p_click`) serve one served ad; :meth:`GroundTruth.p_click_batch`
computes the same formula over numpy arrays for batch simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ssp.world import taxonomy
from ssp.world.fatigue import ExposureBook
from ssp.world.intent import DORMANT, IntentBook
from ssp.world.population import Population
from ssp.world.settings import TruthSettings

#: Click lift of standard IAB sizes against the 300x250 medium rectangle.
SIZE_LIFT: dict[tuple[int, int], float] = {
    (300, 250): 1.0,  # medium rectangle
    (336, 280): 1.05,  # large rectangle
    (728, 90): 0.8,  # leaderboard
    (970, 90): 0.75,  # large leaderboard
    (970, 250): 1.25,  # billboard
    (300, 600): 1.4,  # half page
    (160, 600): 0.75,  # wide skyscraper
    (120, 600): 0.6,  # skyscraper
    (320, 50): 0.6,  # mobile banner
    (320, 100): 0.8,  # large mobile banner
    (468, 60): 0.5,  # full banner
}
#: Click lift by OpenRTB ad position: 0 unknown, 1 above the fold, 2 locked, 3 below the fold,
#: 4 header, 5 footer, 6 sidebar, 7 full screen.
POSITION_LIFT: dict[int, float] = {0: 0.8, 1: 1.0, 2: 0.8, 3: 0.55, 4: 1.0, 5: 0.6, 6: 0.8, 7: 1.6}
_ABOVE = frozenset((1, 4, 7))
_BELOW = frozenset((3, 5))


def size_lift(w: int, h: int) -> float:
    """The table's lift for a standard size; otherwise (area / 300x250) ** 0.35 within [0.5, 1.5]."""
    lift = SIZE_LIFT.get((w, h))
    if lift is not None:
        return lift
    return min(1.5, max(0.5, (max(w, 1) * max(h, 1) / 75_000) ** 0.35))


class GroundTruth:
    """P(view), P(click | view) and P(conversion | click) for one user and one ad.

    ``user`` is a population index, or -1 for someone outside the population (then ``segments``,
    category indexes with equal weights, stand for the interests, and intent is dormant).
    ``t`` is simulated unix time; ``campaign`` keys the fatigue count.
    """

    def __init__(
        self,
        *,
        population: Population,
        intent: IntentBook,
        settings: TruthSettings,
        exposures: ExposureBook | None = None,
    ) -> None:
        self.population = population
        self.intent = intent
        self.settings = settings
        self.exposures = exposures or ExposureBook(half_life_s=settings.fatigue_half_life_h * 3600)
        s = settings
        self._intent_lift = (1.0, s.lift_researching, s.lift_purchased, s.lift_satiated)
        self._cvr = (s.cvr_dormant, s.cvr_researching, 0.0, 0.0)
        self._pos = np.array([POSITION_LIFT.get(p, POSITION_LIFT[0]) for p in range(8)])

    # -- one ad ----------------------------------------------------------------------------------

    def viewability(self, pos: int) -> float:
        s = self.settings
        if pos in _ABOVE:
            return s.viewability_above
        if pos in _BELOW:
            return s.viewability_below
        return (s.viewability_above + s.viewability_below) / 2

    def interest(
        self, user: int, cat: int, t: float, segments: Sequence[int] = ()
    ) -> tuple[float, int]:
        """(the user's weight on category ``cat``, their intent state there at ``t``)."""
        if cat < 0:
            return 0.0, DORMANT
        if user < 0:
            return (1.0 / len(segments) if cat in segments else 0.0), DORMANT
        return self.population.weight(user, cat), self.intent.state_of(user, cat, t)

    def click_factors(
        self,
        *,
        user: int,
        w: int,
        h: int,
        pos: int,
        ad_cat: int,
        t: float,
        site_cat: int = taxonomy.NONE,
        campaign: str = "",
        segments: Sequence[int] = (),
    ) -> dict[str, Any]:
        """Each factor of P(click | view), by name (docs, tests, debugging)."""
        s = self.settings
        m, state = self.interest(user, ad_cat, t, segments)
        n = self.exposures.count(user, campaign, t) if campaign and user >= 0 else 0.0
        return {
            "base": s.base_ctr,
            "size": size_lift(w, h),
            "position": POSITION_LIFT.get(pos, POSITION_LIFT[0]),
            "match": s.match_floor + s.match_gain * m,
            "intent": self._intent_lift[state],
            "context": s.context_lift if ad_cat >= 0 and ad_cat == site_cat else 1.0,
            "fatigue": 1.0 / (1.0 + s.fatigue * n),
            "weight": m,
            "state": state,
            "exposures": n,
        }

    def p_click(self, **opportunity: Any) -> float:
        """P(click | the ad was seen); keywords as :meth:`click_factors`."""
        f = self.click_factors(**opportunity)
        p = f["base"] * f["size"] * f["position"] * f["match"] * f["intent"] * f["context"]
        return float(min(self.settings.max_ctr, p * f["fatigue"]))

    def p_convert(self, *, user: int, ad_cat: int, t: float) -> float:
        """P(a purchase follows | click): by intent state; 0 outside the user's interests."""
        if user < 0 or self.intent.slot_of(user, ad_cat) < 0:
            return 0.0
        return self._cvr[self.intent.state_of(user, ad_cat, t)]

    # -- batches ---------------------------------------------------------------------------------

    def p_click_batch(
        self,
        *,
        users: np.ndarray,
        w: np.ndarray,
        h: np.ndarray,
        pos: np.ndarray,
        ad_cat: np.ndarray,
        site_cat: np.ndarray | None = None,
        exposures: np.ndarray | None = None,
    ) -> np.ndarray:
        """P(click | view) for arrays of population users (>= 0) and ads, with intent as of the
        book's last :meth:`IntentBook.advance` (advance it to the batch's time first).
        ``exposures`` are the fatigue counts (default 0)."""
        s = self.settings
        users = np.asarray(users, dtype=np.int64)
        ad_cat = np.asarray(ad_cat)
        cats = self.population.seg_cat[users]
        hit = cats == ad_cat[:, None]
        has = hit.any(axis=1) & (ad_cat >= 0)
        slot = hit.argmax(axis=1)
        m = np.where(has, self.population.seg_w[users, slot].astype(np.float64), 0.0)
        state = np.where(has, self.intent.state[users, slot], DORMANT)
        sizes = np.array([size_lift(int(a), int(b)) for a, b in zip(w, h, strict=True)])
        position = self._pos[np.clip(np.asarray(pos), 0, 7)]
        intent = np.asarray(self._intent_lift)[state]
        context = np.ones(users.size)
        if site_cat is not None:
            context = np.where((ad_cat >= 0) & (ad_cat == site_cat), s.context_lift, 1.0)
        n = np.zeros(users.size) if exposures is None else np.asarray(exposures, dtype=float)
        p = s.base_ctr * sizes * position * (s.match_floor + s.match_gain * m) * intent * context
        return np.minimum(s.max_ctr, p / (1.0 + s.fatigue * n))
