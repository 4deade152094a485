"""Gavel's load test: media-site and OpenRTB traffic against the SSP, and a gate with an exit code.

Run it through ``gavel bench load`` / ``make loadtest`` (which start the servers), or by hand
against a running SSP::

    locust -f bench/locustfile.py --headless --host http://127.0.0.1:8000 -u 20 -r 20 -t 30s \
        --p99-ms 120 --max-ms 150 --max-fail-ratio 0

Two kinds of users (``FastHttpUser``), weights set with ``--ad-weight`` / ``--openrtb-weight``:

- ``MediaSiteUser``: ``POST /ad``, page views of the world's sites (``--world``), 200 or 204
  expected; with ``--impression-rate`` it also fires the impression beacon of a filled slot
  (``GET /imp``, its own row).
- ``OpenRtbUser``: ``POST /openrtb2/auction``, requests from the conformance corpus and generated
  ones (``--corpus-share``). A request that meets OpenRTB's requirements must get 200 or 204;
  one that does not is grouped as ``/openrtb2/auction [invalid]`` and may get 400.

Request bodies are built once per test run (at ``test_start``, when a worker also knows the
master's options), never per request. Thresholds (see docs/loadtest.md for what each one means):
``--p95-ms``, ``--p99-ms`` (Locust's percentiles of the auction requests), ``--max-ms`` (the
deadline gate: the slowest auction, client and server side), ``--max-fail-ratio`` (failed
requests / all requests, default 0) and ``--max-timeout-ratio`` (bidder calls that timed out at
the SSP / all bidder calls). At the end the ``quitting`` listener reads the SSP's ``/metrics`` and
``/stats``, prints the server-side percentiles next to Locust's (which are whole milliseconds under
100 ms) and the per-DSP timeout shares, and sets the exit code: 0 all met, 1 one missed.

This module is only ever imported by Locust, in its own process: Locust monkey-patches the
standard library with gevent, which must not happen in the servers or in pytest.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `locust -f bench/locustfile.py` from anywhere
    sys.path.insert(0, str(_ROOT))

import orjson  # noqa: E402
from locust import FastHttpUser, constant, constant_throughput, events, task  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402

from bench import traffic_mix  # noqa: E402
from bench.gate_report import client_percentile, gate_json, render_gate  # noqa: E402
from bench.loadgate import (  # noqa: E402
    Miss,
    Observed,
    ServerSnapshot,
    Thresholds,
    check,
    count_above,
    parse_metrics,
    timeout_ratio,
)
from bench.procs import get, get_json  # noqa: E402
from gavel.config import DEFAULT_CONFIG, load_world  # noqa: E402

AD = "/ad"
AUCTION = "/openrtb2/auction"
INVALID = f"{AUCTION} [invalid]"
IMPRESSION = "/imp"
#: The rows whose response times are auction latencies (the gate's percentiles and max).
AUCTION_ROWS = (AD, AUCTION)
JSON_HEADERS = {"Content-Type": "application/json"}
OPENRTB_HEADERS = {"Content-Type": "application/json", "x-openrtb-version": "2.6"}
REQUEST_TIMEOUT_S = 5.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("Gavel traffic")
    g.add_argument(
        "--world",
        default="",
        help="scenario whose sites /ad requests (default: configs/default.toml of this checkout)",
    )
    g.add_argument("--ad-weight", type=int, default=3, help="weight of MediaSiteUser (default 3)")
    g.add_argument(
        "--openrtb-weight", type=int, default=1, help="weight of OpenRtbUser (default 1)"
    )
    g.add_argument(
        "--user-rps",
        type=float,
        default=0.0,
        help="requests per second of each user (constant_throughput); 0 = back to back",
    )
    g.add_argument(
        "--corpus-share",
        type=float,
        default=0.5,
        help="share of OpenRTB requests from the conformance corpus (default 0.5)",
    )
    g.add_argument(
        "--impression-rate",
        type=float,
        default=0.0,
        help="share of filled /ad answers whose impression beacon is fired (default 0)",
    )
    g.add_argument("--mix-seed", type=int, default=1, help="seed of the request mix")
    t = parser.add_argument_group("Gavel thresholds (exit code 1 when one is missed)")
    t.add_argument("--p95-ms", type=float, help="Locust's p95 of auction requests, ms")
    t.add_argument("--p99-ms", type=float, help="Locust's p99 of auction requests, ms")
    t.add_argument(
        "--max-ms",
        type=float,
        help="deadline gate: slowest auction, client (Locust) and server (SSP) side, ms",
    )
    t.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.0,
        help="failed requests / all requests (default 0: any failure fails the run)",
    )
    t.add_argument(
        "--max-timeout-ratio",
        type=float,
        help="bidder calls that timed out at the SSP / all bidder calls, over all DSPs",
    )
    t.add_argument("--gate-json", default="", help="also write the gate's figures to this file")


# -- the request mix, built once -------------------------------------------------------------------


class Mix:
    key: tuple[Any, ...] | None = None
    ads: list[bytes] = []
    openrtb: list[traffic_mix.OpenRtbBody] = []
    source: str = ""


def _build_mix(options: Any) -> None:
    key = (options.world, options.corpus_share, options.mix_seed)
    if Mix.key == key:
        return
    sites = load_world(options.world or DEFAULT_CONFIG).sites
    Mix.ads, Mix.source = traffic_mix.ad_bodies(sites, seed=options.mix_seed)
    Mix.openrtb = traffic_mix.openrtb_bodies(
        sites, corpus_share=options.corpus_share, seed=options.mix_seed + 1
    )
    Mix.key = key
    corpus = sum(b.origin == "corpus" for b in Mix.openrtb)
    logging.getLogger("gavel.load").info(
        "request mix: %d /ad bodies (%s, %d sites), %d OpenRTB bodies (%d from the corpus, "
        "%d of them invalid)",
        len(Mix.ads),
        Mix.source,
        len(sites),
        len(Mix.openrtb),
        corpus,
        sum(not b.valid for b in Mix.openrtb),
    )


def _wait_time(rps: float) -> Any:
    return constant_throughput(rps) if rps > 0 else constant(0)


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    opts = environment.parsed_options
    if opts is None:  # Locust used as a library: leave the classes as they are
        return
    # Weights matter on the master (it decides how many users of each class run).
    MediaSiteUser.weight = max(0, opts.ad_weight)
    OpenRtbUser.weight = max(0, opts.openrtb_weight)
    kept = [u for u in environment.user_classes if u.weight > 0]
    if not kept:
        sys.stderr.write("locustfile: --ad-weight and --openrtb-weight are both 0\n")
        sys.exit(2)
    environment.user_classes[:] = kept
    for cls in (MediaSiteUser, OpenRtbUser):
        cls.wait_time = _wait_time(opts.user_rps)
    try:
        _thresholds(opts)
    except ValueError as exc:
        sys.stderr.write(f"locustfile: {exc}\n")
        sys.exit(2)


def _thresholds(opts: Any) -> Thresholds:
    return Thresholds(
        p95_ms=opts.p95_ms,
        p99_ms=opts.p99_ms,
        max_fail_ratio=opts.max_fail_ratio,
        max_timeout_ratio=opts.max_timeout_ratio,
        max_ms=opts.max_ms,
    )


class _Start:
    """The SSP's counters when the test started (subtracted at the end)."""

    snapshot: ServerSnapshot | None = None
    error: str | None = None
    time: float = 0.0
    report: str = ""


@events.test_start.add_listener
def _test_start(environment: Any, **_: Any) -> None:
    opts = environment.parsed_options
    # User wait times follow the master's options on a worker too.
    for cls in (MediaSiteUser, OpenRtbUser):
        cls.wait_time = _wait_time(opts.user_rps)
    if not isinstance(environment.runner, WorkerRunner):
        _Start.time = time.time()
        try:
            _Start.snapshot = parse_metrics(get(f"{environment.host}/metrics").decode())
        except (OSError, ValueError) as exc:
            _Start.snapshot, _Start.error = None, f"{environment.host}/metrics: {exc}"
    if not isinstance(environment.runner, MasterRunner):  # the master runs no users
        _build_mix(opts)


# -- the users -------------------------------------------------------------------------------------


class MediaSiteUser(FastHttpUser):
    """A media site asking the SSP for an ad for one of its slots, for one of its visitors."""

    weight = 3
    wait_time = constant(0)
    network_timeout = REQUEST_TIMEOUT_S
    connection_timeout = REQUEST_TIMEOUT_S

    def on_start(self) -> None:
        self.i = random.randrange(len(Mix.ads)) if Mix.ads else 0
        self.impression_rate = float(self.environment.parsed_options.impression_rate)

    @task
    def ad(self) -> None:
        body = Mix.ads[self.i % len(Mix.ads)]
        self.i += 1
        impression = None
        with self.client.post(
            AD,
            data=body,  # type: ignore[arg-type]  # bytes go out as they are
            headers=JSON_HEADERS,
            name=AD,
            catch_response=True,
        ) as resp:
            status = resp.status_code
            if status == 200:
                try:
                    impression = orjson.loads(resp.content)["impression_url"]
                    resp.success()
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    resp.failure("200 without a creative's impression_url")
            elif status == 204:
                resp.success()
            else:
                resp.failure(f"HTTP {status}" if status else f"no answer: {resp.error}")
        # The page renders the ad: its impression beacon (billing), as its own row.
        if impression and self.impression_rate and random.random() < self.impression_rate:
            self.client.get(impression, name=IMPRESSION)


class OpenRtbUser(FastHttpUser):
    """An OpenRTB client (an upstream SSP, a Prebid server) sending bid requests."""

    weight = 1
    wait_time = constant(0)
    network_timeout = REQUEST_TIMEOUT_S
    connection_timeout = REQUEST_TIMEOUT_S

    def on_start(self) -> None:
        self.i = random.randrange(len(Mix.openrtb)) if Mix.openrtb else 0

    @task
    def auction(self) -> None:
        item = Mix.openrtb[self.i % len(Mix.openrtb)]
        self.i += 1
        name = AUCTION if item.valid else INVALID
        with self.client.post(
            AUCTION,
            data=item.body,  # type: ignore[arg-type]  # bytes go out as they are
            headers=OPENRTB_HEADERS,
            name=name,
            catch_response=True,
        ) as resp:
            status = resp.status_code
            if status in (200, 204) or (status == 400 and not item.valid):
                resp.success()
            elif status == 400:
                resp.failure(
                    f"400 for a request that meets OpenRTB ({item.origin}): {_field(resp)}"
                )
            else:
                resp.failure(f"HTTP {status}" if status else f"no answer: {resp.error}")


def _field(resp: Any) -> str:
    try:
        return str(orjson.loads(resp.content).get("field"))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return "?"


# -- the gate --------------------------------------------------------------------------------------


def auction_figures(stats: Any) -> tuple[int, int, float | None, dict[int, int]]:
    """(requests, failures, max ms, {rounded ms: count}) of the auction rows, merged."""
    requests = failures = 0
    slowest: float | None = None
    counts: dict[int, int] = {}
    for (name, _method), entry in stats.entries.items():
        if name not in AUCTION_ROWS:
            continue
        requests += entry.num_requests
        failures += entry.num_failures
        if entry.num_requests:
            slowest = max(slowest or 0.0, float(entry.max_response_time))
        for ms, n in entry.response_times.items():
            counts[ms] = counts.get(ms, 0) + n
    return requests, failures, slowest, counts


@events.quitting.add_listener
def _gate(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    opts = environment.parsed_options
    thresholds = _thresholds(opts)
    stats = environment.runner.stats
    n_auctions, _failed, slowest, counts = auction_figures(stats)
    server, recent, error = _server_side(environment.host)
    over, bound = (None, None)
    if server is not None and thresholds.max_ms is not None:
        over, bound_s = count_above(server.buckets, thresholds.max_ms / 1000)
        bound = bound_s * 1000
    observed = Observed(
        requests=stats.total.num_requests,
        failures=stats.total.num_failures,
        auction_requests=n_auctions,
        client_p95_ms=client_percentile(counts, 0.95),
        client_p99_ms=client_percentile(counts, 0.99),
        client_max_ms=slowest,
        timeout_ratio=timeout_ratio(server.outcomes) if server else None,
        server_recent_max_ms=recent.get("max", 0.0) * 1000 if recent else None,
        server_over_limit=over,
        server_over_bound_ms=bound,
        server_error=error,
    )
    misses = check(thresholds, observed)
    if environment.runner.exceptions:
        misses.append(Miss("exceptions", "the locustfile raised (see Locust's error report)"))
    invalid = stats.entries.get((INVALID, "POST"))
    elapsed = time.time() - _Start.time if _Start.time else 0.0
    _Start.report = render_gate(
        observed,
        counts,
        server,
        thresholds,
        misses,
        elapsed=elapsed,
        invalid=invalid.num_requests if invalid else 0,
    )
    if opts.gate_json:
        path = Path(opts.gate_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            orjson.dumps(gate_json(observed, counts, server, misses), option=orjson.OPT_INDENT_2)
            + b"\n"
        )
    environment.process_exit_code = 1 if misses else 0


@events.quit.add_listener
def _print_report(**_: Any) -> None:
    """The gate's report, after Locust's own tables: the verdict is the last thing printed."""
    if _Start.report:
        sys.stdout.write(_Start.report + "\n")
        sys.stdout.flush()


def _server_side(host: str) -> tuple[ServerSnapshot | None, dict[str, float] | None, str | None]:
    """The SSP's counters since the start, its ``/stats`` latency_s, or why they are missing."""
    if _Start.snapshot is None:
        return None, None, _Start.error or "no /metrics at the start"
    try:
        now = parse_metrics(get(f"{host}/metrics").decode())
        recent = get_json(f"{host}/stats")["latency_s"]
    except (OSError, ValueError, KeyError) as exc:
        return None, None, f"{host}: {exc}"
    return now.minus(_Start.snapshot), recent, None
