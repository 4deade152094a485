"""Ready-made ``/ad`` bodies from the simulated world, for load tests (bench/traffic_mix.py).

The first ``n`` requests of a small world's traffic (users with interests, devices and home
cities; sites by share; slots by layout), as the traffic driver would send them. Pixels, clicks
and conversions are not part of a load test's bodies.
"""

from __future__ import annotations

from collections.abc import Sequence

from ssp.config import Site
from ssp.world.clock import SimClock
from ssp.world.settings import TrafficSettings, UserSettings
from ssp.world.traffic import TrafficGenerator
from ssp.world.world import build_world


def ad_requests(
    sites: Sequence[Site], *, n: int = 5000, seed: int = 1, users: int = 20_000
) -> list[bytes]:
    """``n`` ``POST /ad`` bodies (JSON bytes) of the world of ``sites``, deterministic for ``seed``."""
    start = TrafficSettings().start_ts
    world = build_world(sites=sites, users=UserSettings(count=users, seed=seed), start_ts=start)
    clock = SimClock.day_in(start_ts=start, day_minutes=TrafficSettings().day_minutes)
    gen = TrafficGenerator(world=world, qps=max(1000.0, float(n)), clock=clock, seed=seed)
    bodies: list[bytes] = []
    while len(bodies) < n:
        bodies += gen.next_batch(gen.t + 1.0).bodies
    return bodies[:n]
