"""A staged load for Locust (a ``LoadTestShape``), loaded next to bench/locustfile.py::

    locust -f bench/locustfile.py,bench/locust_stages.py --headless --host URL \
        --stages 20:10:10,20:20:10,20:40:20

``--stages`` is ``SECONDS:USERS[:SPAWN_RATE]`` per stage, in order (``gavel bench load`` builds it
from a profile's ``[[stages]]``). At each stage's end the shape measures that stage on its own,
from Locust's counters and the SSP's ``/metrics``, and at the end prints a table of throughput
against latency per stage, with the knee when the users grew at every stage (ramp to saturation).

A separate module because Locust uses a shape class whenever a locustfile defines one: the plain
fixed-users run must not see it. It imports nothing from bench/locustfile.py (a second copy of
its user classes would be loaded), only the pure helpers.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from locust import LoadTestShape, events  # noqa: E402
from locust.runners import WorkerRunner  # noqa: E402

from bench.load_profile import Stage, parse_stages  # noqa: E402
from bench.loadgate import (  # noqa: E402
    ServerSnapshot,
    Step,
    diff_counts,
    histogram_quantile,
    parse_metrics,
    render_steps,
    rounded_percentile,
    timeout_ratio,
)
from bench.procs import get  # noqa: E402

AUCTION_ROWS = ("/ad", "/openrtb2/auction")
KNEE_P99_MS = 150.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--stages",
        default="",
        help="staged load: SECONDS:USERS[:SPAWN_RATE],... (bench/locust_stages.py)",
    )
    parser.add_argument(
        "--knee-p99-ms",
        type=float,
        default=KNEE_P99_MS,
        help="the knee is before the stage whose client p99 passes this (default 150: tmax + 50)",
    )


@dataclass(frozen=True, slots=True)
class _Mark:
    """Counters at a stage boundary."""

    at: float
    requests: int
    failures: int
    auctions: int
    counts: dict[int, int]
    server: ServerSnapshot | None


class StagedShape(LoadTestShape):
    """Runs ``--stages`` in order, then stops; measures each stage on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: tuple[Stage, ...] | None = None
        self.current = -1
        self.marks: list[_Mark] = []
        self.users: list[int] = []

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None  # Locust attaches the runner before the first tick
        env = self.runner.environment
        if self.stages is None:
            assert env.parsed_options is not None
            text = env.parsed_options.stages
            try:
                self.stages = parse_stages(text) if text else ()
            except ValueError as exc:  # ConfigError is one
                logging.getLogger(__name__).error("%s", exc)
                self.stages = ()
            if not self.stages:
                logging.getLogger(__name__).error("no --stages: nothing to run")
                return None
        elapsed, end = self.get_run_time(), 0.0
        for i, stage in enumerate(self.stages):
            end += stage.duration_s
            if elapsed < end:
                if i != self.current:
                    self._mark(env)
                    self.current = i
                    self.users.append(stage.users)
                return stage.users, stage.rate
        if self.current < len(self.stages):
            self._mark(env)
            self.current = len(self.stages)
            _Report.steps = self.steps()
        return None

    def _mark(self, env: Any) -> None:
        stats = env.runner.stats
        counts: dict[int, int] = {}
        auctions = 0
        for (name, _), entry in stats.entries.items():
            if name in AUCTION_ROWS:
                auctions += entry.num_requests
                for ms, n in entry.response_times.items():
                    counts[ms] = counts.get(ms, 0) + n
        try:
            server: ServerSnapshot | None = parse_metrics(get(f"{env.host}/metrics").decode())
        except (OSError, ValueError):
            server = None
        self.marks.append(
            _Mark(
                time.monotonic(),
                stats.total.num_requests,
                stats.total.num_failures,
                auctions,
                counts,
                server,
            )
        )

    def steps(self) -> list[Step]:
        out = []
        for users, a, b in zip(self.users, self.marks, self.marks[1:], strict=False):
            seconds = max(1e-9, b.at - a.at)
            counts = diff_counts(b.counts, a.counts)
            server = b.server.minus(a.server) if a.server and b.server else None
            out.append(
                Step(
                    users=users,
                    seconds=seconds,
                    requests=b.requests - a.requests,
                    failures=b.failures - a.failures,
                    auctions=b.auctions - a.auctions,
                    shed=server.auctions.get("overload", 0.0) if server else 0.0,
                    client_p50_ms=rounded_percentile(counts, 0.5),
                    client_p99_ms=rounded_percentile(counts, 0.99),
                    server_p50=histogram_quantile(server.buckets, 0.5) if server else None,
                    server_p99=histogram_quantile(server.buckets, 0.99) if server else None,
                    timeout_ratio=timeout_ratio(server.outcomes) if server else None,
                )
            )
        return out


class _Report:
    steps: list[Step] | None = None


@events.quitting.add_listener
def _print_steps(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    shape = environment.shape_class
    if _Report.steps is None and isinstance(shape, StagedShape) and shape.marks:
        shape._mark(environment)  # stopped before the last stage ended: measure what ran
        _Report.steps = shape.steps()
    if _Report.steps:
        limit = float(getattr(environment.parsed_options, "knee_p99_ms", KNEE_P99_MS))
        # Printed now, before Locust's own tables; the gate's verdict comes last of all.
        sys.stdout.write("\n== Throughput and latency per stage ==\n")
        sys.stdout.write(render_steps(_Report.steps, p99_limit_ms=limit) + "\n")
        sys.stdout.flush()
