"""The simulated world's configuration: ``[users]``, ``[intent]``, ``[truth]``, ``[traffic]`` and
``[[advertisers]]`` of a scenario file (configs/default.toml documents every key; docs/world.md
gives the formulas they enter).

Frozen dataclasses, read by :func:`exchange.config.from_dict` (unknown keys are errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ssp.world import taxonomy


def _positive(where: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{where}.{name} must be > 0")


def _share(where: str, **values: float) -> None:
    for name, value in values.items():
        if not 0 <= value <= 1:
            raise ValueError(f"{where}.{name} must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class UserSettings:
    """The population (``[users]``)."""

    count: int = 100_000
    seed: int = 1
    #: Interest segments per user (the top-k IAB categories, with weights summing to 1).
    segments: int = 4
    #: Dirichlet concentration of the segment weights: lower = one dominant interest.
    concentration: float = 0.8
    #: Mean page views per user and day (lognormal across users).
    page_views_per_day: float = 20.0
    #: Spread (sigma of the log) of the page views per user: a few heavy users, many light ones.
    activity_sigma: float = 1.0
    #: Device mix: shares of phones and tablets (the rest are desktops).
    phone_share: float = 0.55
    tablet_share: float = 0.08
    #: Standard deviation of a request's position around the home city centre (km).
    geo_jitter_km: float = 8.0
    #: Interest popularity per category, replacing the built-in one (ssp.world.taxonomy).
    interests: dict[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("users.count must be >= 1")
        if not 1 <= self.segments <= len(taxonomy.IDS):
            raise ValueError(f"users.segments must be between 1 and {len(taxonomy.IDS)}")
        _positive("users", concentration=self.concentration)
        _positive("users", page_views_per_day=self.page_views_per_day)
        if self.activity_sigma < 0 or self.geo_jitter_km < 0:
            raise ValueError("users.activity_sigma and users.geo_jitter_km must be >= 0")
        _share("users", phone_share=self.phone_share, tablet_share=self.tablet_share)
        if self.phone_share + self.tablet_share > 1:
            raise ValueError("users.phone_share + users.tablet_share must be <= 1")
        for cat, weight in self.interests.items():
            taxonomy.check(cat, "users.interests")
            if weight < 0:
                raise ValueError(f"users.interests.{cat} must be >= 0")


@dataclass(frozen=True, slots=True)
class IntentSettings:
    """How intent moves, per user and interest (``[intent]``), in simulated time."""

    #: Research spells per year for an interest of average weight (scaled by the weight).
    research_per_year: float = 6.0
    #: Mean length of a research spell (days).
    research_days: float = 4.0
    #: Share of research spells that end in a purchase without any ad (the rest give up).
    buy_share: float = 0.35
    #: Days a user stays "purchased" (just bought) before "satiated".
    purchased_days: float = 2.0
    #: Mean days "satiated" before the interest goes dormant again.
    satiated_days: float = 21.0
    #: Visits per day to an advertiser's site while researching its category.
    advertiser_visits_per_day: float = 3.0

    def __post_init__(self) -> None:
        _positive(
            "intent",
            research_per_year=self.research_per_year,
            research_days=self.research_days,
            purchased_days=self.purchased_days,
            satiated_days=self.satiated_days,
        )
        _share("intent", buy_share=self.buy_share)
        if self.advertiser_visits_per_day < 0:
            raise ValueError("intent.advertiser_visits_per_day must be >= 0")


@dataclass(frozen=True, slots=True)
class TruthSettings:
    """The ground-truth model (``[truth]``): what users see, click and buy."""

    #: P(click) of a 300x250 above the fold, an average match, a dormant interest, no fatigue.
    base_ctr: float = 0.0015
    #: Match lift = match_floor + match_gain * (the user's weight on the ad's category).
    match_floor: float = 0.5
    match_gain: float = 5.0
    #: Click lift by intent state of the ad's category (dormant = 1).
    lift_researching: float = 3.0
    lift_purchased: float = 1.5
    lift_satiated: float = 0.7
    #: Click lift when the ad's category is the site's content category.
    context_lift: float = 1.2
    #: Fatigue: P(click) / (1 + fatigue * recent exposures to the same campaign).
    fatigue: float = 0.3
    #: Half-life of an exposure in the fatigue count (simulated hours).
    fatigue_half_life_h: float = 24.0
    max_ctr: float = 0.05
    #: P(conversion | click) by intent state (purchased and satiated never convert).
    cvr_dormant: float = 0.01
    cvr_researching: float = 0.12
    #: Mean delay from click to purchase (simulated minutes, exponential).
    conversion_delay_min: float = 45.0
    #: P(the ad is seen, so that the impression beacon fires) above / below the fold.
    viewability_above: float = 0.75
    viewability_below: float = 0.45

    def __post_init__(self) -> None:
        _positive(
            "truth",
            base_ctr=self.base_ctr,
            fatigue_half_life_h=self.fatigue_half_life_h,
            conversion_delay_min=self.conversion_delay_min,
        )
        _share(
            "truth",
            max_ctr=self.max_ctr,
            cvr_dormant=self.cvr_dormant,
            cvr_researching=self.cvr_researching,
            viewability_above=self.viewability_above,
            viewability_below=self.viewability_below,
        )
        for name in ("match_floor", "match_gain", "lift_researching", "lift_purchased"):
            if getattr(self, name) < 0:
                raise ValueError(f"truth.{name} must be >= 0")
        if self.lift_satiated < 0 or self.context_lift <= 0 or self.fatigue < 0:
            raise ValueError("truth.lift_satiated, context_lift and fatigue must be >= 0")


@dataclass(frozen=True, slots=True)
class Burst:
    """A burst of traffic: ``factor`` times the rate for ``seconds``, ``at_s`` into the run."""

    at_s: float
    seconds: float
    factor: float

    def __post_init__(self) -> None:
        if self.at_s < 0:
            raise ValueError("a burst's at_s must be >= 0")
        _positive("burst", seconds=self.seconds, factor=self.factor)


@dataclass(frozen=True, slots=True)
class TrafficSettings:
    """The traffic generator (``[traffic]``) of ``gavel traffic`` and ``gavel run``."""

    #: Ad requests per second (real time), averaged over a simulated day; the diurnal curve
    #: moves the instantaneous rate around it.
    qps: float = 50.0
    duration_s: float = 30.0
    #: A simulated day lasts this many real minutes (1440 = real time).
    day_minutes: float = 10.0
    #: The simulated clock at the start (ISO 8601). Requests carry it as ``ts``.
    start: str = "2025-06-04T16:00:00Z"
    #: False: a flat rate (no diurnal curve).
    diurnal: bool = True
    seed: int = 1
    #: A fixed P(click) per impression instead of the ground truth (tests, load profiles).
    click_rate: float | None = None
    #: A fixed P(impression beacon | served ad) instead of the ground truth's viewability.
    view_rate: float | None = None
    bursts: tuple[Burst, ...] = ()
    #: Requests in flight past this are not sent (counted as ``dropped``): the client never
    #: queues, and its memory stays bounded when the SSP stops answering.
    max_inflight: int = 2048
    #: Client timeout of one ``/ad`` request, beacon or pixel (seconds).
    timeout_s: float = 2.0

    def __post_init__(self) -> None:
        _positive(
            "traffic",
            qps=self.qps,
            day_minutes=self.day_minutes,
            timeout_s=self.timeout_s,
        )
        if self.duration_s < 0:
            raise ValueError("traffic.duration_s must be >= 0")
        if self.max_inflight < 1:
            raise ValueError("traffic.max_inflight must be >= 1")
        for name in ("click_rate", "view_rate"):
            value = getattr(self, name)
            if value is not None:
                _share("traffic", **{name: value})
        self.start_ts  # noqa: B018 - validates the date

    @property
    def start_ts(self) -> float:
        """``start`` as unix seconds (UTC when no offset is given)."""
        try:
            when = datetime.fromisoformat(self.start)
        except ValueError:
            raise ValueError(
                f"traffic.start must be an ISO 8601 date and time, not {self.start!r}"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return 1440.0 / self.day_minutes


@dataclass(frozen=True, slots=True)
class Advertiser:
    """An advertiser of the world (``[[advertisers]]``): what it sells, who holds its pixel."""

    domain: str
    #: The IAB category of what it sells: researching users of this category visit its site.
    cat: str
    name: str = ""
    #: Names of the DSPs holding its pixel: they receive its visits and purchases.
    pixel: tuple[str, ...] = ()
    #: Mean order value of a purchase (lognormal around it).
    order_value: float = 50.0
    #: Share among the advertisers of the same category (which one a researching user visits).
    share: float = 1.0

    def __post_init__(self) -> None:
        if not self.domain:
            raise ValueError("every advertiser needs a domain")
        taxonomy.check(self.cat, f"advertiser {self.domain!r}: cat")
        _positive(f"advertiser {self.domain!r}", order_value=self.order_value)
        if self.share < 0:
            raise ValueError(f"advertiser {self.domain!r}: share must be >= 0")
