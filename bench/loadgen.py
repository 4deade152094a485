"""An HTTP load generator: C connections each posting the same body back to back (closed loop),
or a fixed rate of requests on schedule (open loop, ``--rate``).

Run it in its own process, next to the server it drives::

    python -m bench.loadgen http://127.0.0.1:8000/openrtb2/auction --body-file req.json \
        --concurrency 32 --duration 10

It prints one JSON object: ``requests`` completed in the measured window (after ``--warmup``),
``ok`` (200), ``nocontent`` (204), ``errors`` (any other status, a refused or dropped connection),
``rps`` (answers 200 or 204 per second), client-side ``p50_ms``/``p99_ms`` of every request and
``cpu_s``, the CPU this process used in the window. Error status 0 is a connection that failed.

With ``--rate R`` the load is an open loop instead: requests leave on a fixed schedule, R a
second, whether or not earlier ones were answered (as users arrive), each on an idle keep-alive
connection or a new one (at most ``--max-connections``; a request that finds none is counted in
``dropped``). Latency is then measured from each request's scheduled time, so that a server (or a
load generator) falling behind shows in the figures instead of slowing the load down ("coordinated
omission"); ``sent_p99_ms``/``sent_max_ms`` measure from the actual write. Requests scheduled in
the window and still unanswered ``--drain`` seconds after it are errors (status 0). Open loop uses
the raw client.

Two clients: ``raw`` (the default) is a minimal keep-alive HTTP/1.1 client on
``asyncio.Protocol`` (~25 us of CPU per request); ``aiohttp`` uses one ``ClientSession`` (~130 us).
On a small machine the load generator shares the cores with the servers it drives, so the cheaper
client leaves more CPU to them and saturates a fast server with fewer cores.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from gavel.serve import loop_factory

HEADERS = {"Content-Type": "application/json", "x-openrtb-version": "2.6"}


@dataclass(slots=True)
class Tally:
    """What the workers saw in the measured window."""

    ok: int = 0
    nocontent: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def add(self, status: int, latency: float) -> None:
        if status == 200:
            self.ok += 1
        elif status == 204:
            self.nocontent += 1
        else:
            self.errors += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies.append(latency)


# -- the raw client ------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; answers with the status code."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        status = self._complete()
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def request(self, raw: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter

    def _complete(self) -> int | None:
        """The status of the response in the buffer once it is whole (and drop it), else None."""
        buf = self.buffer
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).lower()
        status = int(head[9:12])
        start = end + 4
        if b"transfer-encoding: chunked" in head:
            total = _chunked_end(buf, start)
            if total is None:
                return None
        else:
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                eol = head.find(b"\r\n", at)
                length = int(head[at + 15 : eol if eol >= 0 else len(head)])
            total = start + length
            if len(buf) < total:
                return None
        del buf[:total]
        return status


def _chunked_end(buf: bytearray, pos: int) -> int | None:
    """Where a chunked body starting at ``pos`` ends (after its last chunk), or None if incomplete."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2 + size + 2
        if len(buf) < pos:
            return None
        if size == 0:
            return pos


async def _raw_worker(
    url: str, body: bytes, tally: Callable[[], Tally | None], stop: asyncio.Event
) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    raw = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    conn: _Connection | None = None
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            if conn is None or conn.closed:
                _, conn = await loop.create_connection(_Connection, host, port)
            status = await conn.request(raw)
        except (OSError, ValueError):
            status = 0
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
            await asyncio.sleep(0.01)  # a refused connection must not spin
        current = tally()
        if current is not None:
            current.add(status, time.perf_counter() - t0)
    if conn is not None and conn.transport is not None:
        conn.transport.close()


# -- the aiohttp client --------------------------------------------------------------------------


async def _aiohttp_workers(
    url: str, body: bytes, concurrency: int, tally: Callable[[], Tally | None], stop: asyncio.Event
) -> None:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

    async def worker() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=HEADERS) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, OSError):
                status = 0
                await asyncio.sleep(0.01)
            current = tally()
            if current is not None:
                current.add(status, time.perf_counter() - t0)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await session.close()


# -- the open loop (raw client) ------------------------------------------------------------------


@dataclass(slots=True)
class _Pool:
    """Idle keep-alive connections to one server, at most ``limit`` open at once."""

    host: str
    port: int
    limit: int
    idle: list[_Connection] = field(default_factory=list)
    open: int = 0

    async def acquire(self) -> _Connection | None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
            self.open -= 1
        if self.open >= self.limit:
            return None
        self.open += 1
        try:
            _, conn = await asyncio.get_running_loop().create_connection(
                _Connection, self.host, self.port
            )
        except BaseException:
            self.open -= 1
            raise
        return conn

    def release(self, conn: _Connection, *, ok: bool) -> None:
        if ok and not conn.closed:
            self.idle.append(conn)
            return
        self.open -= 1
        if conn.transport is not None:
            conn.transport.close()

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


def _raw_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    raw = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    return host, port, raw


async def run_open_loop(
    url: str,
    body: bytes,
    *,
    rate: float,
    duration: float = 10.0,
    warmup: float = 1.0,
    max_connections: int = 1024,
    drain: float = 5.0,
) -> dict[str, Any]:
    """Send ``rate`` requests a second on schedule for ``warmup + duration`` seconds; the figures
    of the requests scheduled in the last ``duration`` seconds."""
    host, port, raw = _raw_request(url, body)
    pool = _Pool(host, port, max_connections)
    tally = Tally()
    sent_latencies: list[float] = []
    dropped = 0
    tasks: dict[asyncio.Task[None], bool] = {}  # in flight -> counted (scheduled in the window)

    async def one(due: float, counted: bool) -> None:
        nonlocal dropped
        status, sent = 0, due
        try:
            conn = await pool.acquire()
            if conn is None:
                if counted:
                    dropped += 1
                return
            sent = time.perf_counter()
            try:
                status = await conn.request(raw)
            finally:
                pool.release(conn, ok=status != 0)
        except (OSError, ValueError):
            status = 0
        if counted:
            now = time.perf_counter()
            tally.add(status, now - due)
            sent_latencies.append(now - sent)

    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    window, end = start + warmup, start + warmup + duration
    cpu0 = 0.0
    i, measuring = 0, False
    while True:
        now = time.perf_counter()
        if not measuring and now >= window:
            measuring, cpu0 = True, time.process_time()
        due = start + i / rate
        while due <= now and due < end:
            task = loop.create_task(one(due, due >= window))
            tasks[task] = due >= window
            task.add_done_callback(tasks.pop)
            i += 1
            due = start + i / rate
        if due >= end:
            break
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
    scheduled = i - math.ceil(warmup * rate)
    cpu = time.process_time() - cpu0
    if tasks:
        counted = dict(tasks)
        _, pending = await asyncio.wait(set(counted), timeout=drain)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in pending:
            if counted[t]:
                tally.add(0, drain + duration)  # unanswered: an error, as slow as we know
    pool.close()
    lat, sent = sorted(tally.latencies), sorted(sent_latencies)
    return {
        "url": url,
        "client": "raw",
        "mode": "open",
        "rate": rate,
        "max_connections": max_connections,
        "duration_s": duration,
        "scheduled": scheduled,
        "dropped": dropped,
        "requests": len(lat),
        "ok": tally.ok,
        "nocontent": tally.nocontent,
        "errors": tally.errors,
        "error_statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "rps": round((tally.ok + tally.nocontent) / duration, 1),
        "p50_ms": round(percentile(lat, 0.50) * 1000, 3),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 3),
        "p999_ms": round(percentile(lat, 0.999) * 1000, 3),
        "max_ms": round(lat[-1] * 1000, 3) if lat else 0.0,
        "sent_p99_ms": round(percentile(sent, 0.99) * 1000, 3),
        "sent_max_ms": round(sent[-1] * 1000, 3) if sent else 0.0,
        "connections_opened": pool.open,
        "cpu_s": round(cpu, 3),
    }


# -- the run -------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


async def run_load(
    url: str,
    body: bytes,
    *,
    concurrency: int = 32,
    duration: float = 10.0,
    warmup: float = 1.0,
    client: str = "raw",
) -> dict[str, Any]:
    """Drive ``url`` for ``warmup + duration`` seconds; the figures of the last ``duration``."""
    stop = asyncio.Event()
    window: list[Tally] = []

    def tally() -> Tally | None:
        return window[0] if window else None

    if client == "raw":
        jobs: list[Awaitable[None]] = [
            _raw_worker(url, body, tally, stop) for _ in range(concurrency)
        ]
    else:
        jobs = [_aiohttp_workers(url, body, concurrency, tally, stop)]
    tasks = [asyncio.ensure_future(j) for j in jobs]
    await asyncio.sleep(warmup)
    window.append(Tally())
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(duration)
    result = window.pop()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    stop.set()
    _, pending = await asyncio.wait(tasks, timeout=2.0)
    for t in pending:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lat = sorted(result.latencies)
    n = len(lat)
    return {
        "url": url,
        "client": client,
        "concurrency": concurrency,
        "duration_s": round(elapsed, 3),
        "requests": n,
        "ok": result.ok,
        "nocontent": result.nocontent,
        "errors": result.errors,
        "error_statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "rps": round((result.ok + result.nocontent) / elapsed, 1),
        "p50_ms": round(percentile(lat, 0.50) * 1000, 3),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 3),
        "max_ms": round(lat[-1] * 1000, 3) if lat else 0.0,
        "cpu_s": round(cpu, 3),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="Closed-loop HTTP load: CONCURRENCY connections post BODY to URL back to back "
        "for DURATION seconds (after WARMUP) and print the figures as one JSON object.",
    )
    p.add_argument("url", help="the URL to POST to, e.g. http://127.0.0.1:8000/openrtb2/auction")
    body = p.add_mutually_exclusive_group(required=True)
    body.add_argument("--body-file", metavar="FILE", help="the request body (JSON), from a file")
    body.add_argument("--body", help="the request body (JSON), inline")
    p.add_argument("-c", "--concurrency", type=int, default=32, help="connections (default 32)")
    p.add_argument(
        "-d", "--duration", type=float, default=10.0, help="measured seconds (default 10)"
    )
    p.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of load before measuring (default 1)"
    )
    p.add_argument(
        "--client",
        choices=["raw", "aiohttp"],
        default="raw",
        help="raw: lean asyncio.Protocol client (default); aiohttp: a ClientSession",
    )
    p.add_argument(
        "--rate",
        type=float,
        help="open loop: send RATE requests/s on schedule (raw client; --concurrency unused)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=1024,
        help="open loop: most connections open at once (default 1024)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=5.0,
        help="open loop: seconds to wait for the last answers (default 5)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        print("loadgen: concurrency must be >= 1, duration > 0, warmup >= 0", file=sys.stderr)
        return 2
    if args.body_file:
        with open(args.body_file, "rb") as f:
            body = f.read()
    else:
        body = args.body.encode()
    orjson.loads(body)  # fail early on a body that is not JSON
    if args.rate is not None:
        if args.rate <= 0 or args.max_connections < 1 or args.client != "raw":
            print("loadgen: --rate must be > 0, with the raw client", file=sys.stderr)
            return 2
        load = run_open_loop(
            args.url,
            body,
            rate=args.rate,
            duration=args.duration,
            warmup=args.warmup,
            max_connections=args.max_connections,
            drain=args.drain,
        )
    else:
        load = run_load(
            args.url,
            body,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            client=args.client,
        )
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result = runner.run(load)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
