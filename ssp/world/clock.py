"""Simulated time: the clock that compresses a day into minutes, and the diurnal curve.

Requests carry simulated unix time (``ts``), so bidders' dayparts and pacing follow it. A world
clock maps real seconds since the start of a run to simulated time: ``sim = start + real * speed``
with ``speed = 1440 / day_minutes`` (a simulated day in ``day_minutes`` real minutes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative page-view rate per local hour (00:00-01:00 first), from typical web traffic: a trough
#: before dawn, a morning rise, a lunch bump and the evening peak. Normalised to mean 1 below.
HOURLY = (
    0.42, 0.28, 0.20, 0.17, 0.18, 0.26, 0.45, 0.75, 0.98, 1.05, 1.08, 1.14,
    1.25, 1.20, 1.12, 1.10, 1.14, 1.24, 1.40, 1.58, 1.70, 1.62, 1.30, 0.82,
)  # fmt: skip
DAY_S = 86_400.0


def _minute_table() -> np.ndarray:
    """The curve per minute of the day, linear between hour midpoints, mean exactly 1."""
    hours = np.array(HOURLY + HOURLY[:1], dtype=float)
    minutes = (np.arange(1440) - 30) / 60.0  # hour h is centred on h:30
    base = np.floor(minutes).astype(int) % 24
    frac = minutes - np.floor(minutes)
    table = hours[base] * (1 - frac) + hours[base + 1] * frac
    return table / table.mean()


DIURNAL = _minute_table()
DIURNAL_PEAK = float(DIURNAL.max())


def diurnal(local_seconds: np.ndarray | float) -> np.ndarray:
    """The diurnal factor at local time of day (seconds since local midnight, any day)."""
    minute = (np.asarray(local_seconds, dtype=float) // 60).astype(np.int64) % 1440
    return DIURNAL[minute]


@dataclass(frozen=True, slots=True)
class SimClock:
    """Real seconds since a run's start <-> simulated unix time."""

    start_ts: float
    #: Simulated seconds per real second.
    speed: float

    @classmethod
    def day_in(cls, *, start_ts: float, day_minutes: float) -> SimClock:
        return cls(start_ts=start_ts, speed=1440.0 / day_minutes)

    def sim(self, real_s: float) -> float:
        """Simulated unix time at ``real_s`` real seconds since the start."""
        return self.start_ts + real_s * self.speed

    def sim_array(self, real_s: np.ndarray) -> np.ndarray:
        return self.start_ts + real_s * self.speed

    def real(self, sim_ts: float) -> float:
        """Real seconds since the start at which simulated time ``sim_ts`` comes."""
        return (sim_ts - self.start_ts) / self.speed
