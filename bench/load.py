"""``gavel bench load`` / ``make loadtest``: start a world, run Locust against it, gate on the result.

What it does, in order:

1. reads a load profile (configs/load/*.toml; default steady.toml) and the scenario it names;
2. starts that scenario's DSP servers (plus the profile's own [[dsp]]) and the SSP, each as its own
   process (``python -m gavel dsp|ssp``) on a free 127.0.0.1 port, and waits for their /healthz;
3. runs Locust headless in its own process (``python -m locust -f bench/locustfile.py``) for a
   fixed time and user count, or the profile's stages, writing CSV files, Locust's HTML report and
   the gate's figures (JSON) to bench/results/; a progress line every few seconds reads the SSP;
4. stops everything it started, by PID, whatever happens (also on Ctrl-C and SIGTERM);
5. exits with Locust's exit code: 0 every threshold met, 1 one missed (the report says which),
   2 a usage or configuration error. A server that does not start is 1, as for ``gavel run``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.load_profile import (
    DEFAULT_PROFILE,
    PROFILES,
    ROOT,
    LoadProfile,
    format_stages,
    load_profile,
    world_path,
)
from bench.procs import Processes, ServerFailed, exit_on_sigterm, get_json, niced
from exchange.config import ConfigError
from gavel.config import DspSpec, World, load_world
from gavel.run import dsp_command

RESULTS = ROOT / "bench" / "results"
LOCUSTFILE = ROOT / "bench" / "locustfile.py"
STAGES_FILE = ROOT / "bench" / "locust_stages.py"
#: Time Locust gets past the planned run (start-up, the last requests, the reports) before it is
#: stopped, then killed.
GRACE_S = 60.0

EPILOG = f"""\
profiles ({PROFILES.relative_to(ROOT)}/):
  steady.toml      fixed users for a fixed time; the everyday gate
  ramp.toml        users stepped up until it saturates; prints throughput vs latency per step
                   and the knee
  spike.toml       a calm load, a sudden 10x burst, calm again
  dsp-hang.toml    the default world plus one DSP that never answers in time
  smoke.toml       20 s, light, generous thresholds: what CI runs (errors and the deadline)

thresholds (exit code 1 when one is missed; docs/loadtest.md says exactly what each measures):
  --p95-ms / --p99-ms   Locust's percentiles of the auction requests (/ad, /openrtb2/auction)
  --max-ms              the deadline gate: slowest auction, client side and server side
  --max-fail-ratio      failed requests / all requests (default 0: any failure fails)
  --max-timeout-ratio   bidder calls that timed out at the SSP / all bidder calls

processes: 1 (the default) is one plain Locust process. On this 2-core machine that is right: the
  SSP needs a core and the DSPs much of the other, while one Locust process (~10k requests/s per
  core with FastHttpUser) drives the SSP's few thousand auctions/s with a fraction of a core; more
  Locust processes would only take CPU from the servers under test. Use -1 (a master and one
  worker per core) when the load generator has cores of its own.

examples:
  make loadtest                                          steady.toml, 30 s
  gavel bench load --profile configs/load/ramp.toml      find the knee
  gavel bench load --users 50 --duration 60 --p99-ms 80
  gavel bench load --host http://10.0.0.5:8000           start nothing, load a running SSP
  gavel bench load -- --loglevel DEBUG                   anything after -- goes to Locust

results: {RESULTS.relative_to(ROOT)}/NAME_stats.csv, NAME_stats_history.csv, NAME_failures.csv,
  NAME_exceptions.csv, NAME.html (Locust's report) and NAME_gate.json (the gate's figures);
  NAME is the profile's file name unless --name says otherwise.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gavel bench load",
        description="Start the SSP and DSP servers of a load profile, run Locust headless "
        "against them for a fixed time, print client- and server-side latency, timeouts and "
        "errors, and exit 1 when a threshold is missed (0 when all are met, 2 on a usage error).",
        epilog=EPILOG,
        usage="%(prog)s [options] [-- LOCUST_ARGS ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--profile",
        default=str(DEFAULT_PROFILE.relative_to(ROOT)),
        metavar="FILE",
        help="load profile (TOML) (default configs/load/steady.toml)",
    )
    p.add_argument("--duration", type=float, metavar="S", help="seconds of load (no stages)")
    p.add_argument("-u", "--users", type=int, metavar="N", help="concurrent users (no stages)")
    p.add_argument("-r", "--spawn-rate", type=float, metavar="R", help="users started per second")
    p.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="Locust processes: 1 plain (default), N a master and N workers, -1 one per core",
    )
    p.add_argument(
        "--user-rps", type=float, metavar="X", help="requests/s of each user; 0 = no wait"
    )
    p.add_argument("--ad-weight", type=int, metavar="N", help="weight of /ad users")
    p.add_argument("--openrtb-weight", type=int, metavar="N", help="weight of OpenRTB users")
    thresholds = (
        ("--p95-ms", "Locust's p95 of auction requests must be <= X ms"),
        ("--p99-ms", "Locust's p99 of auction requests must be <= X ms"),
        ("--max-ms", "deadline gate: no auction slower than X ms, client or server side"),
        ("--max-fail-ratio", "failed requests / all requests must be <= X (default 0)"),
        ("--max-timeout-ratio", "bidder calls timed out at the SSP / all bidder calls <= X"),
    )
    for flag, text in thresholds:
        p.add_argument(flag, type=float, metavar="X", help=f"{text} (overrides the profile)")
    p.add_argument(
        "--host", metavar="URL", help="an SSP already running: start no server, load this one"
    )
    p.add_argument("--name", help="results file name prefix (default: the profile's name)")
    p.add_argument(
        "--results", default=str(RESULTS), metavar="DIR", help="results folder (bench/results)"
    )
    p.add_argument(
        "--interval",
        type=float,
        default=5.0,
        metavar="S",
        help="progress line period (5 s; 0 = none)",
    )
    p.add_argument(
        "--others-nice",
        type=int,
        default=10,
        metavar="N",
        help="run the DSPs and Locust, which stand in for other machines, at nice N so that on "
        "one machine they do not take the SSP's CPU (default 10; 0 = share it equally)",
    )
    p.add_argument("locust_args", nargs="*", metavar="-- LOCUST_ARGS", help=argparse.SUPPRESS)
    return p


def apply_flags(profile: LoadProfile, args: argparse.Namespace) -> LoadProfile:
    """The profile with the command line's overrides (flags win over the file)."""
    top: dict[str, Any] = {}
    for flag, key in (
        ("duration", "duration_s"),
        ("users", "users"),
        ("spawn_rate", "spawn_rate"),
        ("processes", "processes"),
    ):
        if getattr(args, flag) is not None:
            top[key] = getattr(args, flag)
    if top.get("users") and "spawn_rate" not in top:
        top["spawn_rate"] = float(max(profile.spawn_rate, top["users"]))
    if ("users" in top or "duration_s" in top) and profile.stages:
        top["stages"] = ()  # a fixed run asked for on the command line replaces the stages
    traffic = {
        k: getattr(args, k)
        for k in ("user_rps", "ad_weight", "openrtb_weight")
        if getattr(args, k) is not None
    }
    limits = {
        k: getattr(args, k)
        for k in ("p95_ms", "p99_ms", "max_ms", "max_fail_ratio", "max_timeout_ratio")
        if getattr(args, k) is not None
    }
    try:
        if traffic:
            top["traffic"] = dataclasses.replace(profile.traffic, **traffic)
        if limits:
            top["thresholds"] = dataclasses.replace(profile.thresholds, **limits)
        return dataclasses.replace(profile, **top)
    except ValueError as exc:
        raise ConfigError(f"command line: {exc}") from None


def locust_command(
    profile: LoadProfile, *, host: str, world: Path, prefix: Path, extra: Sequence[str] = ()
) -> list[str]:
    """The Locust command line for ``profile`` against ``host``; reports go to ``prefix``*."""
    files = str(LOCUSTFILE)
    if profile.stages:
        files += "," + str(STAGES_FILE)
    t, th = profile.traffic, profile.thresholds
    cmd = [sys.executable, "-m", "locust", "-f", files, "--headless", "--host", host]
    cmd += ["--csv", str(prefix), "--html", f"{prefix}.html", "--only-summary"]
    cmd += ["--gate-json", f"{prefix}_gate.json", "--world", str(world)]
    cmd += ["--ad-weight", str(t.ad_weight), "--openrtb-weight", str(t.openrtb_weight)]
    cmd += ["--user-rps", f"{t.user_rps:g}", "--corpus-share", f"{t.corpus_share:g}"]
    cmd += ["--impression-rate", f"{t.impression_rate:g}", "--mix-seed", str(t.seed)]
    cmd += ["--stop-timeout", "5"]
    for name, value in th.items():
        cmd += [f"--{name.replace('_', '-')}", f"{value:g}"]
    if profile.stages:
        cmd += ["--stages", format_stages(profile.stages)]
    else:
        cmd += ["-u", str(profile.users), "-r", f"{profile.spawn_rate:g}"]
        cmd += ["-t", f"{math.ceil(profile.duration_s)}s"]
    if profile.processes != 1:
        cmd += ["--processes", str(profile.processes)]
    return cmd + list(extra)


def start_world(
    procs: Processes, profile: LoadProfile, world_file: Path, world: World, *, nice: int = 0
) -> tuple[str, dict[str, str]]:
    """Start the DSPs and the SSP: the SSP's base URL and each DSP's bid URL."""
    dsps = {d.name: d for d in world.dsp}
    dsps.update({d.name: d for d in profile.dsp})

    def start(i: int, spec: DspSpec) -> str:
        if spec.url:
            return spec.url
        # dsp_command's own --port (0 here) is dropped: Processes.start adds the free port.
        cmd = dsp_command(dataclasses.replace(spec, port=0), 0, seed=world.traffic.seed + i)
        args = cmd[cmd.index("dsp") :]
        at = args.index("--port")
        del args[at : at + 2]
        return procs.start(f"DSP {spec.name}", "gavel", *args, nice=nice).url("/openrtb2/bid")

    # The DSPs start at once (each waits for its own /healthz): start-up is mostly imports.
    with ThreadPoolExecutor(max_workers=max(1, len(dsps))) as pool:
        futures = [pool.submit(start, i, spec) for i, spec in enumerate(dsps.values())]
        urls = {spec.name: f.result() for spec, f in zip(dsps.values(), futures, strict=True)}
    flags = [a for name, url in urls.items() for a in ("--dsp", f"{name}={url}")]
    ssp = procs.start(
        "SSP", "gavel", "ssp", "--config", str(world_file), "--host", "127.0.0.1", *flags
    )
    return ssp.url(), urls


class Progress:
    """A line every ``interval`` seconds from the SSP's /stats (stderr)."""

    def __init__(self, host: str, total_s: float, interval: float) -> None:
        self.host, self.total_s, self.interval = host, total_s, interval
        self.t0 = time.monotonic()
        self.next = self.t0 + interval
        self.last: dict[str, Any] | None = None
        self.last_t = self.t0

    def poll(self) -> None:
        now = time.monotonic()
        if self.interval <= 0 or now < self.next:
            return
        self.next = now + self.interval
        try:
            stats = get_json(f"{self.host}/stats")
        except (OSError, ValueError):
            return
        line = progress_line(stats, self.last, now - self.last_t, now - self.t0, self.total_s)
        self.last, self.last_t = stats, now
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def progress_line(
    now: dict[str, Any], before: dict[str, Any] | None, dt: float, elapsed: float, total: float
) -> str:
    def delta(key: str) -> float:
        return now.get(key, 0) - (before.get(key, 0) if before else 0)

    def bidders(field: str, d: dict[str, Any] | None) -> int:
        return sum(b.get(field, 0) for b in (d or {}).get("bidders", {}).values())

    calls = bidders("requests", now) - bidders("requests", before)
    timeouts = bidders("timeouts", now) - bidders("timeouts", before)
    lat = now.get("latency_s", {})
    share = f"{timeouts / calls * 100:4.1f}%" if calls else "   -"
    return (
        f"[{elapsed:5.0f}s/{total:.0f}s] auctions/s {delta('auctions') / max(dt, 1e-9):7.0f}  "
        f"server p50 {lat.get('p50', 0) * 1000:6.2f} ms  p99 {lat.get('p99', 0) * 1000:6.2f} ms  "
        f"max {lat.get('max', 0) * 1000:6.1f} ms  bidder timeouts {share}  "
        f"shed {delta('overload'):.0f}  in flight {now.get('in_flight', 0)}"
    )


def run_locust(
    cmd: Sequence[str], progress: Progress | None, limit_s: float, *, nice: int = 0
) -> int:
    """Run Locust (own process group) to completion and return its exit code; a Locust still
    running after ``limit_s`` is stopped, and the run fails (1)."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=niced(nice),
    )
    deadline = time.monotonic() + limit_s
    overran = False
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                sys.stderr.write(f"load: Locust still running after {limit_s:.0f} s, stopping it\n")
                overran = True
                break
            if progress is not None:
                progress.poll()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.25)
    finally:
        stop_group(proc)
    code = proc.returncode
    if overran or code is None or code < 0:  # stopped by a signal: not a verdict Locust gave
        return 1
    return code


def stop_group(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM Locust's process group (its --processes workers share it), SIGKILL after ``grace``."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    _signal_group(proc.pid, signal.SIGKILL)  # forked workers left behind, if any


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        profile_file = Path(args.profile)
        if not profile_file.is_absolute() and not profile_file.exists():
            profile_file = ROOT / profile_file
        profile = apply_flags(load_profile(profile_file), args)
        world_file = world_path(profile, profile_file)
        world = load_world(world_file)
    except ConfigError as exc:
        print(f"gavel bench load: {exc}", file=sys.stderr)
        return 2
    name = args.name or profile_file.stem
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    prefix = results / name
    exit_on_sigterm()  # so that the finally below stops the servers
    procs = Processes()
    try:
        if args.host:
            host = args.host.rstrip("/")
        else:
            print(f"load: starting the world of {world_file.name} ...", file=sys.stderr, flush=True)
            host, dsps = start_world(procs, profile, world_file, world, nice=args.others_nice)
            listed = ", ".join(f"{n} {u}" for n, u in dsps.items())
            print(f"load: SSP {host}; DSPs {listed}", file=sys.stderr, flush=True)
        cmd = locust_command(
            profile, host=host, world=world_file, prefix=prefix, extra=args.locust_args
        )
        what = (
            f"{len(profile.stages)} stages up to {profile.peak_users} users"
            if profile.stages
            else f"{profile.users} users"
        )
        print(
            f"load: {profile_file.name}: {what} for {profile.total_s:g} s against {host}, "
            f"{_processes(profile.processes)}",
            file=sys.stderr,
            flush=True,
        )
        progress = Progress(host, profile.total_s, args.interval)
        code = run_locust(cmd, progress, profile.total_s + GRACE_S, nice=args.others_nice)
    except ServerFailed as exc:
        print(f"gavel bench load: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("load: interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
    written = [p.name for p in sorted(results.glob(f"{name}*")) if p.is_file()]
    print(f"load: exit code {code}; results in {results}: {', '.join(written)}", file=sys.stderr)
    return code


def _processes(n: int) -> str:
    if n == 1:
        return "one Locust process"
    return (
        "a Locust master and one worker per core" if n < 0 else f"a Locust master and {n} workers"
    )


if __name__ == "__main__":
    raise SystemExit(main())
