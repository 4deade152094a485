"""The ``gavel`` command line: help, exit codes, config errors, precedence, and real processes.

Usage and config errors run ``gavel.cli.main`` in-process (fast); the demo world and the
SSP + DSP servers run as real subprocesses, always stopped by PID in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import aiohttp
import orjson
import pytest

from exchange.config import ConfigError
from gavel.cli import main
from gavel.config import DEFAULT_CONFIG, load_world
from tests.conftest import bid_request, eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
GAVEL = [sys.executable, "-m", "gavel"]
STOP_TIMEOUT_S = 10.0


def run_main(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``gavel argv`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def gavel(
    *args: str, timeout: float = 30, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gavel args`` to completion."""
    return subprocess.run(
        [*GAVEL, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


# -- help and usage ------------------------------------------------------------------------------

FLAGS = {
    "ssp": ["--config", "--host", "--port", "--dsp", "--tmax-ms", "--seed"],
    "dsp": [
        "--host",
        "--port",
        "--name",
        "--strategy",
        "--param",
        "--seed",
        "--latency-ms",
        "--latency-jitter-ms",
        "--latency-dist",
        "--hang-rate",
        "--error-rate",
        "--garbage-rate",
        "--hang-s",
    ],
    "run": ["--config", "--duration", "--qps", "--port", "--quiet"],
}


def test_top_level_help_lists_the_subcommands() -> None:
    proc = gavel("--help")
    assert proc.returncode == 0, proc.stderr
    for command in FLAGS:
        assert command in proc.stdout
    assert "--verbose" in proc.stdout


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_subcommand_help_mentions_its_flags(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main([command, "--help"], capsys)
    assert code == 0
    for flag in FLAGS[command]:
        assert flag in out, f"gavel {command} --help does not mention {flag}"


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main([], capsys)
    assert code == 2
    assert "usage:" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["dsp", "--port", "0", "--hang-rate", "2"], "--hang-rate"),
        (["dsp", "--port", "0", "--error-rate", "-0.1"], "--error-rate"),
        (["dsp", "--port", "0", "--garbage-rate", "lots"], "--garbage-rate"),
        (["dsp", "--port", "0", "--latency-dist", "gaussian"], "--latency-dist"),
        (["dsp", "--port", "0", "--param", "price"], "--param"),
        (["dsp"], "--port"),
        (["ssp", "--dsp", "no-url"], "--dsp"),
        (["ssp", "--port", "http"], "--port"),
        (["run", "--qps", "many"], "--qps"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(argv, capsys)
    assert code == 2
    assert named in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["dsp", "--port", "0", "--strategy", "no-such-strategy"], "no-such-strategy"),
        (["dsp", "--port", "0", "--param", "colour=red"], "colour"),
        (["dsp", "--port", "0", "--hang-rate", "0.6", "--error-rate", "0.6"], "hang_rate"),
        (["dsp", "--port", "0", "--latency-jitter-ms", "5"], "latency_jitter_ms"),
    ],
)
def test_bad_dsp_setup_exits_2_before_serving(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(argv, capsys)
    assert code == 2
    assert named in err
    assert "Traceback" not in err


# -- configuration -------------------------------------------------------------------------------


def test_missing_config_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.toml"
    proc = gavel("ssp", "--config", str(missing))
    assert proc.returncode == 2, proc.stderr
    assert str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[exchange]\ntmax_ms = 100\nbogus_key = 1\n", "bogus_key"),
        ("[exchnage]\ntmax_ms = 100\n", "exchnage"),
        ("[ssp]\nmax_in_flight = 3\n", "max_in_flight"),
        ('[[dsp]]\nname = "a"\nstrategy = "constant"\nprise = 2\n', "prise"),
        (
            '[[sites]]\nid = "s"\ndomain = "s.example"\nslots = [{ id = "x", w = 1, h = 1, flor = 1 }]\n',
            "flor",
        ),
        ('[exchange]\ntmax_ms = "fast"\n', "tmax_ms"),
        ("[exchange]\ntmax_ms = 0\n", "tmax_ms"),
        ("[exchange\ntmax_ms = 100\n", "TOML"),
    ],
)
@pytest.mark.parametrize("command", ["ssp", "run"])
def test_bad_config_exits_2_naming_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, named: str, command: str
) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    code, _, err = run_main([command, "--config", str(path)], capsys)
    assert code == 2
    assert named in err
    assert str(path) in err
    assert "Traceback" not in err


def write_scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return path


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, "[exchange]\ntmax_ms = 90\n[ssp]\nmax_inflight = 64\n")
    assert load_world(path, environ={}).exchange.tmax_ms == 90
    world = load_world(
        path, environ={"GAVEL_EXCHANGE_TMAX_MS": "80", "GAVEL_SSP_MAX_INFLIGHT": "7"}
    )
    assert world.exchange.tmax_ms == 80
    assert world.ssp.max_inflight == 7
    # and over the defaults when there is no file
    assert load_world(None, environ={"GAVEL_EXCHANGE_TMAX_MS": "70"}).exchange.tmax_ms == 70
    assert load_world(None, environ={}).exchange.tmax_ms == 100


def test_default_config_loads() -> None:
    world = load_world(DEFAULT_CONFIG, environ={})
    expected = tomllib.loads(DEFAULT_CONFIG.read_text())
    assert [d.name for d in world.dsp] == [d["name"] for d in expected["dsp"]]
    assert [s.id for s in world.sites] == [s["id"] for s in expected["sites"]]
    assert world.exchange.tmax_ms == expected["exchange"]["tmax_ms"]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("GAVEL_EXCHANGE_TMAX_MS", "fast"),
        ("GAVEL_EXCHANGE_TMAX_MS", "0"),
        ("GAVEL_EXCHANGE_LATE_CALLS", "sometimes"),
        ("GAVEL_SSP_GC_FREEZE", "maybe"),
    ],
)
def test_bad_environment_value_is_a_config_error(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_world(DEFAULT_CONFIG, environ={var: value})
    assert var.split("_", 2)[2].lower() in str(info.value).lower()


def test_bad_environment_exits_2(tmp_path: Path) -> None:
    proc = gavel("ssp", "--config", str(DEFAULT_CONFIG), env={"GAVEL_EXCHANGE_TMAX_MS": "fast"})
    assert proc.returncode == 2, proc.stderr
    assert "GAVEL_EXCHANGE_TMAX_MS" in proc.stderr


# -- real processes ------------------------------------------------------------------------------


@contextlib.contextmanager
def processes() -> Iterator[list[tuple[subprocess.Popen[bytes], IO[bytes]]]]:
    """Started processes, each SIGTERMed by PID on the way out (SIGKILLed if it lingers)."""
    procs: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
    try:
        yield procs
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log in procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def start(procs: list, tmp_path: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [*GAVEL, *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    procs.append((proc, log))
    return proc


def logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')}" for p in tmp_path.glob("*.log")
    )


async def wait_healthy(session: aiohttp.ClientSession, url: str, procs: list) -> None:
    async def healthy() -> bool:
        for proc, _ in procs:
            assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}"
        try:
            async with session.get(url) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    await eventually(healthy, timeout=20, what=f"{url} to answer")


@pytest.mark.slow
async def test_ssp_and_dsp_processes_auction_and_stop_cleanly(tmp_path: Path) -> None:
    high_port, low_port, ssp_port = free_port(), free_port(), free_port()
    with processes() as procs:
        for name, port, price in (("high", high_port, 3.0), ("low", low_port, 2.0)):
            start(procs, tmp_path, name, "dsp", "--port", str(port), "--name", name,
                  "--strategy", "constant", "--param", f"price={price}", "--param", f"seat={name}")  # fmt: skip
        ssp = start(procs, tmp_path, "ssp", "ssp", "--port", str(ssp_port), "--seed", "1",
                    "--dsp", f"high=http://127.0.0.1:{high_port}/openrtb2/bid",
                    "--dsp", f"low=http://127.0.0.1:{low_port}/openrtb2/bid")  # fmt: skip
        base = f"http://127.0.0.1:{ssp_port}"
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for port in (high_port, low_port, ssp_port):
                await wait_healthy(session, f"http://127.0.0.1:{port}/healthz", procs)
            body = orjson.dumps(bid_request("proc-1"))
            async with session.post(
                f"{base}/openrtb2/auction",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp:
                assert resp.status == 200, (await resp.text()) + logs(tmp_path)
                assert resp.headers["x-openrtb-version"] == "2.6"
                answer = await resp.json()
            assert answer["id"] == "proc-1"
            assert answer["seatbid"][0]["seat"] == "high"
            assert answer["seatbid"][0]["bid"][0]["price"] == 2.01
            # the default sites are served when no config is given
            async with session.post(f"{base}/ad", json={"site": "news", "slot": "top"}) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["price"] == 2.01

        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                code = proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{proc.args!r} did not stop within {STOP_TIMEOUT_S} s of SIGTERM")
            assert code in (0, -signal.SIGTERM), f"{proc.args!r} exited {code}\n{logs(tmp_path)}"
        assert ssp.returncode is not None
        assert "Traceback" not in logs(tmp_path)


@pytest.mark.slow
def test_gavel_run_demo_world(tmp_path: Path) -> None:
    out_path, err_path = tmp_path / "run.out", tmp_path / "run.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [*GAVEL, "run", "--duration", "3", "--qps", "30", "--port", "0"],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # gavel run stops its own children
                try:
                    proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    assert code == 0, f"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    names = [d["name"] for d in tomllib.loads(DEFAULT_CONFIG.read_text())["dsp"]]
    assert "\nDSP " in stdout, f"no summary table:\n{stdout}"
    summary = stdout[stdout.rindex("\nDSP ") :]
    rows = {line.split()[0]: line.split()[1:] for line in summary.splitlines()[1:] if line}
    auctions = int(re.search(r"auctions (\d+), filled", summary).group(1))  # type: ignore[union-attr]
    assert auctions > 0
    for name in names:
        assert name in rows, f"DSP {name!r} missing from the summary:\n{stdout}"
        assert int(rows[name][0]) == auctions  # every DSP was asked in every auction
    money = re.search(
        r"spend ([\d.]+) = publisher revenue ([\d.]+) \+ exchange fee ([\d.]+)", summary
    )
    assert money is not None, summary
    spend, revenue, fee = (float(x) for x in money.groups())
    assert spend > 0
    assert abs(spend - (revenue + fee)) <= 0.0001 + 1e-9  # printed to 4 decimals
    assert "Traceback" not in stderr
