"""The benchmarks' lean stand-in DSP against the real one, both as processes on 127.0.0.1: the same
answers to the same requests, a hung one that never answers, and clear errors on bad input."""

from __future__ import annotations

import copy
import http.client
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from bench.procs import HOST, Processes, Server
from bench.request import sample_request
from bench.standin_dsp import bid_response


@pytest.fixture(scope="module")
def dsps() -> Iterator[tuple[Server, Server, Server]]:
    procs = Processes()
    try:
        real = procs.start(
            "real", "gavel", "dsp", "--host", HOST, "--name", "d1", "--seed", "1",
            "--strategy", "constant", "--param", "price=1.25",
        )  # fmt: skip
        standin = procs.start("standin", "bench.standin_dsp", "--name", "d1", "--price", "1.25")
        hung = procs.start("hung", "bench.standin_dsp", "--name", "hung", "--hang")
        yield real, standin, hung
    finally:
        procs.stop_all()


def post(server: Server, body: bytes, path: str = "/openrtb2/bid") -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, orjson.loads(data) if data else None
    finally:
        conn.close()


def requests() -> Iterator[dict[str, Any]]:
    base = sample_request(tmax_ms=100)
    yield base
    floor_above = copy.deepcopy(base)
    floor_above["imp"][0]["bidfloor"] = 2.0
    yield floor_above
    several = copy.deepcopy(base)
    second = copy.deepcopy(base["imp"][0])
    second |= {"id": "2", "bidfloor": 0.1, "banner": {"format": [{"w": 300, "h": 600}]}}
    video = {"id": "3", "video": {"mimes": ["video/mp4"], "w": 640, "h": 360}}
    no_size = {"id": "4", "banner": {}}
    several["imp"] += [second, video, no_size]
    yield several
    private = copy.deepcopy(base)
    private["imp"][0]["pmp"] = {"private_auction": 1, "deals": [{"id": "deal-1"}]}
    yield private


@pytest.mark.parametrize("n", range(4))
def test_the_stand_in_answers_what_the_constant_dsp_answers(
    dsps: tuple[Server, Server, Server], n: int
) -> None:
    request = list(requests())[n]
    real, standin, _ = dsps
    body = orjson.dumps(request)
    assert post(standin, body) == post(real, body)


def test_a_bid_only_where_the_floor_allows_and_only_on_a_bid_request() -> None:
    request = sample_request(tmax_ms=100)  # floor 0.5
    answer = bid_response(request, 0.75)
    assert answer is not None and orjson.loads(answer)["seatbid"][0]["bid"][0]["price"] == 0.75
    assert bid_response(request, 0.25) is None
    for bad in ([], {"id": 1, "imp": []}, {"id": "x"}):
        with pytest.raises(ValueError):
            bid_response(bad, 1.0)


def test_two_requests_on_one_connection(dsps: tuple[Server, Server, Server]) -> None:
    _, standin, _ = dsps
    conn = http.client.HTTPConnection(HOST, standin.port, timeout=10)
    try:
        for rid in ("a", "b"):
            request = sample_request(tmax_ms=100) | {"id": rid}
            conn.request("POST", "/openrtb2/bid", orjson.dumps(request))
            resp = conn.getresponse()
            assert resp.status == 200 and orjson.loads(resp.read())["id"] == rid
    finally:
        conn.close()


def test_bad_input_gets_a_clear_error(dsps: tuple[Server, Server, Server]) -> None:
    _, standin, _ = dsps
    status, body = post(standin, b"{not json")
    assert status == 400 and body["error"].startswith("not a bid request")
    status, body = post(standin, b'{"imp": []}')
    assert status == 400 and "string id" in body["error"]
    status, body = post(standin, b"[1, 2]")
    assert status == 400 and "JSON object" in body["error"]
    status, body = post(standin, b"x" * ((1 << 20) + 10))
    assert status == 413 and "1 MiB" in body["error"]
    assert post(standin, b"{}", path="/nope")[0] == 404
    with socket.create_connection((HOST, standin.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 400 Bad Request")
    assert post(standin, orjson.dumps(sample_request(tmax_ms=100)))[0] == 200  # still serving


def test_the_hung_stand_in_reads_and_never_answers(dsps: tuple[Server, Server, Server]) -> None:
    _, _, hung = dsps
    request = orjson.dumps(sample_request(tmax_ms=100))
    for _ in range(3):  # each call on a new connection, given up on by the client, as the SSP does
        with socket.create_connection((HOST, hung.port), timeout=10) as sock:
            head = f"POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Length: {len(request)}"
            sock.sendall(head.encode() + b"\r\n\r\n" + request)
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(1024)
    conn = http.client.HTTPConnection(HOST, hung.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
