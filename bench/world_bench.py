"""The simulated world's benchmark: can the generator keep up, and what do a million users cost?

Two figures, in-process on one core, nothing sent over the network:

1. **Requests generated per second**: ``TrafficGenerator.next_batch`` windows of ``--window``
   real seconds (the live driver uses 0.25 s) at ``--qps``, for ``--seconds`` of traffic; each
   request is a finished ``POST /ad`` body (bytes), with the world's intent moving and advertiser
   pixel events drawn alongside. Reported per CPU second (``time.process_time``) and per wall
   second, for each population size in ``--users``.
2. **Memory and build time of the population**: the bytes of the numpy arrays (users and intent)
   and the process's resident memory before and after building, for each population size.

Usage::

    python -m bench.world_bench                       # 100,000 and 1,000,000 users
    python -m bench.world_bench --users 1000000 --qps 200000 --seconds 20 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.report import machine
from gavel.config import DEFAULT_CONFIG, load_world
from ssp.world.clock import SimClock
from ssp.world.settings import UserSettings
from ssp.world.traffic import TrafficGenerator
from ssp.world.world import build_world


def rss_bytes() -> int:
    """Resident set size of this process (Linux), 0 where unknown."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def bench_users(users: int, opts: argparse.Namespace) -> dict[str, Any]:
    cfg = load_world(opts.config)
    gc.collect()
    rss0 = rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    world = build_world(
        sites=cfg.sites,
        users=UserSettings(count=users, seed=opts.seed),
        intent=cfg.intent,
        truth=cfg.truth,
        advertisers=cfg.advertisers,
        start_ts=cfg.traffic.start_ts,
    )
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = rss_bytes()
    clock = SimClock.day_in(start_ts=cfg.traffic.start_ts, day_minutes=cfg.traffic.day_minutes)
    gen = TrafficGenerator(world=world, qps=opts.qps, clock=clock, seed=opts.seed)
    gen.next_batch(opts.window)  # warm-up: caches, first allocations
    requests = body_bytes = pixels = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while gen.t < opts.seconds + opts.window:
        batch = gen.next_batch(gen.t + opts.window)
        requests += len(batch)
        body_bytes += sum(map(len, batch.bodies))
        pixels += len(batch.pixels)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "users": users,
        "population_mb": world.population.nbytes / 1e6,
        "intent_mb": world.intent.nbytes / 1e6,
        "rss_growth_mb": (rss1 - rss0) / 1e6,
        "build_s": build_s,
        "build_cpu_s": build_cpu,
        "requests": requests,
        "pixel_events": pixels,
        "mean_body_bytes": body_bytes / max(1, requests),
        "requests_per_cpu_s": requests / cpu if cpu else 0.0,
        "requests_per_wall_s": requests / wall if wall else 0.0,
        "window_ms_cpu": cpu / max(1, round(opts.seconds / opts.window)) * 1000,
    }


def render(results: dict[str, Any]) -> str:
    m, o = results["machine"], results["options"]
    lines = [
        f"Gavel world benchmark, {results['date']}",
        f"machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['python']}, "
        f"load average at start {m['loadavg_at_start']}",
        f"generator: {o['seconds']:g} s of traffic at {o['qps']:,.0f} requests/s in windows of "
        f"{o['window']:g} s (in-process, one core, nothing sent)",
        "",
        f"{'users':>10} {'arrays MB':>10} {'RSS +MB':>8} {'build s':>8} "
        f"{'requests/CPU s':>15} {'requests/wall s':>16} {'CPU ms/window':>14} {'body B':>7}",
    ]
    for r in results["runs"]:
        lines.append(
            f"{r['users']:>10,} {r['population_mb'] + r['intent_mb']:>10.1f} "
            f"{r['rss_growth_mb']:>8.1f} {r['build_s']:>8.2f} {r['requests_per_cpu_s']:>15,.0f} "
            f"{r['requests_per_wall_s']:>16,.0f} {r['window_ms_cpu']:>14.1f} "
            f"{r['mean_body_bytes']:>7.0f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.world_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--qps", type=float, default=100_000, help="generated requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of traffic")
    parser.add_argument("--window", type=float, default=0.25, help="seconds per batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="scenario file")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    opts = parser.parse_args(argv)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "options": {k: v for k, v in vars(opts).items() if k != "json"},
        "runs": [],
    }
    for users in opts.users:
        print(f"world bench: {users:,} users ...", file=sys.stderr, flush=True)
        results["runs"].append(bench_users(users, opts))
        gc.collect()
    print(render(results))
    if opts.json:
        Path(opts.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
