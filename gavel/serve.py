"""Serving an aiohttp app on uvloop until SIGINT/SIGTERM, then shutting down cleanly.

One process serves one core. ``workers > 1`` forks that many processes that all listen on the same
port (SO_REUSEPORT: the kernel spreads connections over them); each keeps its own state, ``/stats``
and ``/metrics``. The parent forwards SIGINT/SIGTERM to them and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps odd platforms going
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def serve_until_stopped(
    app: web.Application, *, host: str, port: int, ready: str = "", reuse_port: bool = False
) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, host, port, backlog=1024, reuse_address=True, reuse_port=reuse_port or None
    )
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready:
        log.info("%s listening on http://%s:%d", ready, host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(app: web.Application, *, host: str, port: int, name: str, workers: int = 1) -> int:
    """Serve ``app`` until stopped; with ``workers > 1``, in that many forked processes."""
    if workers <= 1:
        _serve(app, host, port, name, reuse_port=False)
        return 0
    if port == 0:
        raise ValueError("several workers need a fixed --port (each would get its own port 0)")
    children: list[int] = []
    for i in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: serve, then leave without running the parent's cleanup
            code = 0
            try:
                _serve(app, host, port, f"{name} worker {i + 1}/{workers}", reuse_port=True)
            except BaseException:
                log.exception("worker %d failed", i + 1)
                code = 1
            os._exit(code)
        children.append(pid)
    return _supervise(children)


def _serve(app: web.Application, host: str, port: int, name: str, *, reuse_port: bool) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(
            serve_until_stopped(app, host=host, port=port, ready=name, reuse_port=reuse_port)
        )


def _supervise(children: list[int]) -> int:
    """Forward SIGINT/SIGTERM to the workers; when one dies on its own, stop the others."""
    alive = set(children)

    def forward(signum: int, frame: object) -> None:
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = 0
    while alive:
        pid, status = os.wait()
        alive.discard(pid)
        if os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM, -signal.SIGINT):
            code = 1
            forward(signal.SIGTERM, None)
    return code
