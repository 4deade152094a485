"""A closed-loop HTTP load generator: C connections, each posting the same body back to back.

Run it in its own process, next to the server it drives::

    python -m bench.loadgen http://127.0.0.1:8000/openrtb2/auction --body-file req.json \
        --concurrency 32 --duration 10

It prints one JSON object: ``requests`` completed in the measured window (after ``--warmup``),
``ok`` (200), ``nocontent`` (204), ``errors`` (any other status, a refused or dropped connection),
``rps`` (answers 200 or 204 per second), client-side ``p50_ms``/``p99_ms`` of every request and
``cpu_s``, the CPU this process used in the window. Error status 0 is a connection that failed.

Two clients: ``raw`` (the default) is a minimal keep-alive HTTP/1.1 client on
``asyncio.Protocol`` (~25 us of CPU per request); ``aiohttp`` uses one ``ClientSession`` (~130 us).
On a small machine the load generator shares the cores with the servers it drives, so the cheaper
client leaves more CPU to them and saturates a fast server with fewer cores.
"""

from __future__ import annotations

import argparse
import asyncio
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

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result = runner.run(
            run_load(
                args.url,
                body,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=args.warmup,
                client=args.client,
            )
        )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
