"""Serving an aiohttp app on uvloop until SIGINT/SIGTERM, then shutting down cleanly."""

from __future__ import annotations

import asyncio
import logging
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
    app: web.Application, *, host: str, port: int, ready: str = ""
) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
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


def run(app: web.Application, *, host: str, port: int, name: str) -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve_until_stopped(app, host=host, port=port, ready=name))
