"""The event log: an append-only JSONL file, rotated by size, written off the request path.

:meth:`EventLog.emit` is all the request path pays: a bounded append of the event as it is (see
:class:`~exchange.events.EventRecorder`). When ``queue_size`` events are accepted and not yet
written, a new one is dropped and counted (``dropped``, ``gavel_events_dropped_total``): the log never
slows an auction and never grows without bound.

Two stages follow, both off the request path. Encoding: the first emit of an event-loop iteration
schedules (``call_soon``) the encoding of what is waiting into JSON lines, a chunk at a time, so
it runs right after the auctions of that iteration have answered, while their objects are still in
the CPU cache, and nothing is kept alive for long (an auction kept for a whole flush interval costs
several times its encoding: bench/RESULTS.md). Writing: a task wakes every ``flush_s`` (50 ms) and
hands the lines to one writer thread, which appends them to the file and rotates it by size: past
``max_bytes`` the file becomes ``path.1``, ``path.1`` becomes ``path.2``... and the oldest past
``backups`` is deleted. :meth:`EventLog.close` writes everything accepted before it returns:
nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import orjson

from exchange import events
from exchange.events import EventRecorder, Pending
from exchange.http_bidder import host_of
from exchange.metrics import ExchangeMetrics
from exchange.notices import NoticeSender

log = logging.getLogger(__name__)

#: Events encoded per slice of the event loop's time (~1 ms for auction records).
CHUNK = 128


class EventLog:
    """Events appended to ``path`` as JSON lines. ``{pid}`` in the path becomes the process id
    (one file per worker when several serve one port)."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        backups: int = 5,
        queue_size: int = 100_000,
        flush_s: float = 0.05,
        encode: Callable[[Pending], dict[str, Any]] = events.encode,
        metrics: ExchangeMetrics | None = None,
    ) -> None:
        if max_bytes < 0 or backups < 0 or queue_size < 1 or flush_s <= 0:
            raise ValueError("event log: max_bytes, backups >= 0; queue_size >= 1; flush_s > 0")
        self.path = Path(str(path).replace("{pid}", str(os.getpid())))
        self.max_bytes = max_bytes
        self.backups = backups
        self.queue_size = queue_size
        self.flush_s = flush_s
        self.encode = encode
        #: Events accepted and not yet written (or failed): what the queue bound applies to.
        self.backlog = 0
        self.written = 0
        self.dropped = 0
        #: Events lost after they were accepted: not encodable, or the file could not be written.
        self.failed = 0
        self.rotations = 0
        self._pending: deque[Pending] = deque()  # accepted, not yet encoded
        self._lines: list[bytes] = []  # encoded, not yet handed to the writer
        self._counts: dict[str, int] = {}  # ... by type
        self._loop: asyncio.AbstractEventLoop | None = None
        self._encoding = False  # an encoding slice is scheduled
        self._closed = False
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._fh: IO[bytes] | None = None
        self._size = 0
        self._metrics = metrics
        self._dropped = (
            {t: metrics.events_dropped.labels(t) for t in events.TYPES} if metrics else {}
        )
        self._written = (
            {t: metrics.events_written.labels(t) for t in events.TYPES} if metrics else {}
        )

    # -- the request path ------------------------------------------------------------------------

    def emit(self, event: Pending) -> bool:
        """Queue ``event``; False (and counted) when the queue is full or the log is closed."""
        if self.backlog >= self.queue_size or self._closed:
            self.dropped += 1
            child = self._dropped.get(event[0])
            if child is not None:
                child.inc()
            return False
        self.backlog += 1
        self._pending.append(event)
        if not self._encoding and self._loop is not None:
            self._encoding = True
            self._loop.call_soon(self._encode_slice)
        return True

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the file (creating its folder) and start writing; needs a running event loop."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("ab")
        self._size = self._fh.tell()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gavel-eventlog")
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run())
        if self._pending:
            self._encoding = True
            self._loop.call_soon(self._encode_slice)

    async def close(self) -> None:
        """Stop accepting events, write every accepted one, close the file."""
        self._closed = True
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        assert self._executor is not None and self._fh is not None
        await asyncio.get_running_loop().run_in_executor(self._executor, self._fh.close)
        self._executor.shutdown(wait=True)
        self._task = None

    def stats(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "written": self.written,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self.backlog,
            "queue_size": self.queue_size,
            "rotations": self.rotations,
            "bytes": self._size,
        }

    # -- encoding --------------------------------------------------------------------------------

    def _encode_slice(self) -> None:
        """Encode up to CHUNK waiting events; schedule the next slice while more wait."""
        try:
            self._encode(CHUNK)
        finally:
            if self._pending and self._loop is not None:
                self._loop.call_soon(self._encode_slice)
            else:
                self._encoding = False

    def _encode(self, n: int) -> None:
        pending, lines, counts, encode = self._pending, self._lines, self._counts, self.encode
        for _ in range(min(n, len(pending))):
            event = pending.popleft()
            try:
                lines.append(orjson.dumps(encode(event), option=orjson.OPT_APPEND_NEWLINE))
            except Exception:
                log.exception("event log: cannot encode a %s event", event[0])
                self.failed += 1
                self.backlog -= 1
                continue
            counts[event[0]] = counts.get(event[0], 0) + 1

    # -- the writer ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            ok = True
            try:
                await self._flush()
            except Exception:  # a bug here must not end the log silently; the bound still holds
                ok = False
                log.exception("event log %s: flush failed", self.path)
            if self._stopping:
                if ok and (self._pending or self._lines):
                    continue  # accepted while the last flush was writing: write them too
                lost = len(self._pending) + len(self._lines)  # only after a failure
                self.failed += lost
                self.backlog -= lost
                self._pending.clear()
                self._lines, self._counts = [], {}
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)

    async def _flush(self) -> None:
        """Hand the encoded lines to the writer thread (encoding first what still waits)."""
        while self._pending:  # normally done already by the encoding slices
            self._encode(CHUNK)
            await asyncio.sleep(0)
        lines, counts = self._lines, self._counts
        if not lines:
            return
        self._lines, self._counts = [], {}
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._write, lines)
        except OSError as exc:
            log.error("event log %s: %d events not written: %s", self.path, len(lines), exc)
            self.failed += len(lines)
        else:
            self.written += len(lines)
            for kind, k in counts.items():
                child = self._written.get(kind)
                if child is not None:
                    child.inc(k)
        self.backlog -= len(lines)
        if self._metrics is not None:
            self._metrics.event_queue.set(self.backlog)

    def _write(self, lines: list[bytes]) -> None:
        """In the writer thread: append ``lines``, rotating at line boundaries past ``max_bytes``."""
        fh = self._fh
        assert fh is not None
        size = self._size
        start = 0
        for i, line in enumerate(lines):
            if self.max_bytes and size and size + len(line) > self.max_bytes:
                fh.write(b"".join(lines[start:i]))
                fh = self._rotate(fh)
                size, start = 0, i
            size += len(line)
        fh.write(b"".join(lines[start:]))
        fh.flush()
        self._size = size

    def _rotate(self, fh: IO[bytes]) -> IO[bytes]:
        fh.close()
        if self.backups:
            for i in range(self.backups - 1, 0, -1):
                older = self._backup(i)
                if older.exists():
                    os.replace(older, self._backup(i + 1))
            os.replace(self.path, self._backup(1))
        self._fh = self.path.open("wb")
        self.rotations += 1
        return self._fh

    def _backup(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")


class LoggedNoticeSender(NoticeSender):
    """A :class:`~exchange.notices.NoticeSender` that also records each notice it is given as a
    ``notice`` event: ``queued``, ``blocked`` (not a configured DSP's host) or ``dropped`` (queue
    full). Whether a queued notice was then ``sent`` or ``failed`` is in ``gavel_notices_total``."""

    recorder: EventRecorder | None = None

    def send(self, kind: str, url: str) -> bool:
        ok = super().send(kind, url)
        recorder = self.recorder
        if recorder is not None:
            if ok:
                result = "queued"
            else:
                result = "blocked" if host_of(url) not in self.allowed_hosts else "dropped"
            recorder.on_notice(kind, url, result)
        return ok
