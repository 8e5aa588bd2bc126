"""Bad decision requests get a 4xx JSON error naming the field; never a 500."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.procs import ADMIN_KEY
from tests.serving.conftest import Stack

P = {"networkId": 1, "siteId": 1, "adTypes": [2]}


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "placements"),
        ({"placements": []}, "placements"),
        ({"placements": [{**P, "count": 0}]}, "placements[0].count"),
        ({"placements": [{**P, "count": 21}]}, "placements[0].count"),
        ({"placements": [{**P, "siteId": "one"}]}, "placements[0].siteId"),
        ({"placements": [{**P, "adTypes": []}]}, "placements[0].adTypes"),
        ({"placements": [{"networkId": 1, "siteId": 1}]}, "placements[0].adTypes"),
        ({"placements": [{"networkId": 1, "adTypes": [2]}]}, "placements[0].siteId"),
        ({"placements": [P, {**P, "divName": "div0"}]}, "placements[1].divName"),
        ({"placements": [{**P, "floorPrice": -1}]}, "placements[0].floorPrice"),
        ({"placements": {"a": 1}}, "placements"),
        ({"placements": [P], "user": {"key": 5}}, "user.key"),
        ({"placements": [P], "blockedCreatives": ["x"]}, "blockedCreatives[0]"),
        ([1, 2], "$"),
    ],
)
def test_bad_requests_name_the_field(stack: Stack, body: object, field: str) -> None:
    r = stack.client.post("/api/v2", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["fields"][0]["field"] == field, err


def test_malformed_json(stack: Stack) -> None:
    r = stack.client.post(
        "/api/v2", content=b'{"placements": [', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


def test_oversized_body_is_413(stack: Stack) -> None:
    big = {"placements": [P], "keywords": ["x" * 1000] * 300}
    r = stack.client.post("/api/v2", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_a_declared_oversized_body_is_refused_before_it_is_sent(stack: Stack) -> None:
    """A Content-Length over the limit is answered 413 at once: the server does not wait
    for (or read) a body it will refuse."""
    host, port = stack.decisions.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /api/v2 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        data = b""
        while b"too_large" not in data:
            chunk = s.recv(65536)  # times out (fails) if the server waits for the body
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 413")


def test_a_chunked_body_is_read_whole_and_held_to_the_limit(stack: Stack) -> None:
    """Without a Content-Length the body arrives in pieces: a small one is decided, one past
    the limit is refused as it grows."""
    raw = json.dumps({"placements": [{**P, "zoneIds": [1]}]}).encode()

    def pieces(data: bytes, size: int):  # httpx sends a generator chunked
        for i in range(0, len(data), size):
            yield data[i : i + size]

    r = stack.client.post(
        "/api/v2", content=pieces(raw, 7), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 200 and r.json()["decisions"]["div0"]["adId"] == 1
    big = json.dumps({"placements": [P], "keywords": ["x" * 1000] * 300}).encode()
    r = stack.client.post(
        "/api/v2", content=pieces(big, 4096), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_unknown_fields_are_ignored_like_kevel(stack: Stack) -> None:
    r = stack.decide({"placements": [{**P, "zoneIds": [1], "somethingNew": 1}], "extra": True})
    assert r.status_code == 200 and r.json()["decisions"]["div0"]["adId"] == 1


def test_wrong_method_and_route(stack: Stack) -> None:
    assert stack.client.get("/api/v2").status_code == 405
    r = stack.client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_an_unexpected_failure_is_a_json_500_and_the_worker_serves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision route is called ahead of Starlette's error middleware: a bug in the
    pipeline (injected here: nothing in the real one is known to raise) must still answer a
    JSON 500, be logged, and leave the worker serving."""
    import asyncio

    from adserver.config import Config
    from adserver.control import compiler
    from adserver.control.seed import Scale, seed
    from adserver.control.store import Store
    from adserver.formats.signing import ensure_keys
    from adserver.serving import app as app_mod
    from adserver.serving import pipeline
    from adserver.serving.worker import Worker
    from adserver.tools.simulate import Asgi

    data = str(tmp_path)
    store = Store(data)
    seed(store, Scale(ads=60, products=100, users=10), progress=False)
    ensure_keys(data)
    compiler.compile_snapshot(store, data)
    config = Config(data_dir=data, admin_key="k" * 32, public_url="http://t")
    front = app_mod.build(config, Worker(config, "w0"))
    body = json.dumps({"placements": [{"networkId": 1, "siteId": 1, "adTypes": [2, 3]}]})
    real = pipeline.decide

    def broken(*args: object, **kw: object) -> object:
        raise RuntimeError("injected")

    async def run() -> list[tuple[int, bytes]]:
        client = Asgi(front)
        async with front.app.router.lifespan_context(front.app):
            monkeypatch.setattr(pipeline, "decide", broken)
            first = await client.call("POST", "/api/v2", body.encode())
            monkeypatch.setattr(pipeline, "decide", real)
            second = await client.call("POST", "/api/v2", body.encode())
            third = await client.call("GET", "/api/v2")
        return [first, second, third]

    (s1, b1), (s2, b2), (s3, _) = asyncio.run(run())
    assert s1 == 500 and json.loads(b1)["error"]["code"] == "internal"
    assert s2 == 200 and "div0" in json.loads(b2)["decisions"]
    assert s3 == 405  # other methods still reach the router


@pytest.mark.parametrize(
    "path, head",
    [
        ("/api/v2", b'{"placements":[{"siteId":1,"adTypes":[2],"properties":{"a":'),
        (
            "/personalizer/v1.0/rank",
            b'{"actions":[{"id":"a","features":[{"x":1}]}],"contextFeatures":[{"a":',
        ),
        ("/v1/conversions", b'{"order_id":"o","user_key":"u","network_id":1,"items":'),
    ],
)
def test_json_nested_5000_deep_is_a_400(stack: Stack, path: str, head: bytes) -> None:
    """Attack: a body nested 5,000 deep (a RecursionError, answered 500 before)."""
    opened = []  # the head's open brackets, to close in order after the deep value
    for ch in head.decode():
        if ch in "[{":
            opened.append("]" if ch == "[" else "}")
        elif ch in "]}":
            opened.pop()
    body = head + b'{"b":' * 5000 + b"1" + b"}" * 5000 + "".join(reversed(opened)).encode()
    r = stack.client.post(
        path,
        content=body,
        headers={
            "content-type": "application/json",
            "X-Api-Key": ADMIN_KEY,
            "Ocp-Apim-Subscription-Key": ADMIN_KEY,
        },
    )
    assert r.status_code == 400, r.text
