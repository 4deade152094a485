"""Benchmarks 3 and 4 and the load generator's open loop: their pure verdicts, and the open loop
against a real server (bench.baseline_proxy's bare intake) on 127.0.0.1."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.deadline_bench import (
    CpuDisturbance,
    _disturbance,
    _gc,
    _gc_run,
    _stalls,
    confirmed,
    gc_delta,
    highest_passing,
    main,
    stall_delta,
    verdict,
    wellbehaved_timeouts,
)
from bench.procs import Processes, cpu_times, cpu_wait_seconds, niced, paused, split_cpus
from bench.soak_bench import analyse, rss_kb

ROOT = Path(__file__).resolve().parents[2]


def loadgen(url: str, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.loadgen", url, "--body", '{"id": "r1"}', *args]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=60, check=True)
    return dict(orjson.loads(run.stdout))


@pytest.mark.slow
def test_open_and_closed_loop_against_a_real_server() -> None:
    procs = Processes()
    try:
        intake = procs.start("bare intake", "bench.baseline_proxy")
        url = intake.url("/openrtb2/auction")
        opened = loadgen(url, "--rate", "200", "--duration", "1", "--warmup", "0.2")
        assert opened["mode"] == "open"
        assert opened["scheduled"] == 200  # on schedule, whatever the answers
        assert opened["ok"] + opened["dropped"] + opened["errors"] == 200
        assert opened["errors"] == 0 and opened["dropped"] == 0
        assert 0 < opened["p50_ms"] <= opened["p99_ms"] <= opened["max_ms"]
        assert opened["sent_max_ms"] <= opened["max_ms"] + 1e-3
        closed = loadgen(url, "--concurrency", "2", "--duration", "0.5", "--warmup", "0")
        assert "mode" not in closed and closed["ok"] > 0 and closed["max_ms"] >= closed["p99_ms"]
    finally:
        procs.stop_all()


def test_open_loop_needs_a_positive_rate() -> None:
    cmd = [sys.executable, "-m", "bench.loadgen", "http://127.0.0.1:9/", "--body", "{}"]
    run = subprocess.run([*cmd, "--rate", "0"], cwd=ROOT, capture_output=True, timeout=30)
    assert run.returncode == 2


def run(p100: float | None, p99: float | None) -> dict[str, Any]:
    return {"server_p100_ms": p100, "server_p99_ms": p99}


def test_deadline_targets() -> None:
    assert verdict(run(104.9, 99.0), 100) == []
    assert verdict(run(105.1, 99.0), 100) == ["p100 105.10 ms > tmax + 5 = 105 ms"]
    assert verdict(run(104.0, 100.5), 100) == ["p99 100.50 ms > tmax = 100 ms"]
    assert verdict(run(None, None), 100) == ["no /stats window inside the run (too few auctions)"]


def test_deadline_bench_refuses_bad_options_before_starting_anything() -> None:
    assert main(["--loads", "0.5,1.5"]) == 2
    assert main(["--concurrency", "32,x"]) == 2
    assert main(["--max-timeouts", "1"]) == 2
    assert main(["--probe-s", "0"]) == 2
    assert main(["--probe-steps", "-1"]) == 2
    assert main(["--max-ssp-cpu", "0"]) == 2 and main(["--max-ssp-cpu", "1.5"]) == 2
    assert main(["--confirm", "0"]) == 2
    assert main(["--rate", "0"]) == 2 and main(["--rate", "-100"]) == 2


@pytest.mark.slow
def test_deadline_bench_runs_at_a_given_rate_without_measuring_a_saturation(tmp_path: Path) -> None:
    """--rate: straight to the open-loop run, at a share of the rate given (two builds compared at
    the same load). A subprocess: the benchmark pins the CPUs of the process it runs in."""
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "bench.deadline_bench", "--rate", "1000", "--loads", "0.8"]
    cmd += ["--duration", "1", "--warmup", "0.5", "--no-baseline", "--json", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode in (0, 1), done.stderr  # 1: a target missed, on a busy machine
    results = orjson.loads(out.read_bytes())
    assert results["saturation"] == {"given": {"run_rps": 1000.0}}
    assert results["options"]["rate"] == 1000.0
    (run,) = results["runs"]
    assert (run["world"], run["rate"]) == ("hung", 800.0)
    assert run["auctions"] >= 4096 and run["server_p100_ms"] is not None
    assert "the loads are shares of 1,000 auctions/s (--rate" in done.stdout
    assert "closed loop" not in done.stdout and "sustained" not in done.stderr


def passing_up_to(limit: float, probed: list[float]) -> Callable[[float], bool]:
    """A probe that passes at ``limit`` auctions/s and below, noting each rate it is asked."""

    def passes(rate: float) -> bool:
        probed.append(rate)
        return rate <= limit

    return passes


def test_sustained_saturation_is_found_by_halving_below_a_peak_that_fails() -> None:
    probed: list[float] = []
    keeps_up_to = functools.partial(passing_up_to, probed=probed)
    found = highest_passing(2000.0, 5, keeps_up_to(1300.0))
    assert probed == [2000.0, 1000.0, 1500.0, 1250.0, 1375.0, 1312.5]
    assert found == 1250.0  # the highest probed rate that passed, within 2000 / 2**5 of 1300
    probed.clear()
    assert highest_passing(2000.0, 3, keeps_up_to(10.0)) == 0.0  # nothing passed
    assert highest_passing(2000.0, 0, keeps_up_to(1999.0)) == 0.0


def test_sustained_saturation_is_searched_above_a_peak_that_passes() -> None:
    """The closed loops' peak is a noisy estimate: when it passes, the search goes above it."""
    probed: list[float] = []
    keeps_up_to = functools.partial(passing_up_to, probed=probed)
    found = highest_passing(1000.0, 3, keeps_up_to(1800.0))
    # 1000 ok, 1500 ok, 2250 no; then halvings of [1500, 2250] to within 1000 / 2**3
    assert probed == [1000.0, 1500.0, 2250.0, 1875.0, 1687.5, 1781.25]
    assert found == 1781.25
    probed.clear()
    # it grows at most max_grows times: then the last rate is the answer
    assert highest_passing(1000.0, 3, keeps_up_to(1e9), max_grows=2) == 2250.0
    assert probed == [1000.0, 1500.0, 2250.0]


def test_a_rate_keeps_up_only_when_it_does_in_every_probe_in_a_row() -> None:
    verdicts = {1000.0: [True, True], 1500.0: [True, False], 2000.0: [False, True]}
    probed: list[float] = []

    def probe(rate: float) -> bool:
        probed.append(rate)
        return verdicts[rate].pop(0)

    twice = confirmed(probe, 2)
    assert twice(1000.0) and probed == [1000.0, 1000.0]
    probed.clear()
    assert not twice(1500.0) and probed == [1500.0, 1500.0]  # lucky once
    probed.clear()
    assert not twice(2000.0) and probed == [2000.0]  # no second probe after a failure
    assert confirmed(lambda rate: True, 1)(5.0)


def test_a_search_with_confirmation_passes_over_a_rate_that_passed_by_luck() -> None:
    """The peak passes its first probe by luck and fails its second: alone, the first would have
    made the answer 2000 or more; confirmed, the search halves below it."""
    luck = {2000.0: [True, False]}
    probed: list[float] = []

    def probe(rate: float) -> bool:
        probed.append(rate)
        if luck.get(rate):
            return luck[rate].pop(0)
        return rate <= 1300.0

    assert highest_passing(2000.0, 2, confirmed(probe, 2)) == 1000.0
    assert probed == [2000.0, 2000.0, 1000.0, 1000.0, 1500.0]


def test_the_well_behaved_dsps_timeouts_leave_the_hung_one_out() -> None:
    def snap(d0: tuple[int, int], hung: tuple[int, int]) -> dict[str, Any]:
        bidders = {"d0": {"requests": d0[0], "timeouts": d0[1], "errors": 0}}
        bidders["hung"] = {"requests": hung[0], "timeouts": hung[1], "errors": 0}
        return {"bidders": bidders}

    before, after = snap((100, 1), (100, 100)), snap((300, 5), (300, 300))
    assert wellbehaved_timeouts(before, after) == pytest.approx(4 / 200)
    assert wellbehaved_timeouts(after, after) is None  # no calls in between


def _state(pid: int, wanted: str) -> str:
    """Process ``pid``'s state letter, once it is ``wanted`` (a signal takes a moment), or after 5 s."""
    deadline = time.monotonic() + 5.0
    while True:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == wanted or time.monotonic() > deadline:
            return state
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_server_not_measured_is_stopped_meanwhile_and_continued_after() -> None:
    procs = Processes()
    try:
        server = procs.start("standin", "bench.standin_dsp", "--name", "d0")
        with paused([server], settle_s=0.0):
            assert _state(server.pid, "T") == "T"  # stopped: no timer of its own takes the CPU
        assert _state(server.pid, "S") in "SR"
        server.proc.send_signal(signal.SIGSTOP)  # left stopped, as after an interrupted block
    finally:
        started = time.monotonic()
        procs.stop_all(grace=10.0)
    # It was continued to act on SIGTERM, not killed after the grace period.
    assert server.proc.returncode != -signal.SIGKILL
    assert time.monotonic() - started < 10.0


def test_a_child_can_be_kept_on_chosen_cpus() -> None:
    split = split_cpus()
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        assert split is None
        chosen = set(mine)
    else:
        assert split is not None
        first, rest = split
        assert first | rest == set(mine) and not first & rest and len(first) == 1
        chosen = set(first)
    code = "import os; print(sorted(os.sched_getaffinity(0)), os.nice(0))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        preexec_fn=niced(3, chosen),
    ).stdout
    assert out.split("]")[0] + "]" == str(sorted(chosen))
    assert int(out.split("]")[1]) == min(19, os.nice(0) + 3)
    assert niced(0) is None


def test_deadline_bench_reports_collections_run_in_reserved_windows() -> None:
    stats = {"mode": "paced", "interval_ms": 100.0, "collections": [10, 1, 0], "forced": 1}
    stats |= {"max_pause_ms": 9.0, "deferred_polls": 3, "planned": 4, "cutoffs_moved": 1234}
    line = _gc(stats)
    assert "forced 1, in a reserved window 4 (1,234 cutoffs moved before one)" in line
    later = stats | {"collections": [25, 2, 0], "forced": 3, "planned": 5, "cutoffs_moved": 2000}
    during = gc_delta(stats, later)
    assert during == {
        "collections": [15, 1, 0],
        "forced": 2,
        "planned": 1,
        "cutoffs_moved": 766,
        "overran": 0,
        "overruns": [],
    }
    assert "during the run: collections [15, 1, 0], forced 2, in a reserved window 1" in _gc_run(
        during
    )
    assert gc_delta(None, later) is None and gc_delta({"mode": "automatic"}, later) is None


def test_deadline_bench_names_the_longest_overrun_of_the_run() -> None:
    def overrun(n: int, over_ms: float) -> dict[str, Any]:
        return {"number": n, "generation": 0, "pause_ms": 9.5, "cpu_ms": 2.0, "over_ms": over_ms}

    stats = {"mode": "paced", "collections": [10, 1, 0], "forced": 0, "overran": 2}
    stats |= {"recent_overruns": [overrun(1, 30.0), overrun(2, 1.0)]}
    later = stats | {"collections": [20, 2, 0], "overran": 4}
    later |= {
        "recent_overruns": [overrun(1, 30.0), overrun(2, 1.0), overrun(3, 7.5), overrun(4, 2)]
    }
    during = gc_delta(stats, later)
    assert during is not None and during["overran"] == 2
    assert [o["number"] for o in during["overruns"]] == [3, 4]  # not 1 and 2: before the run
    line = _gc_run(during)
    assert (
        "overran 2 (the longest 7.5 ms past: a generation-0 pause of 9.5 ms, 2.0 ms of it" in line
    )
    assert "the longest" not in _gc_run(gc_delta(stats, stats))


def sample(t: float, rss_mb: float, queue: int = 0, late: int = 0) -> dict[str, Any]:
    return {
        "t": t,
        "rss_kb": int(rss_mb * 1024),
        "notice_queue": queue,
        "late_calls_draining": late,
        "notices_sent": t * 10,
        "notices_dropped": 0,
    }


def test_deadline_bench_names_the_longest_stall_of_the_run_and_its_cpu() -> None:
    def stall(n: int, late_ms: float, cpu_ms: float) -> dict[str, Any]:
        return {"number": n, "late_ms": late_ms, "gap_ms": late_ms + 10, "cpu_ms": cpu_ms}

    before = {"smoothed": 0.0, "max": 0.05, "stall_ms": 5.0, "stalls": 1}
    before["recent_stalls"] = [stall(1, 40.0, 50.0)]
    after = before | {
        "stalls": 3,
        "recent_stalls": [stall(1, 40, 50), stall(2, 6, 16), stall(3, 30, 4)],
    }
    during = stall_delta(before, after)
    expected = {"stall_ms": 5.0, "stalls": 2, "recent": [stall(2, 6, 16), stall(3, 30, 4)]}
    assert during == expected  # not the first
    line = _stalls(during)
    assert "stalled (a tick > 5 ms late) 2 times, the longest 30.0 ms late" in line
    assert "on the CPU 10% of its 40.0 ms" in line  # 4 of 40 ms: the machine, not the SSP
    assert (
        _stalls(stall_delta(before, before)) == "; event loop stalled (a tick > 5 ms late) 0 times"
    )
    assert stall_delta({"smoothed": 0.0, "max": 0.0}, after) is None  # an SSP that lists none
    # the threshold is the SSP's, from /stats
    assert "(a tick > 2.5 ms late)" in _stalls(stall_delta(before, after | {"stall_ms": 2.5}))
    assert _stalls(None) == ""


def test_soak_memory_growth_is_measured_after_warm_up() -> None:
    flat = [sample(t, 50 if t < 30 else 80 + (t % 3) * 0.1) for t in range(0, 300, 5)]
    a = analyse(flat, warmup_s=30)
    assert a["rss_after_warmup_mb"] == pytest.approx(80.1, abs=0.2)
    assert abs(a["rss_growth"]) < 0.01 and a["memory_ok"]
    growing = [sample(t, 80 + t * 0.1) for t in range(0, 300, 5)]
    a = analyse(growing, warmup_s=30)
    assert a["rss_growth"] > 0.10 and not a["memory_ok"]


def test_soak_queues_bounded_or_not() -> None:
    steady = [sample(t, 80, queue=t % 20, late=5) for t in range(0, 300, 5)]
    steady[40]["late_calls_draining"] = 400  # one stall of a shared machine is not a trend
    a = analyse(steady, warmup_s=30)
    assert a["queues_ok"] and a["notice_queue"]["max"] < 20
    climbing = [sample(t, 80, queue=t * 30) for t in range(0, 300, 5)]
    a = analyse(climbing, warmup_s=30)
    assert not a["notice_queue"]["bounded"] and not a["queues_ok"]
    full = [sample(t, 80, queue=10_000 if t > 200 else 10) for t in range(0, 300, 5)]
    assert not analyse(full, warmup_s=30)["notice_queue"]["bounded"]  # at its cap: dropping
    assert "error" in analyse(steady[:3], warmup_s=30)


def test_soak_tells_a_filling_structure_from_a_leak() -> None:
    filling = [sample(t, min(80 + t * 0.2, 110)) for t in range(0, 600, 5)]
    a = analyse(filling, warmup_s=60)
    assert not a["memory_ok"] and a["rss_growth_second_half"] == 0


def test_the_run_queue_wait_of_a_process_is_readable() -> None:
    waited = cpu_wait_seconds(os.getpid())
    assert waited is not None and waited >= 0.0
    assert cpu_wait_seconds(2**22 + 1) is None  # above Linux's largest pid: no such process


SPIN = (
    "import sys, time; sys.stdin.readline(); t = time.process_time()\n"
    "while time.process_time() - t < 0.5: pass\n"
    "print('spun', flush=True); sys.stdin.readline()"
)


def test_what_else_ran_on_the_ssps_cpu_is_measured() -> None:
    """Half a second of a stranger's CPU on the SSPs' CPU shows as other work; counted as one of
    the SSPs, it does not."""
    cpu = min(os.sched_getaffinity(0))
    assert cpu_times([]) is None and cpu_times([2**20]) is None
    child = subprocess.Popen(
        [sys.executable, "-c", SPIN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        preexec_fn=niced(0, {cpu}),
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        t0 = time.monotonic()
        stranger = CpuDisturbance([cpu], [cpu], [])
        ssp = CpuDisturbance([cpu], [cpu], [child.pid])
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"spun\n"
        seen, own = stranger.shares(), ssp.shares()
        wall = time.monotonic() - t0
    finally:
        child.kill()
        child.wait(timeout=10)
    assert seen is not None and own is not None
    # /proc/stat counts in ticks (1/100 s): allow a few at each end
    assert seen["ssp_cpu_other_work"] * wall >= 0.45
    assert own["ssp_cpu_other_work"] * wall <= seen["ssp_cpu_other_work"] * wall - 0.4
    for shares in (seen, own):
        assert 0.0 <= shares["others_idle"] <= 1.0
        assert shares["ssp_cpu_steal"] >= 0.0 and shares["others_steal"] >= 0.0
    line = _disturbance(seen)
    assert line.startswith("the SSPs' CPU: other work ") and "the others' CPUs: idle" in line


def test_rss_of_this_process_is_readable() -> None:
    import os

    kb = rss_kb(os.getpid())
    assert kb is not None and kb > 1000
    assert rss_kb(2**22 + 12345) is None
