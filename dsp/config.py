"""Campaign files (``configs/dsp/NAME.toml``): a ``[dsp]`` table and ``[[campaigns]]``.

Read with :func:`load_dsp_config` (tomllib into these frozen dataclasses, through
:mod:`exchange.config`): unknown keys are errors naming the key and the file, and each value is
checked here, with the campaign it belongs to in the message. docs/campaigns.md is the reference.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchange.config import ConfigError, from_dict, load_file

log = logging.getLogger(__name__)

PACING_MODES = ("asap", "throttle", "bid")
CTR_MODELS = ("constant", "logistic", "oracle")
DAY_ALIASES: dict[str, tuple[int, ...]] = {
    "mon": (0,),
    "tue": (1,),
    "wed": (2,),
    "thu": (3,),
    "fri": (4,),
    "sat": (5,),
    "sun": (6,),
    "monday": (0,),
    "tuesday": (1,),
    "wednesday": (2,),
    "thursday": (3,),
    "friday": (4,),
    "saturday": (5,),
    "sunday": (6,),
    "weekdays": (0, 1, 2, 3, 4),
    "weekend": (5, 6),
    "daily": (0, 1, 2, 3, 4, 5, 6),
}


def parse_hhmm(text: str, what: str) -> int:
    """``"17:30"`` -> 1050 (minutes after midnight); ``"24:00"`` is the end of the day."""
    hh, sep, mm = text.partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and len(mm) == 2):
        raise ValueError(f"{what} must look like HH:MM, got {text!r}")
    minutes = int(hh) * 60 + int(mm)
    if int(mm) >= 60 or minutes > 1440:
        raise ValueError(f"{what} must be a time between 00:00 and 24:00, got {text!r}")
    return minutes


def parse_days(days: tuple[str, ...], what: str) -> tuple[int, ...]:
    """Day names (``mon``..``sun``, ``weekdays``, ``weekend``, ``daily``) -> weekdays, Monday = 0."""
    out: set[int] = set()
    for d in days:
        found = DAY_ALIASES.get(d.lower())
        if found is None:
            raise ValueError(
                f"{what}: unknown day {d!r} (use mon..sun, weekdays, weekend or daily)"
            )
        out.update(found)
    return tuple(sorted(out))


def parse_time(text: str, what: str) -> float | None:
    """An ISO 8601 date or date-time as unix seconds (UTC when no offset is given); "" = None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} must be an ISO 8601 date or date-time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class CtrSettings:
    """``[dsp.ctr]``: the DSP's click-through-rate estimator (see :mod:`dsp.ctr`)."""

    #: "logistic" (online logistic regression on click feedback), "constant" or "oracle".
    model: str = "logistic"
    #: constant: the pCTR; logistic: the prior, predicted before any feedback.
    ctr: float = 0.001
    learning_rate: float = 0.05
    l2: float = 1e-6
    #: logistic: 2**bits hashed feature weights.
    bits: int = 18
    #: oracle: "package.module:function" with the signature truth(request, imp, creative) -> float.
    truth: str = ""

    def __post_init__(self) -> None:
        if self.model not in CTR_MODELS:
            raise ValueError(f"dsp.ctr.model must be one of {', '.join(CTR_MODELS)}")
        if not 0 < self.ctr < 1:
            raise ValueError("dsp.ctr.ctr must be between 0 and 1 (exclusive)")
        if not 8 <= self.bits <= 26:
            raise ValueError("dsp.ctr.bits must be between 8 and 26")
        if self.learning_rate <= 0 or self.l2 < 0:
            raise ValueError("dsp.ctr.learning_rate must be > 0 and dsp.ctr.l2 >= 0")


@dataclass(frozen=True, slots=True)
class DspSettings:
    """``[dsp]``: the DSP as a whole."""

    name: str = "dsp"
    #: ``seatbid[].seat`` of every bid; empty = ``name``.
    seat: str = ""
    currency: str = "USD"
    #: A bid with no win or loss notice after this many seconds (bidder clock) is released.
    bid_ttl_s: float = 10.0
    #: A win with no billing notice after this many seconds is released (the ad never rendered).
    win_ttl_s: float = 300.0
    #: A conversion pixel without bid ids goes to the advertiser's campaign with the user's latest
    #: impression within this many days (last touch).
    attribution_days: float = 7.0
    ctr: CtrSettings = field(default_factory=CtrSettings)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("dsp.name must not be empty")
        for key in ("bid_ttl_s", "win_ttl_s", "attribution_days"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"dsp.{key} must be a number > 0")

    @property
    def seat_id(self) -> str:
        return self.seat or self.name


@dataclass(frozen=True, slots=True)
class IncludeExclude:
    """A list to match (any of ``include``; empty = anything) and one to avoid (none of ``exclude``)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GeofenceConfig:
    lat: float
    lon: float
    radius_m: float

    def check(self, where: str) -> None:
        if not -90 <= self.lat <= 90 or not -180 <= self.lon <= 180:
            raise ValueError(f"{where}: geofence at ({self.lat}, {self.lon}) is not on the Earth")
        if not (math.isfinite(self.radius_m) and self.radius_m > 0):
            raise ValueError(f"{where}: geofence radius_m must be > 0")


@dataclass(frozen=True, slots=True)
class DaypartConfig:
    """Days of the week and a time window [start, end) in the user's local time.

    ``end`` before ``start`` runs past midnight ("fri" 22:00-02:00 includes Saturday 01:00).
    """

    days: tuple[str, ...] = ("daily",)
    start: str = "00:00"
    end: str = "24:00"

    def check(self, where: str) -> None:
        parse_days(self.days, f"{where}: daypart days")
        start = parse_hhmm(self.start, f"{where}: daypart start")
        if start == parse_hhmm(self.end, f"{where}: daypart end"):
            raise ValueError(f"{where}: daypart {self.start}-{self.end} is empty")


@dataclass(frozen=True, slots=True)
class RetargetingConfig:
    """Users who visited the advertiser's site in the last ``days`` days and have not bought since
    (learned from ``/pixel``); with ``categories``, a visit to one of those categories."""

    days: float = 30.0
    categories: tuple[str, ...] = ()

    def check(self, where: str) -> None:
        if not (math.isfinite(self.days) and self.days > 0):
            raise ValueError(f"{where}: retargeting.days must be > 0")


@dataclass(frozen=True, slots=True)
class TargetingConfig:
    """Who and where: every rule given must match; an empty rule matches everything."""

    segments: IncludeExclude = field(default_factory=IncludeExclude)
    site_cat: IncludeExclude = field(default_factory=IncludeExclude)
    site_domain: IncludeExclude = field(default_factory=IncludeExclude)
    devicetype: tuple[int, ...] = ()
    os: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    geofences: tuple[GeofenceConfig, ...] = ()
    dayparts: tuple[DaypartConfig, ...] = ()
    retargeting: RetargetingConfig | None = None

    def check(self, where: str) -> None:
        for d in self.devicetype:
            if not 1 <= d <= 7:
                raise ValueError(f"{where}: devicetype {d} is not an OpenRTB device type (1-7)")
        for fence in self.geofences:
            fence.check(where)
        for part in self.dayparts:
            part.check(where)
        if self.retargeting is not None:
            self.retargeting.check(where)


@dataclass(frozen=True, slots=True)
class FrequencyConfig:
    """Impressions per user per campaign per calendar hour / day (0 = no cap)."""

    per_hour: int = 0
    per_day: int = 0

    def check(self, where: str) -> None:
        if self.per_hour < 0 or self.per_day < 0:
            raise ValueError(f"{where}: frequency caps must be >= 0")


@dataclass(frozen=True, slots=True)
class CreativeConfig:
    id: str
    w: int
    h: int
    #: IAB categories; empty = the campaign's.
    cat: tuple[str, ...] = ()
    #: Advertiser domain; empty = the campaign's.
    adomain: str = ""
    #: HTML markup; empty = a generated banner showing the advertiser's name.
    html: str = ""

    def check(self, where: str) -> None:
        if not self.id:
            raise ValueError(f"{where}: every creative needs an id")
        if self.w <= 0 or self.h <= 0:
            raise ValueError(f"{where}: creative {self.id!r}: w and h must be > 0")


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    id: str
    #: The advertiser's domain: the bid's ``adomain`` and the key of its ``/pixel`` events.
    adomain: str
    advertiser: str = ""
    cat: tuple[str, ...] = ()
    #: Money in the DSP's currency; 0 = no limit.
    budget_total: float = 0.0
    budget_daily: float = 0.0
    pacing: str = "asap"
    #: The advertiser's time zone (minutes east of UTC): its day for daily budgets and frequency
    #: caps, and the local time of dayparts when the request has no ``device.geo.utcoffset``.
    utcoffset: int = 0
    #: What a click is worth to the advertiser, and the cost per click it aims at (strategies read
    #: them from the bid context).
    value_per_click: float = 0.0
    cpc_goal: float = 0.0
    #: The highest CPM ever bid; 0 = no cap.
    max_bid: float = 0.0
    #: ISO 8601 flight dates (UTC unless an offset is given); empty = open-ended.
    start: str = ""
    end: str = ""
    strategy: str = "constant"
    params: dict[str, Any] = field(default_factory=dict)
    targeting: TargetingConfig = field(default_factory=TargetingConfig)
    frequency: FrequencyConfig = field(default_factory=FrequencyConfig)
    creatives: tuple[CreativeConfig, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("every campaign needs an id")
        where = f"campaign {self.id!r}"
        if not self.adomain:
            raise ValueError(f"{where}: adomain is required")
        if not self.creatives:
            raise ValueError(f"{where}: needs at least one [[campaigns.creatives]]")
        for creative in self.creatives:
            creative.check(where)
        ids = [c.id for c in self.creatives]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{where}: creative ids must be unique")
        self.targeting.check(where)
        self.frequency.check(where)
        for key in ("budget_total", "budget_daily", "value_per_click", "cpc_goal", "max_bid"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{where}: {key} must be a number >= 0")
        if self.budget_total and self.budget_daily > self.budget_total:
            raise ValueError(f"{where}: budget_daily is larger than budget_total")
        if self.pacing not in PACING_MODES:
            raise ValueError(f"{where}: pacing must be one of {', '.join(PACING_MODES)}")
        if self.pacing != "asap" and not self.budget_daily:
            raise ValueError(f"{where}: pacing {self.pacing!r} needs a budget_daily to pace")
        if not -720 <= self.utcoffset <= 840:
            raise ValueError(f"{where}: utcoffset must be minutes between -720 and 840")
        start = parse_time(self.start, f"{where}: start")
        end = parse_time(self.end, f"{where}: end")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"{where}: end must be after start")
        if not self.strategy:
            raise ValueError(f"{where}: strategy must not be empty")


@dataclass(frozen=True, slots=True)
class DspConfig:
    """A whole campaign file."""

    dsp: DspSettings = field(default_factory=DspSettings)
    campaigns: tuple[CampaignConfig, ...] = ()

    def __post_init__(self) -> None:
        ids = [c.id for c in self.campaigns]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"campaign ids must be unique: {', '.join(dup)}")


def load_dsp_config(source: str | Path | Mapping[str, Any] | DspConfig) -> DspConfig:
    """A campaign file (a path), an inline mapping of the same shape, or a DspConfig as is."""
    if isinstance(source, DspConfig):
        return source
    if isinstance(source, Mapping):
        return from_dict(DspConfig, source, where="campaign config")
    if not source:
        raise ConfigError("a campaign bidder needs a config: a TOML file or a table")
    return load_file(DspConfig, source)
