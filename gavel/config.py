"""A scenario (world) file: the exchange, the SSP, its DSPs, its sites, and the simulated world.

See configs/default.toml for every key with its meaning. Precedence: defaults < file < environment
(``GAVEL_<SECTION>_<KEY>``) < command-line flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsp.faults import Faults
from exchange.config import apply_env, from_dict, load_file
from exchange.settings import ExchangeSettings
from ssp.config import DspEndpoint, Site, SspSettings
from ssp.world.settings import (
    Advertiser,
    IntentSettings,
    TrafficSettings,
    TruthSettings,
    UserSettings,
)


@dataclass(frozen=True, slots=True)
class DspSpec:
    """A DSP: where the SSP reaches it and, for ``gavel run``, how to start it."""

    name: str
    #: The DSP's bid endpoint. Empty: ``gavel run`` starts it on 127.0.0.1:``port`` (0 = any free port).
    url: str = ""
    port: int = 0
    strategy: str = "constant"
    params: dict[str, Any] = field(default_factory=dict)
    #: Fault injection of the started DSP: latency, hangs, errors, garbage (see ``dsp.faults``).
    faults: Faults = field(default_factory=Faults)
    #: A campaign file (configs/dsp/NAME.toml): ``gavel run`` serves it with the campaign bidder
    #: (``gavel dsp --config``) instead of ``strategy`` and ``params``.
    config: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("every dsp needs a name")
        if self.config and self.params:
            raise ValueError(f"dsp {self.name!r}: config and params exclude each other")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"dsp {self.name!r}: port must be between 0 and 65535")

    @property
    def bid_url(self) -> str:
        if self.url:
            return self.url
        if not self.port:
            raise ValueError(f"dsp {self.name!r} has neither a url nor a port")
        return f"http://127.0.0.1:{self.port}/openrtb2/bid"

    def endpoint(self) -> DspEndpoint:
        base = self.bid_url.rsplit("/openrtb2/", 1)[0]
        click = (
            f"{base}/click?auction=${{AUCTION_ID}}&imp=${{AUCTION_IMP_ID}}&bid=${{AUCTION_BID_ID}}"
        )
        return DspEndpoint(name=self.name, url=self.bid_url, click_url=click)


@dataclass(frozen=True, slots=True)
class World:
    exchange: ExchangeSettings = field(default_factory=ExchangeSettings)
    ssp: SspSettings = field(default_factory=SspSettings)
    #: The simulated world (ssp.world): its traffic, users, intent, ground truth and advertisers.
    traffic: TrafficSettings = field(default_factory=TrafficSettings)
    users: UserSettings = field(default_factory=UserSettings)
    intent: IntentSettings = field(default_factory=IntentSettings)
    truth: TruthSettings = field(default_factory=TruthSettings)
    dsp: tuple[DspSpec, ...] = ()
    sites: tuple[Site, ...] = ()
    advertisers: tuple[Advertiser, ...] = ()

    def __post_init__(self) -> None:
        names = [d.name for d in self.dsp]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"dsp names must be unique: {', '.join(sorted(dup))}")

    def endpoints(self) -> list[DspEndpoint]:
        return [d.endpoint() for d in self.dsp]


DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.toml"


def load_world(path: str | Path | None = None, *, environ: dict[str, str] | None = None) -> World:
    """Read a scenario file (none: the built-in defaults) and apply the environment."""
    world = load_file(World, path) if path else from_dict(World, {}, where="defaults")
    return apply_env(world, os.environ if environ is None else environ)
