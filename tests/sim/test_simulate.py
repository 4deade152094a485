"""gavel simulate: determinism, report files, budgets, timeouts in virtual time, both paths."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.faults import Faults
from gavel.sim.experiment import load_experiment
from gavel.sim.latency import HANG, OK, TIMEOUT, LatencyModel
from gavel.sim.runner import run_experiment

from .conftest import ROOT


def _simulate(exp: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gavel", "simulate", str(exp), "--out", str(out), "--quiet", *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip


def test_same_seed_same_files_and_html_embeds_images(small, tmp_path: Path) -> None:
    exp = small(runs=2, extra="budget_fractions = [0.25]")
    a, b = tmp_path / "a", tmp_path / "b"
    assert _simulate(exp, a).returncode == 0
    assert _simulate(exp, b).returncode == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert {str(f) for f in files} >= {"runs.csv", "variants.csv", "market.csv", "results.json",
                                       "report.html", "run-info.json", "plots/spend_over_time.png",
                                       "plots/clicks_by_budget.png", "plots/win_rate_by_bid.png",
                                       "plots/price_distribution.png"}  # fmt: skip
    for f in files:
        if str(f) != "run-info.json":
            assert (a / f).read_bytes() == (b / f).read_bytes(), f
    html = (a / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_other_seed_other_results(small, tmp_path: Path) -> None:
    exp = small()
    assert _simulate(exp, tmp_path / "a", "--seed", "1").returncode == 0
    assert _simulate(exp, tmp_path / "b", "--seed", "2").returncode == 0
    assert (tmp_path / "a/runs.csv").read_bytes() != (tmp_path / "b/runs.csv").read_bytes()


@pytest.mark.parametrize("path", ["batch", "object"])
def test_budget_is_respected(small, path: str) -> None:
    exp = load_experiment(small(path=path, budget=0.5, days=0.05))
    (r,) = run_experiment(exp, base=ROOT)
    me = r.market.dsps["me"]
    assert 0.45 < me.won_cost / 1e9 <= 0.5  # spent (nearly) all of it, never more
    assert me.spend <= me.won_cost


@pytest.mark.parametrize("path", ["batch", "object"])
def test_slow_dsp_times_out_as_its_latency_model_says(small, path: str) -> None:
    # other: uniform 70..110 ms against 95 ms: P(late) = 15/40
    exp = load_experiment(small(path=path, days=0.05))
    (r,) = run_experiment(exp, base=ROOT)
    other, me = r.market.dsps["other"], r.market.dsps["me"]
    share = other.timeouts / other.requests
    n = other.requests
    assert abs(share - 15 / 40) < 4 * (0.375 * 0.625 / n) ** 0.5
    assert me.timeouts == 0


def test_latency_model_draws() -> None:
    rng = np.random.default_rng(1)
    m = LatencyModel(Faults(latency_ms=20, hang_rate=0.1))
    out = m.draw(rng, 100_000, 0.095)
    assert abs((out == HANG).mean() - 0.1) < 0.005
    assert set(np.unique(out)) == {OK, HANG}
    slow = LatencyModel(Faults(latency_ms=100)).draw(rng, 10, 0.095)
    assert (slow == TIMEOUT).all()


def test_batch_and_object_paths_agree_on_the_market(small) -> None:
    exp = load_experiment(small(days=0.1))
    fast = run_experiment(dataclasses.replace(exp, path="batch"), base=ROOT)[0].market
    slow = run_experiment(dataclasses.replace(exp, path="object"), base=ROOT)[0].market
    # the constant bidder's world is the same in both: bids and timeouts within a few %
    a, b = fast.dsps["other"], slow.dsps["other"]
    assert abs(a.bids / a.requests - b.bids / b.requests) < 0.02
    assert abs(fast.auctions - slow.auctions) / slow.auctions < 0.05


def test_cli_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[dsp]]\nname = "x"\nstrategy = "lin"\ncolour = "red"\n')
    r = _simulate(bad, tmp_path / "o")
    assert r.returncode == 2
    assert "colour" in r.stderr and "bad.toml" in r.stderr
    r = _simulate(tmp_path / "missing.toml", tmp_path / "o")
    assert r.returncode == 2
    r = subprocess.run([sys.executable, "-m", "gavel", "simulate", "--help"], capture_output=True,
                       text=True, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0 and "virtual clock" in r.stdout


def test_shipped_experiments_load() -> None:
    paths = sorted((ROOT / "configs/experiments").glob("*.toml"))  # dsp/: their campaign files
    assert len(paths) >= 4
    for path in paths:
        load_experiment(path)


def test_event_log_becomes_the_same_report(tmp_path: Path) -> None:
    import orjson

    from gavel.sim.eventlog import report_events

    log = tmp_path / "events.jsonl"
    recs = [
        {"type": "auction", "ts": 1000.0, "id": "r1", "bidders": [
            {"name": "a", "result": "bid", "ms": 3.0, "bids": [{"id": "r1-1", "imp": "1", "price": 1.5}]},
            {"name": "b", "result": "timeout", "ms": 95.0}],
         "imps": [{"id": "1", "winner": "a", "bid": "r1-1", "price": 0.51, "losers": []}]},
        {"type": "impression", "ts": 1000.1, "bidder": "a", "price": 0.51},
        {"type": "click", "ts": 1001.0, "bidder": "a"},
    ]  # fmt: skip
    log.write_bytes(b"\n".join(orjson.dumps(r) for r in recs) + b"\n")
    html = report_events([log], tmp_path / "out")
    assert html.read_text().count("data:image/png;base64,") == 4
    rows = (tmp_path / "out/runs.csv").read_text().splitlines()
    assert rows[1].startswith("live,,0,,event log,a,1,1,0,0,1,1,1,1,0,0.00051")
