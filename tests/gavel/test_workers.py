"""gavel ssp --workers 2: two processes on one port (SO_REUSEPORT), stopped together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import orjson

from tests.conftest import free_port


def _stats(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as resp:
        return dict(orjson.loads(resp.read()))


def test_two_workers_share_the_port_and_stop_together() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gavel", "ssp", "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        pids: set[object] = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                pids.add(_stats(port)["pid"])  # a new connection each time: the kernel spreads them
            except OSError:
                time.sleep(0.05)
        assert len(pids) == 2, f"only saw workers {pids}"
        assert proc.pid not in pids  # the parent supervises, the children serve
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        for pid in pids:
            try:
                os.kill(int(pid), 0)  # type: ignore[call-overload]
            except ProcessLookupError:
                continue
            raise AssertionError(f"worker {pid} outlived its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_need_a_fixed_port_and_a_positive_count() -> None:
    for args in (["--workers", "2", "--port", "0"], ["--workers", "0"]):
        done = subprocess.run(
            [sys.executable, "-m", "gavel", "ssp", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "worker" in done.stderr
