"""``gavel traffic``: the simulated world's traffic against a running SSP, and the world of a
scenario as ``gavel run`` drives it.

The world (sites, users, intent, advertisers, the ground truth) comes from the scenario file; the
requests go to ``--ssp``; advertiser pixels and attributed conversions go to the DSPs named in
``--dsp NAME=URL`` (and to the scenario's DSPs that have a ``url``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import aiohttp

from exchange.config import override
from gavel.config import DEFAULT_CONFIG, DspSpec, World, load_world
from ssp.driver import TrafficDriver
from ssp.world.settings import Burst
from ssp.world.stats import TrafficStats
from ssp.world.world import SimWorld, build_world


def build_sim_world(world: World) -> SimWorld:
    """The simulated world of a scenario (its sites, ``[users]``, ``[intent]``, ``[truth]`` and
    ``[[advertisers]]``), starting at ``traffic.start``."""
    if not world.sites:
        raise ValueError("the scenario has no [[sites]]: the traffic has nothing to request")
    return build_world(
        sites=world.sites,
        users=world.users,
        intent=world.intent,
        truth=world.truth,
        advertisers=world.advertisers,
        start_ts=world.traffic.start_ts,
    )


def dsp_base(spec: DspSpec) -> str:
    """A DSP's base URL (``http://host:port``), from its bid URL."""
    return spec.bid_url.rsplit("/openrtb2/", 1)[0]


def parse_burst(text: str) -> Burst:
    """``AT:SECONDS:FACTOR`` (``10:5:4``: at 10 s, for 5 s, 4 times the traffic)."""
    try:
        at, seconds, factor = (float(x) for x in text.split(":"))
        return Burst(at_s=at, seconds=seconds, factor=factor)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected AT:SECONDS:FACTOR with numbers (at >= 0, seconds and factor > 0), "
            f"got {text!r}"
        ) from None


def traffic_world(args: argparse.Namespace) -> World:
    """The scenario with the command line's overrides (flags beat file and environment)."""
    world = load_world(args.config or DEFAULT_CONFIG)
    flags = {
        "traffic.qps": args.qps,
        "traffic.duration_s": args.duration,
        "traffic.seed": args.seed,
        "users.seed": args.seed,
        "users.count": args.users,
        "traffic.day_minutes": args.day_minutes,
    }
    for path, value in flags.items():
        if value is not None:
            world = override(world, path, value)
    if args.burst:
        world = override(world, "traffic.bursts", world.traffic.bursts + tuple(args.burst))
    return world


def traffic_command(args: argparse.Namespace) -> int:
    world = traffic_world(args)
    ssp = args.ssp.rstrip("/")
    problem = asyncio.run(_reachable(ssp))
    if problem:
        sys.stderr.write(f"gavel traffic: {problem}\n")
        return 1
    sim = build_sim_world(world)
    dsps = {d.name: dsp_base(d) for d in world.dsp if d.url}
    dsps.update(dict(args.dsp))
    try:
        return asyncio.run(_traffic(args, world, sim, dsps))
    except KeyboardInterrupt:
        return 0


async def _reachable(ssp: str) -> str | None:
    """None when the SSP answers ``/healthz``, else what went wrong."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session,
            session.get(f"{ssp}/healthz") as resp,
        ):
            return None if resp.status == 200 else f"GET {ssp}/healthz answered {resp.status}"
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return f"cannot reach {ssp}: {exc or type(exc).__name__}"


async def _traffic(
    args: argparse.Namespace, world: World, sim: SimWorld, dsps: dict[str, str]
) -> int:
    ssp = args.ssp.rstrip("/")
    t = world.traffic
    out = sys.stdout
    out.write(
        f"gavel traffic: {t.qps:g} ad requests/s for {t.duration_s:g} s to {ssp}; "
        f"{sim.population.n} users, {len(sim.catalog)} sites, a simulated day in "
        f"{t.day_minutes:g} min from {t.start} (Ctrl-C stops)\n"
    )
    out.flush()
    driver = TrafficDriver(ssp_url=ssp, world=sim, settings=t, dsp_urls=dsps)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, AttributeError):
        loop.add_signal_handler(signal.SIGUSR1, lambda: driver.burst(factor=4.0, seconds=5.0))
    mark = 0

    def tick(elapsed: float) -> None:
        nonlocal mark
        if not args.quiet:
            out.write(driver.stats.progress_line(elapsed, mark) + "\n")
            out.flush()
        mark = driver.stats.mark()

    stats = await driver.run(stop=stop, on_tick=tick)
    out.write("\n" + stats.summary() + "\n")
    return _verdict(stats, args.max_error_rate)


def _verdict(stats: TrafficStats, max_error_rate: float) -> int:
    if stats.sent and stats.errors / stats.sent > max_error_rate:
        sys.stderr.write(
            f"gavel traffic: {stats.errors} of {stats.sent} requests failed "
            f"({stats.errors / stats.sent:.1%} > --max-error-rate {max_error_rate:.1%})\n"
        )
        return 1
    return 0
