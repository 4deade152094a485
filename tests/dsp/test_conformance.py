"""Every bidder request of the shared conformance corpus gets 200 or 204 from the DSP server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dsp.bidders.constant import ConstantBidder
from dsp.server import BID_PATH, make_app
from exchange.bids import parse_bid_response
from exchange.errors import RequestError
from exchange.openrtb import parse_bid_request

CORPUS = Path(__file__).resolve().parents[3] / "shared/conformance/openrtb/bidder_requests.jsonl"
MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def load_corpus() -> list[tuple[str, Any]]:
    if not CORPUS.exists():
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    lines = CORPUS.read_bytes().splitlines()
    return [(rec["source"], rec["data"]) for rec in map(orjson.loads, lines) if lines]


async def test_bidder_requests_corpus(aiohttp_client: MakeClient) -> None:
    corpus = load_corpus()
    bidder = ConstantBidder(price=5.0)
    bidder.reset(0)
    client = await aiohttp_client(make_app(bidder=bidder, name="conformance"))
    statuses: dict[int, int] = {}
    for source, data in corpus:
        resp = await client.post(BID_PATH, data=orjson.dumps(data))
        body = await resp.read()
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        assert resp.status in (200, 204), (source, resp.status, body[:200])
        if resp.status != 200:
            continue
        answer = orjson.loads(body)
        try:
            request = parse_bid_request(data, strict=False)
        except RequestError:
            assert answer["nbr"] == 2, source
            continue
        bids, dropped = parse_bid_response(body, request, "conformance")
        assert dropped == [], (source, dropped)
        assert bids, source
    assert statuses.get(200, 0) > len(corpus) // 2  # most of the corpus is biddable banner
