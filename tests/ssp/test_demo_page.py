"""The /demo publisher page's routes over HTTP: the page, its static files, the catalog it lays
out (the browser test in tests/browser drives the page itself)."""

from __future__ import annotations

from tests.conftest import SITES, StartSsp


async def test_the_demo_page_and_its_files_are_served(start_ssp: StartSsp) -> None:
    client = await start_ssp()
    resp = await client.get("/demo")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    for ref in ("/static/demo.js", "/static/demo.css"):
        assert ref in html
        asset = await client.get(ref)
        assert asset.status == 200, ref
        assert len(await asset.read()) > 1000
    # nothing outside ssp/static/ is reachable through it
    assert (await client.get("/static/../server.py")).status in (403, 404)
    assert (await client.get("/static/nope.js")).status == 404


async def test_the_catalog_the_page_lays_out(start_ssp: StartSsp) -> None:
    client = await start_ssp()
    resp = await client.get("/demo/sites")
    assert resp.status == 200
    (news,) = (await resp.json())["sites"]
    site = SITES[0]
    assert (news["id"], news["name"], news["domain"], news["cat"]) == (
        site.id,
        site.name,
        site.domain,
        list(site.cat),
    )
    assert [(s["id"], s["w"], s["h"], s["pos"], s["device"]) for s in news["slots"]] == [
        (s.id, s.w, s.h, s.pos, s.device) for s in site.slots
    ]
