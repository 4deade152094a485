"""What a user does with a served ad: sees it (impression beacon), clicks it, buys later.

The ``/ad`` answer names the advertiser (``adomain``), the creative (``crid``) and its categories;
the ad's category is its known advertiser's (else the first it declares) and the campaign, for
fatigue, is ``"<adomain>|<crid>"``. A seen ad counts one exposure to its campaign for that user.
A click converts with P(conversion | click) after an exponential delay in simulated time; when the
purchase comes (:meth:`Renderer.convert`) the user moves to ``purchased`` in that category, unless
they bought there meanwhile (then the conversion is lost).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssp.world.advertisers import campaign_key
from ssp.world.world import SimWorld

_VALUE_SIGMA = 0.5
DEFAULT_ORDER_VALUE = 50.0


@dataclass(slots=True)
class Conversion:
    """A purchase that will follow a click, attributed to the served ad."""

    #: Simulated unix time of the purchase.
    ts: float
    user: int
    cat: int
    advertiser: str
    value: float
    #: The DSP that won (its name, ``bidder`` in the /ad answer) and the ids of the served ad.
    bidder: str
    auction: str
    imp: str
    bid: str


@dataclass(slots=True)
class Outcome:
    viewed: bool
    clicked: bool
    p_click: float
    conversion: Conversion | None = None


class Renderer:
    """Draws what users do with served ads, from the ground truth (or fixed rates for tests)."""

    def __init__(
        self,
        *,
        world: SimWorld,
        seed: int,
        click_rate: float | None = None,
        view_rate: float | None = None,
    ) -> None:
        self.world = world
        self.rng = np.random.default_rng([seed, 0x52454E44])  # its own stream of the seed
        self.click_rate = click_rate
        self.view_rate = view_rate
        # the catalog's per-slot constants as Python ints (numpy scalar indexing is slow per ad)
        cat = world.catalog
        self._slot_pos = cat.slot_pos.tolist()
        self._slot_w = cat.slot_w.tolist()
        self._slot_h = cat.slot_h.tolist()
        self._slot_site_cat = cat.site_cat[cat.slot_site].tolist()

    def render(self, *, user: int, slot: int, ts: float, answer: Mapping[str, Any]) -> Outcome:
        """The outcome of showing ``answer`` (a /ad answer) in catalog slot ``slot`` to ``user``
        at simulated time ``ts``."""
        world = self.world
        truth = world.truth
        pos = self._slot_pos[slot]
        p_view = self.view_rate if self.view_rate is not None else truth.viewability(pos)
        rng = self.rng
        if rng.random() >= p_view:
            return Outcome(viewed=False, clicked=False, p_click=0.0)
        adomain = [d for d in answer.get("adomain") or () if isinstance(d, str)]
        cats = [c for c in answer.get("cat") or () if isinstance(c, str)]
        ad_cat = world.advertisers.category_of(adomain, cats)
        campaign = campaign_key(adomain, answer.get("crid"))
        w = answer.get("w") or self._slot_w[slot]
        h = answer.get("h") or self._slot_h[slot]
        if self.click_rate is not None:
            p = self.click_rate
        else:
            p = truth.p_click(
                user=user,
                w=int(w),
                h=int(h),
                pos=pos,
                ad_cat=ad_cat,
                t=ts,
                site_cat=self._slot_site_cat[slot],
                campaign=campaign,
            )
        truth.exposures.record(user, campaign, ts)
        if rng.random() >= p:
            return Outcome(viewed=True, clicked=False, p_click=p)
        out = Outcome(viewed=True, clicked=True, p_click=p)
        p_conv = truth.p_convert(user=user, ad_cat=ad_cat, t=ts)
        if p_conv > 0 and rng.random() < p_conv:
            advertiser = world.advertisers.find(adomain)
            mean = advertiser.order_value if advertiser else DEFAULT_ORDER_VALUE
            delay = rng.exponential(truth.settings.conversion_delay_min * 60)
            out.conversion = Conversion(
                ts=ts + delay,
                user=user,
                cat=ad_cat,
                advertiser=advertiser.domain if advertiser else (adomain[0] if adomain else ""),
                value=round(mean * rng.lognormal(-(_VALUE_SIGMA**2) / 2, _VALUE_SIGMA), 2),
                bidder=str(answer.get("bidder") or ""),
                auction=str(answer.get("auction") or ""),
                imp=str(answer.get("imp") or ""),
                bid=str(answer.get("bid_id") or ""),
            )
        return out

    def convert(self, conversion: Conversion) -> bool:
        """The purchase happens: the user is ``purchased`` in its category from now on. False when
        they had bought there meanwhile (a lost conversion: nothing is sent)."""
        return self.world.intent.purchase(conversion.user, conversion.cat, conversion.ts)
