"""The bare baselines Gavel is measured against: plain aiohttp servers with no exchange in them.

``python -m bench.baseline_proxy --port P --upstream URL [--upstream URL ...]`` serves the bare
5-way fan-out: ``POST /`` (any path) receives the body, forwards it to every upstream at once over
one shared ``ClientSession``, parses the answers with orjson, picks the highest ``price`` and answers
200 with it (or 204 when nobody bid), with a 100 ms timeout per call. No validation, no auction
rules, no notices, no metrics: the least an HTTP exchange can do.

With no ``--upstream`` it is the bare intake: parse the JSON body and answer 200 ``{"id": ...}``.

``GET /healthz`` says it is up; ``GET /stats`` counts requests and failed upstream calls.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web

from gavel.serve import loop_factory

HEADERS = {"Content-Type": "application/json", "x-openrtb-version": "2.6"}
JSON = "application/json"


@dataclass(slots=True)
class Proxy:
    upstreams: tuple[str, ...]
    timeout_s: float = 0.1
    session: aiohttp.ClientSession | None = None
    requests: int = 0
    upstream_errors: int = 0


PROXY = web.AppKey("bench_proxy", Proxy)


async def _session(app: web.Application) -> AsyncIterator[None]:
    proxy = app[PROXY]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=256, keepalive_timeout=30)
    proxy.session = aiohttp.ClientSession(connector=connector)
    yield
    await proxy.session.close()


async def _call(proxy: Proxy, url: str, body: bytes) -> float:
    """The best price in ``url``'s answer to ``body``; 0 for a no-bid, a failure or a timeout."""
    assert proxy.session is not None
    try:
        async with proxy.session.post(
            url, data=body, headers=HEADERS, timeout=aiohttp.ClientTimeout(total=proxy.timeout_s)
        ) as resp:
            if resp.status != 200:
                return 0.0
            answer = orjson.loads(await resp.read())
    except (TimeoutError, aiohttp.ClientError, OSError, orjson.JSONDecodeError):
        proxy.upstream_errors += 1
        return 0.0
    best = 0.0
    for seatbid in answer.get("seatbid") or ():
        for bid in seatbid.get("bid") or ():
            price = bid.get("price")
            if isinstance(price, int | float) and price > best:
                best = float(price)
    return best


async def handle_fanout(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    proxy.requests += 1
    body = await request.read()
    req = orjson.loads(body)
    prices = await asyncio.gather(*(_call(proxy, url, body) for url in proxy.upstreams))
    best = max(prices)
    if best <= 0:
        return web.Response(status=204)
    answer = {"id": req.get("id"), "seatbid": [{"bid": [{"impid": "1", "price": best}]}]}
    return web.Response(body=orjson.dumps(answer), content_type=JSON)


async def handle_intake(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    proxy.requests += 1
    req = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"id": req.get("id")}), content_type=JSON)


async def handle_stats(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    stats = {"requests": proxy.requests, "upstream_errors": proxy.upstream_errors}
    return web.Response(body=orjson.dumps(stats), content_type=JSON)


async def handle_health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON)


def make_app(upstreams: Sequence[str], *, timeout_s: float = 0.1) -> web.Application:
    app = web.Application()
    app[PROXY] = Proxy(tuple(upstreams), timeout_s)
    app.router.add_get("/healthz", handle_health)
    app.router.add_get("/stats", handle_stats)
    if upstreams:
        app.cleanup_ctx.append(_session)
        app.router.add_post("/{tail:.*}", handle_fanout)
    else:
        app.router.add_post("/{tail:.*}", handle_intake)
    return app


async def serve(app: web.Application, *, host: str, port: int) -> None:
    """Serve ``app`` until SIGINT or SIGTERM."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024, reuse_address=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.baseline_proxy",
        description="A bare aiohttp fan-out (with --upstream) or a bare JSON intake (without): "
        "the baselines of bench.auction_bench.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, required=True, help="port to listen on")
    p.add_argument(
        "--upstream", action="append", default=[], metavar="URL", help="a bidder URL; repeatable"
    )
    p.add_argument(
        "--timeout-ms", type=float, default=100.0, help="per upstream call (default 100)"
    )
    args = p.parse_args(argv)
    app = make_app(args.upstream, timeout_s=args.timeout_ms / 1000)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(app, host=args.host, port=args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
