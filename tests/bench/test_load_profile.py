"""Load profiles: every shipped profile loads; unknown keys and bad values are errors naming the
key and the file; flags override the file; the Locust command line follows the profile."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.load import apply_flags, build_parser, locust_command, progress_line
from bench.load_profile import (
    PROFILES,
    LoadProfile,
    Stage,
    format_stages,
    load_profile,
    parse_stages,
    world_path,
)
from exchange.config import ConfigError
from gavel.config import load_world

SHIPPED = sorted(PROFILES.glob("*.toml"))


def test_the_four_profiles_of_the_issue_and_the_ci_smoke_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"steady", "ramp", "spike", "dsp-hang", "smoke"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_profile_loads_with_its_world(path: Path) -> None:
    profile = load_profile(path)
    world = load_world(world_path(profile, path))
    assert world.sites and (world.dsp or profile.dsp)
    assert profile.total_s > 0


def test_ramp_steps_users_up_and_dsp_hang_adds_a_hanging_dsp() -> None:
    ramp = load_profile(PROFILES / "ramp.toml")
    users = [s.users for s in ramp.stages]
    assert users == sorted(users) and len(users) >= 4
    hang = load_profile(PROFILES / "dsp-hang.toml")
    assert [d.faults.hang_rate for d in hang.dsp] == [1.0]
    smoke = load_profile(PROFILES / "smoke.toml")
    assert smoke.duration_s <= 30 and smoke.thresholds.max_ms == 150
    assert smoke.thresholds.max_fail_ratio == 0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("userz = 3\n", "'userz'"),
        ("[thresholds]\np99 = 3\n", "thresholds.'p99'"),
        ("[traffic]\nad_wieght = 1\n", "traffic.'ad_wieght'"),
        ("[[stages]]\nduration_s = 1\nusers = 1\nramp = 2\n", "stages[0].'ramp'"),
    ],
)
def test_unknown_keys_are_errors_naming_key_and_file(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert named in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("users = 0\n", "users"),
        ("[thresholds]\nmax_fail_ratio = 2.0\n", "max_fail_ratio"),
        ("[traffic]\nad_weight = 0\nopenrtb_weight = 0\n", "ad_weight \\+ openrtb_weight"),
        ("users = 'many'\n", "users must be int"),
        ("processes = 0\n", "processes"),
    ],
)
def test_bad_values_are_errors(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        load_profile(write(tmp_path, text))


def test_stages_round_trip_through_the_command_line() -> None:
    stages = (Stage(15, 20, 20), Stage(10, 200), Stage(5.5, 0, 3))
    assert parse_stages(format_stages(stages)) == (
        Stage(15, 20, 20),
        Stage(10, 200, 200),
        Stage(5.5, 0, 3),
    )
    with pytest.raises(ConfigError, match="'x:1'"):
        parse_stages("x:1")


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_flags_override_the_profile() -> None:
    ramp = load_profile(PROFILES / "ramp.toml")
    p = apply_flags(ramp, args("--users", "7", "--duration", "3", "--p99-ms", "80"))
    assert (p.users, p.duration_s, p.stages) == (7, 3.0, ())  # a fixed run replaces the stages
    assert p.spawn_rate >= 7
    assert p.thresholds.p99_ms == 80
    assert p.thresholds.max_fail_ratio == ramp.thresholds.max_fail_ratio
    with pytest.raises(ConfigError, match="command line"):
        apply_flags(ramp, args("--max-fail-ratio", "3"))


def test_locust_command_follows_the_profile(tmp_path: Path) -> None:
    steady = load_profile(PROFILES / "steady.toml")
    cmd = locust_command(steady, host="http://h:1", world=Path("w.toml"), prefix=tmp_path / "x")
    text = " ".join(cmd)
    assert "-m locust -f" in text and "--headless" in text
    assert "locust_stages" not in text
    assert f"--csv {tmp_path / 'x'}" in text and f"--html {tmp_path / 'x'}.html" in text
    assert "-u 40 -r 40 -t 30s" in text
    assert "--p99-ms 120" in text and "--max-ms 150" in text and "--max-fail-ratio 0" in text
    assert "--processes" not in text
    ramp = apply_flags(load_profile(PROFILES / "ramp.toml"), args("--processes", "-1"))
    cmd = locust_command(ramp, host="http://h:1", world=Path("w.toml"), prefix=tmp_path / "r")
    text = " ".join(cmd)
    assert "locust_stages.py" in text and "--stages 15:20:20," in text
    assert " -u " not in text and "--processes -1" in text


def test_profile_defaults_are_a_valid_profile() -> None:
    p = LoadProfile()
    assert p.total_s == p.duration_s and p.peak_users == p.users


def test_progress_line_reads_stats_deltas() -> None:
    before = {"auctions": 100, "overload": 0, "bidders": {"a": {"requests": 100, "timeouts": 0}}}
    now = {
        "auctions": 300,
        "overload": 5,
        "in_flight": 3,
        "latency_s": {"p50": 0.01, "p99": 0.09, "max": 0.1},
        "bidders": {"a": {"requests": 300, "timeouts": 20}},
    }
    line = progress_line(now, before, 2.0, 10.0, 30.0)
    assert "auctions/s     100" in line and "10.0%" in line and "shed 5" in line


def test_gavel_bench_load_delegates_to_the_orchestrator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gavel.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "load", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gavel bench load")
    assert "--max-timeout-ratio" in out and "profiles" in out
    with pytest.raises(SystemExit) as exc:
        main(["bench"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:  # other commands still reject unknown flags
        main(["run", "--no-such-flag"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
