"""``gavel bench load`` end to end, as a subprocess: real SSP and DSP servers on 127.0.0.1 and
Locust in its own process (never in pytest's: it monkey-patches with gevent on import).

A few seconds with a handful of users: the exit code, the CSV/HTML/JSON reports, an impossible
threshold failing the run with exit code 1, and no server or Locust process left behind.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench.load import main as load_main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def gavel_bench_load(results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The CI smoke profile, shorter; its deadline gate relaxed to 5 s, since a test must not
    assert wall-clock speed on a shared machine (CI's own smoke run keeps tmax + 50 ms)."""
    cmd = [
        sys.executable, "-m", "gavel", "bench", "load",
        "--profile", "configs/load/smoke.toml", "--duration", "4", "--users", "4",
        "--max-ms", "5000", "--results", str(results), "--name", "t", "--interval", "1", *extra,
    ]  # fmt: skip
    return subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def ports(stderr: str) -> list[int]:
    """The ports of the servers the run started (from its "load: SSP ...; DSPs ..." line)."""
    line = next(x for x in stderr.splitlines() if x.startswith("load: SSP "))
    return [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", line)]


def assert_nothing_left(stderr: str, results: Path) -> None:
    for port in ports(stderr):
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(1)
            s.connect(("127.0.0.1", port))
    mine = str(results)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            assert mine not in cmdline, f"process {pid} is still running: {cmdline!r}"


def test_a_short_run_passes_and_writes_its_reports(tmp_path: Path) -> None:
    run = gavel_bench_load(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("t_stats.csv", "t_stats_history.csv", "t_failures.csv", "t.html", "t_gate.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    gate = orjson.loads((tmp_path / "t_gate.json").read_bytes())
    assert gate["misses"] == []
    assert gate["observed"]["auction_requests"] > 0
    assert gate["server_p99"] is not None  # read from the SSP's /metrics
    assert set(gate["timeout_shares"]) >= {"steady", "slow"}
    assert "PASSED" in run.stdout
    assert "server (SSP histogram" in run.stdout
    assert re.search(r"\[\s+\d+s/4s\] auctions/s", run.stderr)  # the progress line
    assert_nothing_left(run.stderr, tmp_path)


def test_an_impossible_threshold_fails_the_run_with_exit_code_1(tmp_path: Path) -> None:
    run = gavel_bench_load(tmp_path, "--p99-ms", "0.001")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "FAILED: 1 threshold(s) missed" in run.stdout
    assert "- p99_ms: client p99 of auctions" in run.stdout
    gate = orjson.loads((tmp_path / "t_gate.json").read_bytes())
    assert [m["threshold"] for m in gate["misses"]] == ["p99_ms"]
    assert (tmp_path / "t.html").exists()
    assert_nothing_left(run.stderr, tmp_path)


def test_usage_and_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("users = 3\nthreshold = 1\n")
    assert load_main(["--profile", str(bad)]) == 2
    assert f"{bad}: unknown key 'threshold'" in capsys.readouterr().err
    assert load_main(["--profile", str(tmp_path / "missing.toml")]) == 2
    assert load_main(["--max-fail-ratio", "7"]) == 2
    with pytest.raises(SystemExit) as exc:
        load_main(["--users", "many"])
    assert exc.value.code == 2
