"""Notices (win, loss, billing, click) sent off the request path.

A bounded queue and a few worker tasks GET each URL with a short timeout over the shared session.
Only the hosts of configured DSPs are ever called: a bid's ``nurl`` pointing anywhere else is counted
as ``blocked`` and not sent, so a bidder cannot make the exchange call arbitrary hosts. A full queue
drops the notice and counts it; :meth:`NoticeSender.close` drains what was accepted before stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp

from exchange.http_bidder import host_of
from exchange.metrics import ExchangeMetrics

log = logging.getLogger(__name__)


class NoticeSender:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        allowed_hosts: Iterable[tuple[str, int]],
        metrics: ExchangeMetrics,
        queue_size: int = 10_000,
        workers: int = 16,
        timeout_s: float = 1.0,
    ) -> None:
        self.session = session
        self.allowed_hosts = set(allowed_hosts)
        self.metrics = metrics
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=queue_size)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._workers = [
            asyncio.get_running_loop().create_task(self._work()) for _ in range(workers)
        ]
        self._counters: dict[tuple[str, str], Any] = {}

    def send(self, kind: str, url: str) -> bool:
        """Queue a GET of ``url``; False (and counted) if blocked or dropped."""
        if host_of(url) not in self.allowed_hosts:
            self._count(kind, "blocked")
            return False
        try:
            self.queue.put_nowait((kind, url))
        except asyncio.QueueFull:
            self._count(kind, "dropped")
            return False
        return True

    async def close(self, *, drain_s: float = 2.0) -> None:
        """Send what is queued (for at most ``drain_s``), then stop the workers."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.queue.join(), drain_s)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            kind, url = await self.queue.get()
            try:
                async with self.session.get(
                    url, timeout=self._timeout, allow_redirects=False
                ) as resp:
                    await resp.read()
                    # A redirect is not followed (it could lead off the allowed hosts): failed.
                    self._count(kind, "sent" if resp.status < 300 else "failed")
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                log.debug("notice %s to %s failed: %s", kind, url, exc)
                self._count(kind, "failed")
            finally:
                self.queue.task_done()

    def _count(self, kind: str, result: str) -> None:
        child = self._counters.get((kind, result))
        if child is None:
            child = self._counters[(kind, result)] = self.metrics.notices.labels(kind, result)
        child.inc()
