"""The load test's gate as pure functions: server figures from Prometheus text, and the verdict.

The histograms here are rendered by the SSP's own metrics module, so a change of its exposition
format shows up here, not in a load test an hour later.
"""

from __future__ import annotations

import math
import sys

import pytest

from bench.loadgate import (
    Estimate,
    Observed,
    ServerSnapshot,
    Step,
    Thresholds,
    check,
    count_above,
    diff_counts,
    histogram_max,
    histogram_quantile,
    knee,
    parse_metrics,
    render_steps,
    rounded_percentile,
    timeout_ratio,
    timeout_shares,
)
from exchange.metrics import ExchangeMetrics


def ssp_metrics(durations: list[float], outcomes: dict[str, dict[str, int]]) -> str:
    """/metrics text of an SSP that ran auctions of these durations with these bidder outcomes."""
    m = ExchangeMetrics()
    for d in durations:
        m.auction_duration.observe(d)
    for bidder, results in outcomes.items():
        children = m.bidder(bidder).outcomes
        for result, n in results.items():
            children[result].inc(n)
    m.overload.inc(3)
    return m.render().decode()


def test_parse_metrics_reads_the_ssp_exposition() -> None:
    text = ssp_metrics(
        [0.004, 0.004, 0.060, 0.097, 0.104],
        {"a": {"bid": 8, "timeout": 2}, "b": {"nobid": 5}},
    )
    snap = parse_metrics(text)
    assert snap.count == 5
    buckets = dict(snap.buckets)
    assert buckets[0.005] == 2  # cumulative: both 4 ms auctions
    assert buckets[0.1] == 4
    assert buckets[0.11] == 5
    assert math.isinf(snap.buckets[-1][0])
    assert snap.outcomes["a"]["timeout"] == 2
    assert snap.outcomes["b"]["nobid"] == 5
    assert snap.auctions["overload"] == 3


def test_minus_gives_what_happened_in_between() -> None:
    before = parse_metrics(ssp_metrics([0.004], {"a": {"bid": 1}}))
    after = parse_metrics(ssp_metrics([0.004, 0.2, 0.2], {"a": {"bid": 4, "timeout": 1}}))
    delta = after.minus(before)
    assert delta.count == 2
    assert dict(delta.buckets)[0.15] == 0
    assert dict(delta.buckets)[0.25] == 2
    assert delta.outcomes["a"] == {
        "bid": 3,
        "nobid": 0,
        "timeout": 1,
        "error": 0,
        "invalid": 0,
    }


def test_quantile_interpolates_inside_its_bucket_and_names_it() -> None:
    # 100 observations, 90 in (0, 10 ms], 10 in (10, 20 ms]
    buckets = [(0.01, 90.0), (0.02, 100.0), (math.inf, 100.0)]
    p50 = histogram_quantile(buckets, 0.5)
    assert p50 == Estimate(pytest.approx(0.01 * 50 / 90), 0.0, 0.01)
    p95 = histogram_quantile(buckets, 0.95)
    assert p95 is not None
    assert (p95.lo, p95.hi) == (0.01, 0.02)
    assert p95.value == pytest.approx(0.015)
    assert p95.ms() == "15.00 ms in (10-20] ms"


def test_quantile_past_the_last_bucket_is_only_known_as_above_it() -> None:
    buckets = [(0.5, 1.0), (1.0, 1.0), (math.inf, 3.0)]
    p99 = histogram_quantile(buckets, 0.99)
    assert p99 is not None
    assert (p99.value, p99.lo, p99.hi) == (1.0, 1.0, math.inf)
    assert p99.bucket() == "(1000-inf] ms"


def test_empty_histogram_has_no_quantile_nor_max() -> None:
    assert histogram_quantile([], 0.5) is None
    assert histogram_quantile([(0.1, 0.0), (math.inf, 0.0)], 0.5) is None
    assert histogram_max([(0.1, 0.0), (math.inf, 0.0)]) is None


def test_max_is_the_highest_non_empty_bucket() -> None:
    snap = parse_metrics(ssp_metrics([0.004, 0.098, 0.107], {}))
    top = histogram_max(snap.buckets)
    assert top is not None
    assert (top.lo, top.hi) == (0.105, 0.11)


def test_count_above_counts_only_what_is_proven_late() -> None:
    snap = parse_metrics(ssp_metrics([0.05, 0.12, 0.14, 0.2], {}))
    # 150 ms is a bucket bound: 0.2 is proven above it, 0.12 and 0.14 are not
    assert count_above(snap.buckets, 0.150) == (1.0, 0.15)
    # 107 ms is not a bound: the first bound at or past it is 110 ms
    assert count_above(snap.buckets, 0.107) == (3.0, 0.11)
    # 105 ms (tmax + 5 ms) is a bound: 0.12, 0.14 and 0.2 are proven above it
    assert count_above(snap.buckets, 0.105) == (3.0, 0.105)
    # past the last finite bound nothing can be proven
    assert count_above(snap.buckets, 5.0) == (0.0, math.inf)


def test_timeout_shares_per_dsp_and_overall() -> None:
    outcomes = {"hung": {"timeout": 10.0}, "ok": {"bid": 28.0, "timeout": 2.0}, "idle": {}}
    assert timeout_shares(outcomes) == {"hung": 1.0, "ok": pytest.approx(2 / 30)}
    assert timeout_ratio(outcomes) == pytest.approx(12 / 40)
    assert timeout_ratio({}) is None


def test_rounded_percentile_matches_locusts_rule() -> None:
    # Locust walks down from the slowest rounded time until no more than int(n * q) requests
    # are left below it (checked against locust.stats.calculate_response_time_percentile
    # outside pytest, on 2,000 random cases: Locust must not be imported here)
    counts = {1: 50, 2: 40, 100: 9, 250: 1}
    assert rounded_percentile(counts, 0.5) == 2
    assert rounded_percentile(counts, 0.9) == 100
    assert rounded_percentile(counts, 0.95) == 100
    assert rounded_percentile(counts, 0.99) == 250
    assert rounded_percentile(counts, 1.0) == 250
    assert rounded_percentile({}, 0.99) == 0
    assert diff_counts({1: 5, 2: 3}, {1: 5, 2: 1}) == {2: 2}


# -- the verdict -----------------------------------------------------------------------------------


GOOD = Observed(
    requests=1000,
    failures=0,
    auction_requests=900,
    client_p95_ms=80,
    client_p99_ms=98,
    client_max_ms=120.4,
    timeout_ratio=0.05,
    server_recent_max_ms=101.2,
    server_over_limit=0,
    server_over_bound_ms=150,
)
ALL = Thresholds(p95_ms=90, p99_ms=100, max_fail_ratio=0.0, max_timeout_ratio=0.1, max_ms=150)


def test_a_run_within_every_threshold_passes() -> None:
    assert check(ALL, GOOD) == []
    assert check(Thresholds(), Observed()) == []  # nothing asked, nothing missed


@pytest.mark.parametrize(
    ("change", "missed"),
    [
        ({"client_p95_ms": 91}, "p95_ms"),
        ({"client_p99_ms": 110}, "p99_ms"),
        ({"failures": 1}, "max_fail_ratio"),
        ({"timeout_ratio": 0.2}, "max_timeout_ratio"),
        ({"client_max_ms": 150.2}, "max_ms"),
        ({"server_recent_max_ms": 151.0}, "max_ms"),
        ({"server_over_limit": 2}, "max_ms"),
    ],
)
def test_each_threshold_names_itself_when_missed(change: dict[str, float], missed: str) -> None:
    import dataclasses

    misses = check(ALL, dataclasses.replace(GOOD, **change))
    assert [m.threshold for m in misses] == [missed]
    assert "limit" in misses[0].text


def test_a_threshold_that_cannot_be_measured_is_missed() -> None:
    blind = Observed(requests=10, auction_requests=10, server_error="connection refused")
    names = {m.threshold for m in check(ALL, blind)}
    assert {"p95_ms", "p99_ms", "max_timeout_ratio", "max_ms"} <= names
    assert any("connection refused" in m.text for m in check(ALL, blind))


def test_no_auction_at_all_is_a_miss_not_a_pass() -> None:
    misses = check(Thresholds(max_ms=150), Observed(requests=5, auction_requests=0))
    assert "requests" in {m.threshold for m in misses}


def test_thresholds_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="p99_ms"):
        Thresholds(p99_ms=0)
    with pytest.raises(ValueError, match="max_fail_ratio"):
        Thresholds(max_fail_ratio=1.5)
    assert Thresholds(p99_ms=5, max_fail_ratio=0).items() == [
        ("p99_ms", 5),
        ("max_fail_ratio", 0),
    ]


# -- the knee --------------------------------------------------------------------------------------


def step(users: int, auctions: int, p99: float, shed: float = 0.0) -> Step:
    return Step(
        users=users,
        seconds=10.0,
        requests=auctions,
        failures=0,
        auctions=auctions,
        shed=shed,
        client_p50_ms=10,
        client_p99_ms=p99,
    )


def test_knee_is_where_throughput_stops_growing() -> None:
    steps = [step(10, 1000, 50), step(20, 2000, 60), step(40, 2050, 70), step(80, 2100, 90)]
    assert knee(steps, p99_limit_ms=150) == 1


def test_shed_auctions_are_not_throughput() -> None:
    # requests keep growing, but past stage 2 the growth is all 204s shed at once
    steps = [step(10, 1000, 50), step(20, 2000, 60), step(40, 4000, 70, shed=2000)]
    assert steps[2].run_rps == 200
    assert knee(steps, p99_limit_ms=150) == 1


def test_knee_is_before_the_p99_passes_its_limit() -> None:
    steps = [step(10, 1000, 50), step(20, 2000, 160), step(40, 4000, 200)]
    assert knee(steps, p99_limit_ms=150) == 0
    assert knee([step(10, 1000, 200), step(20, 2000, 300)], p99_limit_ms=150) is None


def test_no_knee_unless_users_grow_at_every_stage() -> None:
    spike = [step(20, 1000, 50), step(200, 5000, 90), step(20, 1000, 50)]
    assert knee(spike, p99_limit_ms=150) is None
    table = render_steps(spike, p99_limit_ms=150)
    assert "knee" not in table
    assert len(table.splitlines()) == 4


def test_render_steps_reports_the_knee() -> None:
    steps = [step(10, 1000, 50), step(20, 2000, 60), step(40, 2010, 70)]
    assert "knee: stage 2, 20 users, 200 auctions run/s" in render_steps(steps, p99_limit_ms=150)


def test_the_gate_modules_do_not_import_locust() -> None:
    """Locust monkey-patches with gevent on import: it must stay out of the pytest process."""
    import bench.load
    import bench.load_profile
    import bench.loadgate
    import bench.traffic_mix  # noqa: F401

    assert "locust" not in sys.modules
    assert ServerSnapshot().count == 0


def test_the_report_puts_both_sides_and_the_verdict_together() -> None:
    from bench.gate_report import gate_json, render_gate

    server = parse_metrics(
        ssp_metrics([0.004, 0.06, 0.097, 0.107], {"slow": {"bid": 3, "timeout": 1}})
    )
    miss = check(Thresholds(p99_ms=50), GOOD)
    text = render_gate(GOOD, {4: 1, 60: 1, 97: 1, 107: 1}, server, Thresholds(p99_ms=50), miss,
                       elapsed=2.0, invalid=3)  # fmt: skip
    assert "requests 1000 (500.0/s), failed 0" in text and "invalid OpenRTB requests 3" in text
    assert "ms in (105-110] ms" in text  # the server's p99 and its bucket
    assert "slow 25.0%" in text and "shed for overload (204 at once) 3" in text
    assert text.splitlines()[-2:] == [
        "FAILED: 1 threshold(s) missed",
        "  - p99_ms: client p99 of auctions 98 ms > limit 50 ms",
    ]
    data = gate_json(GOOD, {4: 1}, server, miss)
    assert data["misses"][0]["threshold"] == "p99_ms"
    assert data["server_p99"]["hi"] == 0.11 and data["timeout_shares"] == {"slow": 0.25}
    blind = render_gate(Observed(server_error="refused"), {}, None, Thresholds(), [])
    assert "server side: not read (refused)" in blind and blind.endswith(
        "PASSED: every threshold met"
    )
