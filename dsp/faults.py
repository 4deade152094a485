"""Fault injection for the DSP server (tests and demos): pure decisions from a seeded RNG.

A :class:`Faults` says how a misbehaving bidder misbehaves; :meth:`Faults.draw` decides, for one
request, what the server does and how long it waits first. The server does the waiting.

Latency (``delay_s`` of every action but ``hang``), by ``latency_dist``:

- ``fixed``: exactly ``latency_ms`` (``latency_jitter_ms`` must be 0).
- ``uniform``: ``latency_ms`` +/- up to ``latency_jitter_ms``, evenly spread (never below 0).
- ``exponential``: ``latency_ms`` plus an exponential extra with mean ``latency_jitter_ms``:
  a floor and a long tail, like a busy server.
- ``lognormal``: mean ``latency_ms`` and standard deviation ``latency_jitter_ms``: skewed, heavy
  tail, the usual shape of measured service times.

Actions: with probability ``hang_rate`` the server holds the request ``hang_s`` seconds and then
answers 204 (bounded, never forever); ``error_rate``: HTTP 500; ``garbage_rate``: HTTP 200 with a
body that is not JSON; otherwise ``ok``: the bidder answers after the latency.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, fields
from typing import NamedTuple

log = logging.getLogger(__name__)

OK = "ok"
HANG = "hang"
ERROR = "error"
GARBAGE = "garbage"
ACTIONS = (OK, HANG, ERROR, GARBAGE)
LATENCY_DISTS = ("fixed", "uniform", "exponential", "lognormal")


class FaultDraw(NamedTuple):
    """What to do with one request: the action, and the seconds to wait before it."""

    action: str
    delay_s: float


NO_FAULT = FaultDraw(OK, 0.0)


@dataclass(frozen=True, slots=True)
class Faults:
    """How a bidder misbehaves. All zero (the default) is a well-behaved bidder."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    latency_dist: str = "fixed"
    hang_rate: float = 0.0
    error_rate: float = 0.0
    garbage_rate: float = 0.0
    hang_s: float = 30.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "latency_dist":
                if value not in LATENCY_DISTS:
                    raise ValueError(
                        f"latency_dist must be one of {', '.join(LATENCY_DISTS)}, got {value!r}"
                    )
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{f.name} must be a finite number >= 0, got {value!r}")
            if f.name.endswith("_rate") and value > 1:
                raise ValueError(f"{f.name} must be in [0, 1], got {value!r}")
        if self.hang_rate + self.error_rate + self.garbage_rate > 1:
            raise ValueError(
                "hang_rate + error_rate + garbage_rate must be <= 1, got "
                f"{self.hang_rate} + {self.error_rate} + {self.garbage_rate}"
            )
        if self.latency_dist == "fixed" and self.latency_jitter_ms:
            raise ValueError(
                "latency_jitter_ms needs latency_dist uniform, exponential or lognormal "
                "(fixed latency has no jitter)"
            )
        if self.latency_dist == "lognormal" and self.latency_jitter_ms and not self.latency_ms:
            raise ValueError("latency_ms must be > 0 for a lognormal latency with jitter")

    @property
    def active(self) -> bool:
        """Whether any fault or latency is configured at all."""
        return bool(
            self.latency_ms
            or self.latency_jitter_ms
            or self.hang_rate
            or self.error_rate
            or self.garbage_rate
        )

    def draw(self, rng: random.Random) -> FaultDraw:
        """The action and delay for one request.

        Every call consumes the same number of draws from ``rng`` whatever the outcome, so a
        seeded RNG gives the same sequence of decisions for the same sequence of requests.
        """
        u = rng.random()
        delay_s = self.latency_s(rng)
        if u < self.hang_rate:
            return FaultDraw(HANG, float(self.hang_s))
        u -= self.hang_rate
        if u < self.error_rate:
            return FaultDraw(ERROR, delay_s)
        u -= self.error_rate
        if u < self.garbage_rate:
            return FaultDraw(GARBAGE, delay_s)
        return FaultDraw(OK, delay_s)

    def latency_s(self, rng: random.Random) -> float:
        """One latency in seconds (one draw from ``rng``, even for ``fixed``)."""
        x = rng.random()
        base, jitter = self.latency_ms, self.latency_jitter_ms
        dist = self.latency_dist
        if dist == "fixed" or not jitter:
            ms = base
        elif dist == "uniform":
            ms = max(0.0, base + (2 * x - 1) * jitter)
        elif dist == "exponential":
            ms = base - jitter * math.log(1.0 - x)
        else:  # lognormal with mean ``base`` and standard deviation ``jitter``
            sigma2 = math.log1p((jitter / base) ** 2)
            mu = math.log(base) - sigma2 / 2
            ms = math.exp(mu + math.sqrt(sigma2) * _std_normal(rng, x))
        return ms / 1000.0


def _std_normal(rng: random.Random, u1: float) -> float:
    """A standard normal deviate (Box-Muller) from ``u1`` and one more draw."""
    u2 = rng.random()
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
