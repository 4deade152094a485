"""``gavel traffic``: help, usage errors (exit 2), an unreachable SSP (exit 1), and a real run
against SSP and DSP processes (exit 0, a progress line, a summary whose counts add up)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.gavel.test_cli import GAVEL, ROOT, processes, run_main, start, wait_healthy

FLAGS = ["--ssp", "--config", "--qps", "--duration", "--seed", "--users", "--day-minutes",
         "--dsp", "--burst", "--max-error-rate", "--quiet"]  # fmt: skip


def test_help_teaches_the_flags_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(["traffic", "--help"], capsys)
    assert code == 0
    for flag in FLAGS:
        assert flag in out, flag
    for word in ("Poisson", "simulated", "impression beacon", "P(click)", "/pixel", "exit codes"):
        assert word in out, word
    code, out, _ = run_main(["--help"], capsys)
    assert "traffic" in out


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["traffic"], "--ssp"),
        (["traffic", "--ssp", "http://x", "--qps", "0"], "--qps"),
        (["traffic", "--ssp", "http://x", "--users", "ten"], "--users"),
        (["traffic", "--ssp", "http://x", "--day-minutes", "-3"], "--day-minutes"),
        (["traffic", "--ssp", "http://x", "--burst", "10:5"], "--burst"),
        (["traffic", "--ssp", "http://x", "--dsp", "steady"], "--dsp"),
        (["traffic", "--ssp", "http://x", "--max-error-rate", "2"], "--max-error-rate"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(argv, capsys)
    assert code == 2
    assert named in err


def test_a_bad_scenario_exits_2_naming_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "world.toml"
    path.write_text("[users]\ncount = 10\nsegmnets = 3\n")
    code, _, err = run_main(["traffic", "--ssp", "http://x", "--config", str(path)], capsys)
    assert code == 2
    assert "segmnets" in err and str(path) in err


def test_an_unreachable_ssp_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(
        ["traffic", "--ssp", f"http://127.0.0.1:{free_port()}", "--duration", "1"], capsys
    )
    assert code == 1
    assert "cannot reach" in err


@pytest.mark.slow
async def test_traffic_against_ssp_and_dsp_processes(tmp_path: Path) -> None:
    dsp_port, ssp_port = free_port(), free_port()
    with processes() as procs:
        start(procs, tmp_path, "dsp", "dsp", "--port", str(dsp_port), "--name", "steady",
              "--strategy", "constant", "--param", "price=2", "--param", "seat=steady",
              "--param", "adomain=runfast.example")  # fmt: skip
        start(procs, tmp_path, "ssp", "ssp", "--port", str(ssp_port),
              "--dsp", f"steady=http://127.0.0.1:{dsp_port}/openrtb2/bid")  # fmt: skip
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for port in (dsp_port, ssp_port):
                await wait_healthy(session, f"http://127.0.0.1:{port}/healthz", procs)
        proc = subprocess.run(
            [
                *GAVEL,
                "traffic",
                "--ssp",
                f"http://127.0.0.1:{ssp_port}",
                "--qps",
                "40",
                "--duration",
                "2.5",
                "--users",
                "5000",
                "--seed",
                "3",
                "--day-minutes",
                "1",
                "--dsp",
                f"steady=http://127.0.0.1:{dsp_port}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{ssp_port}/stats") as resp,
        ):
            ssp = await resp.json()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"^\[\s*\d+\.\ds\] sim Wed 1[67]:\d\d UTC\s+sent/s", proc.stdout, re.M), (
        proc.stdout
    )
    m = re.search(r"(\d+) ad requests sent", proc.stdout)
    assert m is not None, proc.stdout
    sent = int(m.group(1))
    m = re.search(r"answers: filled (\d+) \([^)]*\), unfilled (\d+), errors (\d+)", proc.stdout)
    assert m is not None, proc.stdout
    filled, unfilled, errors = map(int, m.groups())
    assert sent > 40 and sent == filled + unfilled + errors and errors == 0
    assert ssp["auctions"] + ssp["overload"] == sent
    m = re.search(r"impressions (\d+) .*clicks (\d+)", proc.stdout)
    assert m is not None
    assert ssp["impressions"] == int(m.group(1)) and ssp["clicks"] == int(m.group(2))
