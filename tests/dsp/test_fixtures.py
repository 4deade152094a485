"""Every bidder and strategy fixture, played in-process and behind the DSP server: same answers.

STYLE.md item 1: a fixture per behaviour in ``dsp/strategies/fixtures/<id>/`` and
``dsp/bidders/fixtures/<id>/`` (exemplary and supplemental), one harness for all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dsp.fixtures import Fixture, check, dig, find_fixtures, project, run_inprocess
from dsp.registry import BIDDERS, STRATEGIES
from dsp.server import BID_PATH, make_app

FIXTURES = list(find_fixtures())
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]

_NOTICE_PATHS = {"win": "/win", "loss": "/loss", "billing": "/bill", "click": "/click"}


async def run_http(client: Client, fixture: Fixture) -> list[Any]:
    """Play the fixture against the DSP server: requests, notices and pixels as HTTP calls."""
    answers: list[Any] = []
    for step in fixture.steps:
        if "request" in step:
            resp = await client.post(BID_PATH, data=orjson.dumps(step["request"]))
            assert resp.status in (200, 204), await resp.text()
            answers.append(project(await resp.json()) if resp.status == 200 else None)
        elif "notice" in step:
            n = step["notice"]
            query = {"auction": n["auction"], "imp": n["imp"], "bid": n["bid"], "cur": "USD"}
            for key in ("price", "loss", "min_to_win"):
                if n.get(key) is not None:
                    query[key] = str(n[key])
            resp = await client.get(f"{_NOTICE_PATHS[n['kind']]}?{urlencode(query)}")
            assert resp.status == 204, await resp.text()
            answers.append(None)
        elif "pixel" in step:
            query = {k: str(v) for k, v in step["pixel"].items()}
            resp = await client.get(f"/pixel?{urlencode(query)}")
            assert resp.status == 204, await resp.text()
            answers.append(None)
        elif "stats" in step:
            resp = await client.get("/stats")
            assert resp.status == 200
            stats = await resp.json()
            answers.append({k: dig(stats, k) for k in step["stats"]})
    return answers


def test_every_builtin_has_exemplary_fixtures() -> None:
    covered = {(f.group, f.target) for f in FIXTURES if f.path.parent.name == "exemplary"}
    for sid in STRATEGIES:
        assert ("strategies", sid) in covered, f"strategy {sid!r} has no exemplary fixture"
    for bid in BIDDERS:
        assert ("bidders", bid) in covered, f"bidder {bid!r} has no exemplary fixture"
    for f in FIXTURES:
        assert f.data.get("description"), f"{f.name} needs a description"


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f"{f.group}/{f.name}" for f in FIXTURES])
async def test_fixture_in_process_and_over_http(
    fixture: Fixture, aiohttp_client: MakeClient
) -> None:
    inprocess = run_inprocess(fixture)
    check(fixture, inprocess, how="in-process")
    client = await aiohttp_client(make_app(bidder=fixture.bidder(), name="fx"))
    over_http = await run_http(client, fixture)
    check(fixture, over_http, how="behind the DSP server")
    assert over_http == inprocess
