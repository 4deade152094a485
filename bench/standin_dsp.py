"""A lean stand-in DSP for benchmarks of the SSP: the ``constant`` strategy's answer, or none.

On a 2-core machine a benchmark of the SSP runs its DSPs on the one core the SSP does not have.
``gavel dsp`` (aiohttp, the real bidder API) costs ~150 us of CPU a bid request there, and a hung
one ~290 us a call (the SSP connects anew for each): four of them and a hung one ran out of that
core at about half the rate the SSP could take, so benchmark 3 measured the DSPs' limit, not the
SSP's (bench/RESULTS.md, its sixth round). This server answers the same bid as ``gavel dsp
--strategy constant --param price=P`` (the same body; the headers differ) on an
``asyncio.Protocol`` with the httptools parser, for ~70 us a request and ~110 us a hung call.
With ``--hang`` it reads every bid request and never answers, as ``gavel dsp --hang-rate 1``
does until the SSP gives up on the call.

Routes: ``POST /openrtb2/bid`` (200 with a bid on each banner imp whose floor is at most the
price, 204 when there is none, 400 on a body that is not a JSON bid request, 413 over 1 MiB),
``GET /healthz``; anything else is 404. HTTP/1.1 keep-alive, one request at a time.

    python -m bench.standin_dsp --port 9001 --name d0 --price 1.25
    python -m bench.standin_dsp --port 9005 --name hung --hang
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import sys
from collections.abc import Sequence
from typing import Any, cast

import httptools
import orjson

from dsp.creative import DEFAULT_SIZE, banner_html
from gavel.serve import loop_factory

MAX_BODY = 1 << 20
SEAT = "constant"
ADVERTISER = "Constant Shoes"
CRID = "constant-banner-1"
ADOMAIN = ["constant-shoes.example"]
CAT = ["IAB18"]


@functools.lru_cache(maxsize=64)
def _adm(w: int, h: int) -> str:
    return banner_html(ADVERTISER, w, h)


def bid_response(request: Any, price: float) -> bytes | None:
    """The ``constant`` bidder's answer to ``request`` (a parsed bid request): a bid of ``price``
    on each banner imp outside a private auction whose floor is at most ``price``; None when it
    bids on none. Unlike :class:`dsp.bidders.constant.ConstantBidder` it reads floors as USD and
    keeps no blocking lists (the benchmarks' requests have neither). Raises ``ValueError`` on a
    body that is not a bid request (no string ``id``, no ``imp`` list)."""
    if not isinstance(request, dict):
        raise ValueError("the body is not a JSON object")
    rid, imps = request.get("id"), request.get("imp")
    if not isinstance(rid, str) or not isinstance(imps, list):
        raise ValueError("a bid request needs a string id and an imp list")
    bids = []
    for imp in imps:
        banner = imp.get("banner") if isinstance(imp, dict) else None
        if not isinstance(banner, dict) or (imp.get("pmp") or {}).get("private_auction"):
            continue
        floor = imp.get("bidfloor")
        if isinstance(floor, int | float) and floor > price:
            continue
        w, h = banner.get("w"), banner.get("h")
        if not (isinstance(w, int) and isinstance(h, int)) and banner.get("format"):
            w, h = banner["format"][0].get("w"), banner["format"][0].get("h")
        if not (isinstance(w, int) and isinstance(h, int) and w and h):
            w, h = DEFAULT_SIZE
        bids.append(
            {
                "id": f"{rid}-{imp.get('id')}",
                "impid": imp.get("id"),
                "price": price,
                "adm": _adm(w, h),
                "adid": CRID,
                "crid": CRID,
                "adomain": ADOMAIN,
                "cat": CAT,
                "w": w,
                "h": h,
            }
        )
    if not bids:
        return None
    return orjson.dumps({"id": rid, "cur": "USD", "seatbid": [{"seat": SEAT, "bid": bids}]})


def _reply(status: str, body: bytes = b"", kind: bytes = b"application/json") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n".encode()
    if body:
        head += b"Content-Type: " + kind + b"\r\n"
    return head + b"x-openrtb-version: 2.6\r\n\r\n" + body


NO_BID = _reply("204 No Content")
NOT_FOUND = _reply("404 Not Found", b'{"error": "not found"}')
TOO_LARGE = _reply("413 Payload Too Large", b'{"error": "the body is over 1 MiB"}')
HEALTHY = _reply("200 OK", b"ok", b"text/plain")


class StandIn(asyncio.Protocol):
    """One connection: requests answered in order, one at a time (no pipelining)."""

    def __init__(self, price: float, hang: bool) -> None:
        self.price, self.hang = price, hang
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(_reply("400 Bad Request", b'{"error": "malformed HTTP"}'), close=True)

    def on_message_begin(self) -> None:
        self.url, self.body, self.size = b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size <= MAX_BODY:
            self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if method == b"POST" and path == b"/openrtb2/bid":
            if self.hang:
                return  # read, never answered: the SSP closes the connection at its cutoff
            if self.size > MAX_BODY:
                self._send(TOO_LARGE, close=True)
                return
            try:
                body = bid_response(orjson.loads(b"".join(self.body)), self.price)
            except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
                error = orjson.dumps({"error": f"not a bid request: {exc}"})
                self._send(_reply("400 Bad Request", error))
                return
            self._send(NO_BID if body is None else _reply("200 OK", body))
        elif method == b"GET" and path == b"/healthz":
            self._send(HEALTHY)
        else:
            self._send(NOT_FOUND)

    def _send(self, data: bytes, *, close: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if close or not self.parser.should_keep_alive():
            self.transport.close()


async def serve(host: str, port: int, price: float, hang: bool) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StandIn(price, hang), host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.standin_dsp",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Stops on SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--name", default="standin", help="its name, for logs only")
    parser.add_argument("--price", type=float, default=1.0, help="the bid's price, CPM (1.0)")
    parser.add_argument(
        "--hang", action="store_true", help="read every bid request and never answer it"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.price < 1e6:
        print("standin_dsp: --price must be a CPM above 0", file=sys.stderr)
        return 2
    args.price = round(args.price * 1e6) / 1e6  # micro-units, as the constant bidder bids
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory()) as r:
        r.run(serve(args.host, args.port, args.price, args.hang))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
