from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SMALL = """
name = "small"
users = 3000
days = {days}
qps = 1.0
runs = {runs}
path = "{path}"
{extra}
[[dsp]]
name = "me"
strategy = "lin"
params = {{ base_bid = 2.0, avg_ctr = 0.001 }}
cat = "IAB17"
budget = {budget}

[[dsp]]
name = "other"
strategy = "constant"
params = {{ cpm = 1.0 }}
cat = "IAB19"
latency = {{ latency_ms = 90, latency_jitter_ms = 20, latency_dist = "uniform" }}
"""


@pytest.fixture
def small(tmp_path: Path):
    def make(*, days: float = 0.1, runs: int = 1, path: str = "auto", budget: float = 0.0,
             extra: str = "") -> Path:  # fmt: skip
        p = tmp_path / f"exp-{path}-{runs}-{budget}.toml"
        p.write_text(SMALL.format(days=days, runs=runs, path=path, budget=budget, extra=extra))
        return p

    return make
