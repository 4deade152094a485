"""A steady traffic driver for the demo world: media-site ad requests to ``/ad`` at a fixed rate.

Open loop: requests leave on schedule whether or not earlier ones were answered, as real users do.
For each filled slot it fires the impression beacon and, with ``click_rate``, the click beacon.
(The simulated world, with users, intent and a ground-truth click model, replaces the random parts.)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from ssp.config import Site

DEVICES = (
    {"devicetype": 4, "os": "iOS", "ua": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)"},
    {"devicetype": 4, "os": "Android", "ua": "Mozilla/5.0 (Linux; Android 14; Pixel 8)"},
    {"devicetype": 2, "os": "Windows", "ua": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
    {"devicetype": 2, "os": "macOS", "ua": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)"},
)
CITIES: tuple[dict[str, Any], ...] = (
    {"city": "New York", "country": "USA", "lat": 40.7128, "lon": -74.006, "utcoffset": -300},
    {"city": "London", "country": "GBR", "lat": 51.5074, "lon": -0.1278, "utcoffset": 0},
    {"city": "Paris", "country": "FRA", "lat": 48.8566, "lon": 2.3522, "utcoffset": 60},
    {"city": "Tokyo", "country": "JPN", "lat": 35.6762, "lon": 139.6503, "utcoffset": 540},
)


@dataclass
class DriverStats:
    sent: int = 0
    filled: int = 0
    unfilled: int = 0
    errors: int = 0
    impressions: int = 0
    clicks: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, client side

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(len(values) * q))]


def make_bodies(sites: Sequence[Site], *, users: int, seed: int, n: int = 2000) -> list[bytes]:
    """``n`` ad-request bodies drawn once (sites, slots, users, devices, cities), reused in a cycle."""
    rng = random.Random(seed)
    slots = [(site, slot) for site in sites for slot in site.slots]
    bodies = []
    for _ in range(n):
        site, slot = rng.choice(slots)
        user = rng.randrange(users)
        city = CITIES[user % len(CITIES)]
        geo = {
            **city,
            "lat": city["lat"] + rng.uniform(-0.05, 0.05),
            "lon": city["lon"] + rng.uniform(-0.05, 0.05),
        }
        body = {
            "site": site.id,
            "slot": slot.id,
            "page": site.page or f"https://{site.domain}/",
            "user": f"u{user}",
            "device": {**DEVICES[user % len(DEVICES)], "ip": f"203.0.113.{user % 250 + 1}"},
            "geo": geo,
        }
        bodies.append(orjson.dumps(body))
    return bodies


async def drive(
    ssp_url: str,
    sites: Sequence[Site],
    *,
    qps: float,
    duration_s: float,
    users: int = 1000,
    click_rate: float = 0.02,
    seed: int = 1,
    stop: asyncio.Event | None = None,
) -> DriverStats:
    """Send ``qps`` ad requests a second for ``duration_s`` seconds (or until ``stop`` is set)."""
    if not any(site.slots for site in sites):
        raise ValueError("the driver needs at least one site with a slot")
    bodies = make_bodies(sites, users=users, seed=seed)
    rng = random.Random(seed + 1)
    stats = DriverStats()
    stop = stop or asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=5)
    connector = aiohttp.TCPConnector(limit=256)
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: bytes) -> None:
            t0 = time.perf_counter()
            try:
                async with session.post(
                    f"{ssp_url}/ad", data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    data = await resp.read()
                    stats.latencies.append(time.perf_counter() - t0)
                    if resp.status == 204:
                        stats.unfilled += 1
                        return
                    if resp.status != 200:
                        stats.errors += 1
                        return
                ad = orjson.loads(data)
                stats.filled += 1
                async with session.get(ad["impression_url"]) as r:
                    await r.read()
                stats.impressions += 1
                if rng.random() < click_rate:
                    async with session.get(ad["click_url"]) as r:
                        await r.read()
                    stats.clicks += 1
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError):
                stats.errors += 1

        loop = asyncio.get_running_loop()
        start = loop.time()
        interval = 1.0 / qps
        i = 0
        while not stop.is_set():
            now = loop.time()
            if now - start >= duration_s:
                break
            due = start + i * interval
            if due > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=due - now)
                continue
            task = loop.create_task(one(bodies[i % len(bodies)]))
            pending.add(task)
            task.add_done_callback(pending.discard)
            stats.sent += 1
            i += 1
        if pending:
            await asyncio.wait(pending, timeout=5)
    return stats
