"""Experiment files (TOML): the world, the competing DSPs, the auction, and the variants to compare.

Read with :func:`exchange.config.load_file` into frozen dataclasses: unknown keys are errors naming
the key and the file. docs/simulation.md documents every key; configs/experiments/ has examples.
:func:`expand` turns an experiment into its runs' settings: each variant (default: one, the
experiment as written) times each budget fraction (the iPinYou protocol: a budget is a fraction of
the total market cost measured by an unconstrained pass), times each seed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from dsp.faults import Faults
from exchange.config import ConfigError, load_file
from gavel.sim.metrics import DSP_FIELDS

AUCTIONS = {"second": 2, "first": 1}
PATHS = ("auto", "object", "batch")


@dataclass(frozen=True, slots=True)
class DspEntry:
    """One competing DSP. Exactly one of ``strategy`` (a pricing strategy on every imp, with the
    simulator's :class:`~gavel.sim.bidders.StrategyBidder`), ``bidder`` (any Bidder by registry id
    or ``package.module:Class``, with ``params``) or ``config`` (a campaign file) says how it bids."""

    name: str
    strategy: str = ""
    bidder: str = ""
    config: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    cat: str = "IAB1"
    adomain: str = ""
    value_per_click: float = 1.0
    budget: float = 0.0
    max_bid: float = 0.0
    pctr: str = "oracle"
    ctr: float = 0.001
    latency: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("every [[dsp]] needs a name")
        kinds = [k for k in (self.strategy, self.bidder, self.config) if k]
        if len(kinds) != 1:
            raise ValueError(f"dsp {self.name!r}: give exactly one of strategy, bidder or config")
        if self.pctr not in ("oracle", "constant"):
            raise ValueError(f"dsp {self.name!r}: pctr must be 'oracle' or 'constant'")
        if self.budget < 0 or self.max_bid < 0:
            raise ValueError(f"dsp {self.name!r}: budget and max_bid must be >= 0")


@dataclass(frozen=True, slots=True)
class Variant:
    """What one variant changes: in the ``dsp`` it names (default: the experiment's ``focus``),
    and in the market. Keys left out keep the experiment's value."""

    name: str
    dsp: str = ""
    strategy: str | None = None
    bidder: str | None = None
    config: str | None = None
    params: dict[str, Any] | None = None
    budget: float | None = None
    max_bid: float | None = None
    latency: Faults | None = None
    auction: str | None = None
    floor_scale: float | None = None


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str = "experiment"
    description: str = ""
    #: The scenario file of the world (sites, users, intent, truth, advertisers, exchange).
    world: str = "configs/default.toml"
    users: int = 20_000
    days: float = 1.0
    #: Ad requests per simulated second, the mean over a day (the world's diurnal curve shapes it).
    qps: float = 1.0
    seed: int = 1
    runs: int = 1
    auction: str = "second"
    floor_scale: float = 1.0
    tmax_ms: int = 100
    path: str = "auto"
    #: The DSP the variants and budget fractions apply to (default: the first).
    focus: str = ""
    budget_fractions: tuple[float, ...] = ()
    #: Figures of the focus DSP (``variants.csv`` columns) to compare each variant with the
    #: first, paired by seed (:func:`gavel.sim.report.comparisons`); the first one is the answer.
    compare: tuple[str, ...] = ()
    dsp: tuple[DspEntry, ...] = ()
    variants: tuple[Variant, ...] = ()

    def __post_init__(self) -> None:
        if not self.dsp:
            raise ValueError("an experiment needs at least one [[dsp]]")
        names = [d.name for d in self.dsp]
        if len(set(names)) != len(names):
            raise ValueError("dsp names must be unique")
        if self.auction not in AUCTIONS:
            raise ValueError(f"auction must be 'second' or 'first', got {self.auction!r}")
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {', '.join(PATHS)}, got {self.path!r}")
        if self.users <= 0 or self.days <= 0 or self.qps <= 0 or self.runs <= 0:
            raise ValueError("users, days, qps and runs must be > 0")
        if self.focus and self.focus not in names:
            raise ValueError(f"focus {self.focus!r} is not a [[dsp]] name")
        for f in self.budget_fractions:
            if not 0 < f <= 1:
                raise ValueError(f"budget_fractions must be in (0, 1], got {f}")
        labels = [v.name for v in self.variants]
        if len(set(labels)) != len(labels):
            raise ValueError("variant names must be unique")
        for v in self.variants:
            if v.dsp and v.dsp not in names:
                raise ValueError(f"variant {v.name!r}: no dsp {v.dsp!r}")
            if v.auction is not None and v.auction not in AUCTIONS:
                raise ValueError(f"variant {v.name!r}: auction must be 'second' or 'first'")
        for figure in self.compare:
            if figure not in DSP_FIELDS:
                raise ValueError(f"compare: {figure!r} is not one of {', '.join(DSP_FIELDS)}")
        if self.budget_fractions and not self.dsp_named(self.focus_name).strategy:
            raise ValueError(
                "budget_fractions need a focus DSP with a strategy (not a bidder/config)"
            )

    @property
    def focus_name(self) -> str:
        return self.focus or self.dsp[0].name

    def dsp_named(self, name: str) -> DspEntry:
        return next(d for d in self.dsp if d.name == name)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """The settings of one variant (before seeds): its label, DSPs, auction and floors."""

    label: str
    variant: str
    fraction: float | None
    dsps: tuple[DspEntry, ...]
    at: int
    floor_scale: float


def load_experiment(path: str | Path) -> Experiment:
    return load_file(Experiment, path)


def fraction_label(f: float | None) -> str:
    if f is None:
        return ""
    frac = Fraction(f).limit_denominator(1024)
    return f"{frac.numerator}/{frac.denominator}"


def expand(exp: Experiment) -> list[RunSpec]:
    """Each variant times each budget fraction, in file order."""
    variants = exp.variants or (Variant(name="baseline"),)
    fractions: tuple[float | None, ...] = exp.budget_fractions or (None,)
    out = []
    for v in variants:
        target = v.dsp or exp.focus_name
        dsps = tuple(_apply(d, v) if d.name == target else d for d in exp.dsp)
        for f in fractions:
            label = v.name if f is None else f"{v.name} @ {fraction_label(f)}"
            out.append(
                RunSpec(
                    label=label,
                    variant=v.name,
                    fraction=f,
                    dsps=dsps,
                    at=AUCTIONS[v.auction or exp.auction],
                    floor_scale=exp.floor_scale if v.floor_scale is None else v.floor_scale,
                )
            )
    return out


def _apply(d: DspEntry, v: Variant) -> DspEntry:
    changes: dict[str, Any] = {}
    if v.strategy is not None or v.bidder is not None or v.config is not None:
        changes.update(strategy=v.strategy or "", bidder=v.bidder or "", config=v.config or "")
    for key in ("params", "budget", "max_bid", "latency"):
        value = getattr(v, key)
        if value is not None:
            changes[key] = value
    try:
        return dataclasses.replace(d, **changes)
    except ValueError as exc:
        raise ConfigError(f"variant {v.name!r}: {exc}") from None
