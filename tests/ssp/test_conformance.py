"""The SSP against the shared OpenRTB corpus (../shared/conformance/openrtb, from Prebid Server).

Requests: every BidRequest of ``bid_requests.jsonl`` is POSTed as it is; the SSP answers 200, 204 or
400, never 5xx, and every request that meets OpenRTB's requirements gets 200 or 204.

Responses: every body of ``bid_responses.jsonl`` is served, with its HTTP status, by a test DSP for
a request it can match; the SSP answers 200 or 204 and counts the DSP's outcome as bid, nobid,
invalid or error: a bad response never fails the auction.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from exchange.settings import ExchangeSettings
from tests.conftest import Client, StartDsp, StartSsp, stats

OPENRTB = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "openrtb"
CONCURRENCY = 16
AUCTION = "/openrtb2/auction"
MEDIA = ("banner", "video", "audio", "native")

pytestmark = pytest.mark.skipif(
    not (OPENRTB / "bid_requests.jsonl").exists(), reason=f"no conformance corpus at {OPENRTB}"
)


@pytest.fixture(params=["aiohttp", "lean"])
def http_transport(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both DSP clients (exchange.transport)."""
    return str(request.param)


def load(name: str) -> list[dict[str, Any]]:
    with (OPENRTB / name).open("rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def meets_openrtb(req: Any) -> bool:
    """What OpenRTB 2.6 requires of a BidRequest: a non-empty string ``id``; a non-empty ``imp``
    array of objects with unique non-empty string ids, each with a banner, video, audio or native
    object; ``tmax``, if present, an integer >= 0."""
    if not isinstance(req, dict):
        return False
    if not isinstance(req.get("id"), str) or not req["id"]:
        return False
    imps = req.get("imp")
    if not isinstance(imps, list) or not imps:
        return False
    ids = []
    for imp in imps:
        if not isinstance(imp, dict):
            return False
        iid = imp.get("id")
        if not isinstance(iid, str) or not iid:
            return False
        if not any(isinstance(imp.get(m), dict) for m in MEDIA):
            return False
        ids.append(iid)
    if len(set(ids)) != len(ids):
        return False
    if "tmax" in req:
        tmax = req["tmax"]
        if isinstance(tmax, bool) or not isinstance(tmax, int) or tmax < 0:
            return False
    return True


async def post_all(client: Client, bodies: list[bytes]) -> list[tuple[int, bytes, dict[str, str]]]:
    """POST every body to the SSP's auction, ``CONCURRENCY`` at a time, over the one session."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(body: bytes) -> tuple[int, bytes, dict[str, str]]:
        async with gate:
            resp = await client.post(
                AUCTION, data=body, headers={"Content-Type": "application/json"}
            )
            return resp.status, await resp.read(), dict(resp.headers)

    return await asyncio.gather(*(one(b) for b in bodies))


def check_bid_response(answer: dict[str, Any], req: dict[str, Any]) -> None:
    """A 200 from the SSP is a BidResponse for ``req``: its id, its imps, positive prices."""
    assert answer["id"] == req["id"]
    imp_ids = {imp["id"] for imp in req["imp"]}
    assert answer["seatbid"], answer
    for sb in answer["seatbid"]:
        assert isinstance(sb["seat"], str)
        for bid in sb["bid"]:
            assert bid["impid"] in imp_ids
            assert bid["price"] > 0
            assert bid["burl"].startswith("http://127.0.0.1:")


async def test_every_corpus_request_gets_a_proper_answer(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    lines = load("bid_requests.jsonl")
    a = await start_dsp("a", price=2.0)
    b = await start_dsp("b", price=1.0)
    client = await start_ssp(dsps=[a, b])
    bodies = [orjson.dumps(line["data"]) for line in lines]
    answers = await post_all(client, bodies)

    problems: list[str] = []
    statuses: Counter[int] = Counter()
    for line, (status, body, headers) in zip(lines, answers, strict=True):
        req = line["data"]
        where = line["source"]
        statuses[status] += 1
        if status not in (200, 204, 400):
            problems.append(f"{where}: HTTP {status}: {body[:200]!r}")
            continue
        if meets_openrtb(req) and status == 400:
            problems.append(f"{where}: valid request rejected: {body[:300]!r}")
            continue
        if b"Traceback" in body:
            problems.append(f"{where}: traceback in the answer")
            continue
        if status == 400:
            err = orjson.loads(body)
            if not (isinstance(err.get("field"), str) and err.get("error") and "nbr" in err):
                problems.append(f"{where}: 400 without error/field/nbr: {body[:200]!r}")
            continue
        if headers.get("x-openrtb-version") != "2.6":
            problems.append(f"{where}: no x-openrtb-version header")
        if status == 200:
            try:
                check_bid_response(orjson.loads(body), req)
            except (AssertionError, KeyError, TypeError) as exc:
                problems.append(f"{where}: bad BidResponse ({exc!r}): {body[:300]!r}")
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20])
    valid = sum(meets_openrtb(line["data"]) for line in lines)
    assert statuses[200] + statuses[204] >= valid
    assert statuses[200] > 0  # the corpus is mostly banners: the constant DSPs win many
    s = await stats(client)
    assert s["auctions"] == statuses[200] + statuses[204]
    assert s["rejected"] == statuses[400]
    assert s["bidders"]["a"]["wins"] == s["imps_filled"]


def responder() -> web.Application:
    """A DSP answering each bid request with the corpus line named by ``ext.gavel_line``."""
    lines = load("bid_responses.jsonl")

    async def bid(request: web.Request) -> web.Response:
        req = await request.json()
        line = lines[req["ext"]["gavel_line"]]
        status = line.get("status") or 200
        if status == 204:
            return web.Response(status=204)
        return web.Response(
            status=status, body=orjson.dumps(line["data"]), content_type="application/json"
        )

    app = web.Application()
    app.router.add_post("/openrtb2/bid", bid)
    return app


def request_for(i: int, response: Any) -> dict[str, Any]:
    """A valid BidRequest the corpus response ``response`` can answer: its id (if a string) and
    an imp per distinct string ``impid`` (one imp "1" if none); ``ext.gavel_line`` routes it."""
    rid = response.get("id") if isinstance(response, dict) else None
    if not isinstance(rid, str) or not rid:
        rid = f"corpus-{i}"
    impids: list[str] = []
    seatbids = response.get("seatbid") if isinstance(response, dict) else None
    for sb in seatbids if isinstance(seatbids, list) else ():
        bids = sb.get("bid") if isinstance(sb, dict) else None
        for bid in bids if isinstance(bids, list) else ():
            impid = bid.get("impid") if isinstance(bid, dict) else None
            if isinstance(impid, str) and impid and impid not in impids:
                impids.append(impid)
    imps = [{"id": iid, "banner": {"w": 300, "h": 250}} for iid in impids or ["1"]]
    return {"id": rid, "imp": imps, "cur": ["USD"], "ext": {"gavel_line": i}}


async def test_every_corpus_response_is_judged_without_failing_the_auction(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    lines = load("bid_responses.jsonl")
    corpus = await start_dsp("corpus", app=responder())
    # a generous deadline: this test is about judging answers, not about speed
    client = await start_ssp(
        dsps=[corpus], settings=ExchangeSettings(seed=1, tmax_ms=1000, late_grace_ms=2000)
    )
    requests = [request_for(i, line["data"]) for i, line in enumerate(lines)]
    before = (await stats(client))["bidders"]["corpus"]
    answers = await post_all(client, [orjson.dumps(r) for r in requests])

    problems: list[str] = []
    for line, req, (status, body, _) in zip(lines, requests, answers, strict=True):
        if status not in (200, 204):
            problems.append(f"{line['source']}: HTTP {status}: {body[:300]!r}")
        elif status == 200:
            try:
                check_bid_response(orjson.loads(body), req)
            except (AssertionError, KeyError, TypeError) as exc:
                problems.append(f"{line['source']}: bad BidResponse ({exc!r}): {body[:300]!r}")
    assert not problems, f"{len(problems)} problems, first ones:\n" + "\n".join(problems[:20])

    after = (await stats(client))["bidders"]["corpus"]
    n = len(lines)
    assert after["requests"] - before["requests"] == n
    assert after["timeouts"] == 0
    judged = {k: after[k] for k in ("bids", "nobids", "invalid", "errors")}
    assert sum(judged.values()) == n, judged
    # every answer the SSP filled came from a response that held a bid
    assert sum(status == 200 for status, _, _ in answers) <= judged["bids"]
    # the corpus holds every kind of answer
    assert all(judged.values()), judged
    assert corpus.hits.count("POST /openrtb2/bid") == n


async def test_one_bad_bid_does_not_spoil_the_good_ones(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    """Bids missing their impid or price, priced as strings or below zero are dropped one by one."""

    async def bid(request: web.Request) -> web.Response:
        req = await request.json()
        good = {"id": "ok", "impid": "1", "price": 1.5, "adm": "<div/>"}
        bad = [
            {"id": "no-impid", "price": 9.0, "adm": "<div/>"},
            {"id": "no-price", "impid": "1", "adm": "<div/>"},
            {"id": "string-price", "impid": "1", "price": "9.0", "adm": "<div/>"},
            {"id": "negative", "impid": "1", "price": -1, "adm": "<div/>"},
            {"id": "unknown-imp", "impid": "nope", "price": 9.0, "adm": "<div/>"},
            {"id": "no-markup", "impid": "1", "price": 9.0},
            "not an object",
        ]
        body = {"id": req["id"], "seatbid": [{"seat": "mixed", "bid": [*bad, good]}, "junk"]}
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/openrtb2/bid", bid)
    mixed = await start_dsp("mixed", app=app)
    client = await start_ssp(dsps=[mixed])
    resp = await client.post(
        AUCTION, json={"id": "r", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}
    )
    assert resp.status == 200
    answer = await resp.json()
    (bid_obj,) = answer["seatbid"][0]["bid"]
    assert (bid_obj["id"], bid_obj["price"]) == ("ok", 0.01)
    s = (await stats(client))["bidders"]["mixed"]
    assert (s["bids"], s["bids_dropped"]) == (1, 8)


async def test_corpus_requests_reach_the_dsps_untouched(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    """Unknown fields and ``ext`` objects pass through to the DSPs; only ``tmax`` is the SSP's."""
    lines = [line for line in load("bid_requests.jsonl") if meets_openrtb(line["data"])][:200]
    received: dict[str, dict[str, Any]] = {}

    async def bid(request: web.Request) -> web.Response:
        req = await request.json(loads=orjson.loads)
        received[req["id"]] = req
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/openrtb2/bid", bid)
    echo = await start_dsp("echo", app=app)
    client = await start_ssp(dsps=[echo])
    checked = 0
    async with aiohttp.ClientSession() as session:
        for line in lines:
            req = line["data"]
            received.clear()
            async with session.post(client.make_url(AUCTION), data=orjson.dumps(req)) as resp:
                assert resp.status == 204
            sent = received[req["id"]]
            assert 0 < sent["tmax"] <= min(req.get("tmax") or 100, 100)
            assert {k: v for k, v in sent.items() if k != "tmax"} == {
                k: v for k, v in req.items() if k != "tmax"
            }, line["source"]
            checked += 1
    assert checked == len(lines)
