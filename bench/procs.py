"""Starting, probing and stopping the benchmark's server processes (all on 127.0.0.1).

Every process is started with :meth:`Processes.start` and stopped by its own PID (SIGTERM, then
SIGKILL after a grace period) by :meth:`Processes.stop_all`, which the caller runs in ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used so far by process ``pid`` (None where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def cpu_wait_seconds(pid: int) -> float | None:
    """Seconds process ``pid`` has spent runnable but waiting for a CPU (its run-queue wait, from
    /proc/<pid>/schedstat; None where that is missing)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def cpu_times(cpus: Collection[int]) -> dict[str, float] | None:
    """Seconds the CPUs ``cpus`` have spent since boot, summed over them (/proc/stat): ``busy``
    (user, nice, system, irq, softirq), ``idle`` (idle, iowait) and ``steal`` (the hypervisor gave
    their time to another virtual machine). None where /proc/stat is missing or lacks one of them."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}" for c in cpus}
    busy = idle = steal = found = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if name in wanted:
            f = [int(x) for x in rest.split()]
            busy += f[0] + f[1] + f[2] + f[5] + f[6]
            idle += f[3] + f[4]
            steal += f[7] if len(f) > 7 else 0
            found += 1
    if not wanted or found != len(wanted):
        return None
    return {"busy": busy / _TICKS, "idle": idle / _TICKS, "steal": steal / _TICKS}


def niced(nice: int, cpus: Collection[int] | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that lowers the child's CPU priority by ``nice`` and, with ``cpus``, keeps
    it on those CPUs (None when there is nothing to do).

    On a machine where the SSP shares its cores with the DSPs and the load generator, which stand
    in for other machines, their lower priority keeps them from delaying the SSP's timers; CPUs of
    their own keep them off the SSP's (see :func:`split_cpus`).
    """
    if nice <= 0 and cpus is None:
        return None
    chosen = None if cpus is None else set(cpus)

    def setup() -> None:
        if nice > 0:
            os.nice(nice)
        if chosen is not None:
            os.sched_setaffinity(0, chosen)

    return setup


def split_cpus() -> tuple[frozenset[int], frozenset[int]] | None:
    """The CPUs this process may use, split in two: the first for the server under test, the rest
    for the processes that stand in for other machines (None with fewer than 2 CPUs, or where the
    platform cannot pin processes)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return frozenset(cpus[:1]), frozenset(cpus[1:])


def exit_on_sigterm() -> None:
    """Make SIGTERM raise ``SystemExit(143)``, so that a benchmark's ``finally`` stops its servers."""
    signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def get(url: str, *, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def get_json(url: str) -> dict[str, Any]:
    return dict(orjson.loads(get(url)))


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, limit: int = 2000) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]


class ServerFailed(RuntimeError):
    pass


@contextlib.contextmanager
def paused(servers: Sequence[Server], settle_s: float = 1.0) -> Iterator[None]:
    """Stop ``servers`` (SIGSTOP) while the block runs; continue them (SIGCONT) after it.

    Two servers sharing a CPU, measured one after the other: the idle one's timers still wake it
    hundreds of times a second, and the kernel lets a waking process take the CPU from the busy
    one. Stopped, it takes none. Continued, its event loop sees one tick seconds late (an SSP's
    loop-lag admission control would shed load for a moment), so the block's end waits
    ``settle_s`` for that to pass before the servers are measured again.
    """
    stopped = [s for s in servers if s.proc.poll() is None]
    for server in stopped:
        server.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for server in stopped:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGCONT)
        if stopped:
            time.sleep(settle_s)


class Processes:
    """The processes of one benchmark run."""

    def __init__(self) -> None:
        self.servers: list[Server] = []

    def start(
        self, name: str, module: str, *args: str, nice: int = 0, cpus: Collection[int] | None = None
    ) -> Server:
        """Run ``python -m module args... --port P`` on a free port; wait for its ``/healthz``.

        ``nice`` > 0 runs it at that lower CPU priority, ``cpus`` on those CPUs only (see
        :func:`niced`)."""
        port = free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop_all
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--port", str(port)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=niced(nice, cpus),
        )
        server = Server(name, port, proc, log)
        self.servers.append(server)
        self._wait_ready(server)
        return server

    def _wait_ready(self, server: Server, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise ServerFailed(
                    f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}"
                )
            try:
                get(server.url("/healthz"), timeout=1.0)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise ServerFailed(f"{server.name} did not answer /healthz in {timeout:.0f} s")

    def stop_all(self, grace: float = 5.0) -> None:
        """SIGTERM each process by its PID, then SIGKILL what is still running after ``grace``.

        A process :func:`paused` is continued first: stopped, it would not act on SIGTERM."""
        for server in self.servers:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGCONT)
                server.proc.terminate()
        deadline = time.monotonic() + grace
        for server in self.servers:
            try:
                server.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()
            with contextlib.suppress(OSError):
                server.log.close()
        self.servers.clear()
