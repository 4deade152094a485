"""Load profiles (``configs/load/*.toml``): what ``gavel bench load`` starts and how it drives it.

Read with :func:`exchange.config.load_file` into frozen dataclasses: an unknown key is an error
naming the key and the file. Every key is optional; see configs/load/steady.toml for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.loadgate import Thresholds
from exchange.config import ConfigError, from_dict, load_file
from gavel.config import DspSpec

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "configs" / "load"
DEFAULT_PROFILE = PROFILES / "steady.toml"


@dataclass(frozen=True, slots=True)
class Stage:
    """``users`` users for ``duration_s`` seconds, reached at ``spawn_rate`` users/s."""

    duration_s: float
    users: int
    spawn_rate: float = 0.0  # 0: all at once

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ValueError("stages: duration_s must be > 0")
        if self.users < 0:
            raise ValueError("stages: users must be >= 0")
        if self.spawn_rate < 0:
            raise ValueError("stages: spawn_rate must be >= 0")

    @property
    def rate(self) -> float:
        return self.spawn_rate or float(max(1, self.users))


@dataclass(frozen=True, slots=True)
class Traffic:
    """The mix of requests Locust sends (see bench/locustfile.py)."""

    #: Relative weights of the two kinds of users: media sites (``POST /ad``) and OpenRTB
    #: clients (``POST /openrtb2/auction``). 0 leaves a kind out.
    ad_weight: int = 3
    openrtb_weight: int = 1
    #: Requests per second of each user (Locust's constant_throughput); 0 = back to back.
    user_rps: float = 0.0
    #: Share of OpenRTB requests drawn from the conformance corpus; the rest are generated.
    corpus_share: float = 0.5
    #: Share of filled /ad answers whose impression beacon the page fires (GET /imp).
    impression_rate: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.ad_weight < 0 or self.openrtb_weight < 0:
            raise ValueError("traffic: weights must be >= 0")
        if self.ad_weight + self.openrtb_weight == 0:
            raise ValueError("traffic: ad_weight + openrtb_weight must be > 0")
        if self.user_rps < 0:
            raise ValueError("traffic.user_rps must be >= 0")
        for name in ("corpus_share", "impression_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"traffic.{name} must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class LoadProfile:
    description: str = ""
    #: The scenario whose SSP settings, sites and DSPs are started (relative to this file).
    world: str = "../default.toml"
    #: Users and spawn rate (users/s) for a fixed run of ``duration_s`` seconds; ignored with stages.
    users: int = 20
    spawn_rate: float = 20.0
    duration_s: float = 30.0
    #: Locust processes generating the load: 1 = one plain process; N > 1 = a master and N
    #: workers (Locust's --processes); -1 = one worker per core.
    processes: int = 1
    traffic: Traffic = field(default_factory=Traffic)
    thresholds: Thresholds = field(default_factory=Thresholds)
    #: Staged load (a LoadTestShape): each stage's users for its duration, in order.
    stages: tuple[Stage, ...] = ()
    #: DSPs started for this profile instead of the world's (same keys as a scenario's [[dsp]]).
    dsp: tuple[DspSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("users must be >= 1")
        if not self.spawn_rate > 0:
            raise ValueError("spawn_rate must be > 0")
        if not self.duration_s > 0:
            raise ValueError("duration_s must be > 0")
        if self.processes == 0 or self.processes < -1:
            raise ValueError("processes must be >= 1, or -1 for one per core")
        names = [d.name for d in self.dsp]
        if len(set(names)) != len(names):
            raise ValueError("dsp names must be unique")

    @property
    def total_s(self) -> float:
        return sum(s.duration_s for s in self.stages) if self.stages else self.duration_s

    @property
    def peak_users(self) -> int:
        return max(s.users for s in self.stages) if self.stages else self.users


def load_profile(path: str | Path) -> LoadProfile:
    return load_file(LoadProfile, path)


def world_path(profile: LoadProfile, profile_path: str | Path) -> Path:
    """The profile's scenario file, relative to the profile file."""
    world = Path(profile.world)
    return world if world.is_absolute() else (Path(profile_path).parent / world).resolve()


def format_stages(stages: tuple[Stage, ...]) -> str:
    """Stages as one command-line value: ``"30:10:10,30:20:10"`` (seconds:users:spawn rate)."""
    return ",".join(f"{s.duration_s:g}:{s.users}:{s.rate:g}" for s in stages)


def parse_stages(text: str) -> tuple[Stage, ...]:
    """The inverse of :func:`format_stages`; ConfigError naming the bad part."""
    stages = []
    for part in text.split(","):
        fields = part.strip().split(":")
        if len(fields) not in (2, 3):
            raise ConfigError(f"--stages: {part!r} is not SECONDS:USERS[:SPAWN_RATE]")
        try:
            values = {"duration_s": float(fields[0]), "users": int(fields[1])}
            if len(fields) == 3:
                values["spawn_rate"] = float(fields[2])
        except ValueError:
            raise ConfigError(f"--stages: {part!r} is not SECONDS:USERS[:SPAWN_RATE]") from None
        stages.append(from_dict(Stage, values, where="--stages"))
    return tuple(stages)
