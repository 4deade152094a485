"""``gavel run``: the demo world, an SSP and several DSP servers as processes, driven by traffic.

Each DSP and the SSP run as their own process (``python -m gavel dsp|ssp``), as they would in
production; the traffic driver runs here. A status line each second reads the SSP's ``/stats``; the
summary at the end shows per-DSP bids, wins, timeouts and spend, and publisher revenue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from collections.abc import Sequence
from typing import Any

import aiohttp

from exchange.config import override
from gavel.config import DEFAULT_CONFIG, DspSpec, World, load_world
from gavel.traffic import build_sim_world, dsp_base
from ssp.driver import TrafficDriver
from ssp.world.stats import TrafficStats
from ssp.world.world import SimWorld

START_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_browser(url: str) -> bool:
    """Open ``url`` in a web browser, unless the CI variable is set, the output is not a terminal
    or (on Linux) there is no display."""
    if os.environ.get("CI") or not sys.stdout.isatty():
        return False
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def dsp_command(spec: DspSpec, port: int, seed: int) -> list[str]:
    f = spec.faults
    what = ["--config", spec.config] if spec.config else ["--strategy", spec.strategy]
    cmd = [sys.executable, "-m", "gavel", "dsp", "--port", str(port), "--name", spec.name,
           *what, "--seed", str(seed),
           "--latency-ms", str(f.latency_ms), "--latency-jitter-ms", str(f.latency_jitter_ms),
           "--latency-dist", f.latency_dist, "--hang-rate", str(f.hang_rate),
           "--error-rate", str(f.error_rate), "--garbage-rate", str(f.garbage_rate),
           "--hang-s", str(f.hang_s)]  # fmt: skip
    for key, value in spec.params.items():
        cmd += ["--param", f"{key}={_param_text(value)}"]
    return cmd


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


class Processes:
    """The processes of one demo world, started together and stopped together."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes], Any]] = []

    def start(self, name: str, cmd: Sequence[str]) -> None:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Own session: a Ctrl-C in the terminal reaches only `gavel run`, which then stops its
        # children itself, after reading the final figures from the SSP.
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.procs.append((name, proc, log))

    def dead(self) -> list[str]:
        out = []
        for name, proc, log in self.procs:
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read()[-2000:].decode(errors="replace")
                out.append(f"{name} exited with code {proc.returncode}:\n{tail}")
        return out

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _, proc, log in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


async def wait_healthy(urls: Sequence[str], world: Processes) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        for url in urls:
            while True:
                dead = world.dead()
                if dead:
                    raise RuntimeError("a server failed to start:\n" + "\n".join(dead))
                try:
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            break
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.1)


async def fetch_stats(session: aiohttp.ClientSession, ssp: str) -> dict[str, Any] | None:
    try:
        async with session.get(f"{ssp}/stats") as resp:
            return dict(await resp.json())
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
        return None


def status_line(now: dict[str, Any], before: dict[str, Any] | None, elapsed: float) -> str:
    prev_auctions = before["auctions"] if before else 0
    prev_timeouts = sum(b["timeouts"] for b in before["bidders"].values()) if before else 0
    timeouts = sum(b["timeouts"] for b in now["bidders"].values())
    lat = now["latency_s"]
    return (
        f"[{elapsed:5.1f}s] auctions/s {now['auctions'] - prev_auctions:5d}  "
        f"fill {now['fill_rate'] * 100:5.1f}%  p50 {lat['p50'] * 1000:6.2f} ms  "
        f"p99 {lat['p99'] * 1000:6.2f} ms  timeouts +{timeouts - prev_timeouts}  "
        f"revenue {now['publisher_revenue']:.4f}"
    )


def summary(stats: dict[str, Any], client: TrafficStats, tmax_ms: int) -> str:
    rows = [f"{'DSP':<10} {'requests':>9} {'bids':>7} {'wins':>7} {'timeouts':>9} {'errors':>7} "
            f"{'invalid':>8} {'impr.':>7} {'spend':>10}"]  # fmt: skip
    for name, b in stats["bidders"].items():
        rows.append(
            f"{name:<10} {b['requests']:>9} {b['bids']:>7} {b['wins']:>7} {b['timeouts']:>9} "
            f"{b['errors']:>7} {b['invalid']:>8} {b['impressions']:>7} {b['spend']:>10.6f}"
        )
    lat = stats["latency_s"]
    rows += [
        "",
        f"auctions {stats['auctions']}, filled {stats['filled']} "
        f"(fill rate {stats['fill_rate'] * 100:.1f}%), rejected {stats['rejected']}, shed {stats['overload']}",
        f"server latency p50 {lat['p50'] * 1000:.2f} ms, p99 {lat['p99'] * 1000:.2f} ms, "
        f"max {lat['max'] * 1000:.2f} ms (deadline {tmax_ms} ms)",
        f"spend {stats['spend']:.6f} = publisher revenue {stats['publisher_revenue']:.6f} "
        f"+ exchange fee {stats['exchange_fee']:.6f}",
        "",
        client.summary(),
    ]
    return "\n".join(rows)


def run_world(args: argparse.Namespace) -> int:
    world = load_world(args.config or DEFAULT_CONFIG)
    if args.duration is not None:
        world = override(world, "traffic.duration_s", args.duration)
    if args.qps is not None:
        world = override(world, "traffic.qps", args.qps)
    if args.port is not None:
        world = override(world, "ssp.port", args.port)
    if not world.dsp:
        raise ValueError("the scenario has no [[dsp]]: nothing would bid")
    sim = build_sim_world(world)  # raises when there are no [[sites]]
    try:
        return asyncio.run(_run(world, sim, args))
    except KeyboardInterrupt:
        return 0


async def _run(world: World, sim: SimWorld, args: argparse.Namespace) -> int:
    procs = Processes()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        dsps = []
        for i, spec in enumerate(world.dsp):
            if not spec.url:
                port = spec.port or free_port()
                spec = dataclasses.replace(spec, port=port)
                procs.start(
                    f"DSP {spec.name}", dsp_command(spec, port, seed=world.traffic.seed + i)
                )
            dsps.append(spec)
        ssp_port = world.ssp.port or free_port()
        ssp_url = f"http://127.0.0.1:{ssp_port}"
        cmd = [sys.executable, "-m", "gavel", "ssp", "--port", str(ssp_port)]
        if args.config:
            cmd += ["--config", args.config]
        else:
            cmd += ["--config", str(DEFAULT_CONFIG)]
        for spec in dsps:
            cmd += ["--dsp", f"{spec.name}={spec.bid_url}"]
        if getattr(args, "event_log", None):
            cmd += ["--event-log", args.event_log]
        procs.start("SSP", cmd)
        health = [f"{ssp_url}/healthz"] + [
            s.bid_url.rsplit("/openrtb2/", 1)[0] + "/healthz" for s in dsps
        ]
        await wait_healthy(health, procs)
        t = world.traffic
        out = sys.stdout
        out.write(f"Gavel demo world: SSP {ssp_url}, DSPs {', '.join(s.name for s in dsps)}; "
                  f"{t.qps:g} ad requests/s for {t.duration_s:g} s (Ctrl-C stops)\n")  # fmt: skip
        out.write(f"Dashboard: {ssp_url}/dashboard\n")
        out.flush()
        if not getattr(args, "no_browser", False):
            open_browser(f"{ssp_url}/dashboard")
        traffic = TrafficDriver(ssp_url=ssp_url, world=sim, settings=t,
                                dsp_urls={s.name: dsp_base(s) for s in dsps})  # fmt: skip
        driver = loop.create_task(traffic.run(stop=stop))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            before = None
            start = loop.time()
            while not driver.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(driver), timeout=1.0)
                now = await fetch_stats(session, ssp_url)
                if now is not None and not args.quiet and not driver.done():
                    line = status_line(now, before, loop.time() - start)
                    out.write(f"{line}  sim {traffic.stats.sim_clock()}\n")
                    out.flush()
                    before = now
            client = driver.result()
            await asyncio.sleep(0.3)  # let the last beacons and notices land
            final = await fetch_stats(session, ssp_url)
        if final is None:
            raise RuntimeError("the SSP stopped answering /stats")
        out.write("\n" + summary(final, client, world.exchange.tmax_ms) + "\n")
        return 0
    except RuntimeError as exc:
        sys.stderr.write(f"gavel run: {exc}\n")
        return 1
    finally:
        procs.stop()
