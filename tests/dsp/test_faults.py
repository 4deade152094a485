from __future__ import annotations

import math
import random
import statistics

import pytest

from dsp.faults import ACTIONS, ERROR, GARBAGE, HANG, OK, Faults


def test_default_is_inactive_and_ok() -> None:
    f = Faults()
    assert not f.active
    assert f.draw(random.Random(1)) == (OK, 0.0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"hang_rate": 1.5}, "hang_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"garbage_rate": math.nan}, "garbage_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": math.inf}, "latency_ms"),
        ({"hang_s": math.inf}, "hang_s"),
        ({"hang_s": "30"}, "hang_s"),
        ({"error_rate": True}, "error_rate"),
        ({"latency_dist": "gamma"}, "latency_dist"),
        ({"latency_jitter_ms": 5}, "latency_jitter_ms"),
        ({"hang_rate": 0.5, "error_rate": 0.4, "garbage_rate": 0.2}, "hang_rate \\+ error_rate"),
        ({"latency_dist": "lognormal", "latency_jitter_ms": 5}, "latency_ms"),
    ],
)
def test_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Faults(**kwargs)  # type: ignore[arg-type]


def test_is_frozen() -> None:
    f = Faults()
    with pytest.raises(AttributeError):
        f.hang_rate = 1.0  # type: ignore[misc]


def test_draws_are_deterministic_for_a_seed() -> None:
    f = Faults(
        latency_ms=5,
        latency_jitter_ms=2,
        latency_dist="uniform",
        hang_rate=0.1,
        error_rate=0.1,
        garbage_rate=0.1,
    )
    a = [f.draw(random.Random(3)) for _ in range(1)]
    rng1, rng2 = random.Random(3), random.Random(3)
    first = [f.draw(rng1) for _ in range(500)]
    assert first == [f.draw(rng2) for _ in range(500)]
    assert first[0] == a[0]
    assert {action for action, _ in first} == set(ACTIONS)


def test_action_rates_are_respected() -> None:
    f = Faults(hang_rate=0.2, error_rate=0.3, garbage_rate=0.1, hang_s=0.5)
    rng = random.Random(11)
    draws = [f.draw(rng) for _ in range(20_000)]
    share = {a: sum(1 for d in draws if d.action == a) / len(draws) for a in ACTIONS}
    assert share[HANG] == pytest.approx(0.2, abs=0.02)
    assert share[ERROR] == pytest.approx(0.3, abs=0.02)
    assert share[GARBAGE] == pytest.approx(0.1, abs=0.02)
    assert all(d.delay_s == 0.5 for d in draws if d.action == HANG)


def test_all_or_nothing_rates() -> None:
    rng = random.Random(0)
    assert {Faults(error_rate=1).draw(rng).action for _ in range(100)} == {ERROR}
    assert {Faults(hang_rate=1, hang_s=0.2).draw(rng) for _ in range(100)} == {(HANG, 0.2)}


@pytest.mark.parametrize(
    "dist, low, high, mean",
    [
        ("fixed", 10, 10, 10),
        ("uniform", 5, 15, 10),
        ("exponential", 10, math.inf, 15),
        ("lognormal", 0, math.inf, 10),
    ],
)
def test_latency_distributions(dist: str, low: float, high: float, mean: float) -> None:
    jitter = 0 if dist == "fixed" else 5
    f = Faults(latency_ms=10, latency_jitter_ms=jitter, latency_dist=dist)
    rng = random.Random(1)
    ms = [f.latency_s(rng) * 1000 for _ in range(20_000)]
    assert all(low - 1e-9 <= x <= high + 1e-9 for x in ms)
    assert statistics.fmean(ms) == pytest.approx(mean, rel=0.05)
    if dist == "lognormal":
        assert statistics.stdev(ms) == pytest.approx(5, rel=0.1)


def test_uniform_latency_never_negative() -> None:
    f = Faults(latency_ms=1, latency_jitter_ms=10, latency_dist="uniform")
    rng = random.Random(2)
    assert min(f.latency_s(rng) for _ in range(1000)) >= 0
