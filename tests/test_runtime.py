"""The uvicorn protocol the servers run on: each request is stamped with when the worker read
it, and the decision route's responses go out in one write."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest

APP = textwrap.dedent("""
    import json, time
    from adserver import runtime

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        stamp = scope.get(runtime.RECEIVED)
        out = json.dumps({"age": None if stamp is None else time.perf_counter() - stamp,
                          "got": len(body)}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    sock = runtime.bind("127.0.0.1", 0)
    runtime.serve(app, sock, "test app", "warning")
""")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", APP], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        yield line.rsplit(" on ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_requests_carry_when_the_worker_read_them(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        ages = [client.get(f"/{i}").json()["age"] for i in range(3)]  # keep-alive: 3 on one
    # a stamp per request (not one per connection), taken before the app ran
    assert all(a is not None and 0 <= a < 1.0 for a in ages), ages


def test_decision_route_responses_are_whole_on_one_connection(url: str) -> None:
    """Head and body held for one write: every response arrives whole, in order, on a
    keep-alive connection, for bodies of any size, and the other routes answer as before."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for size in (0, 10, 70_000, 3):
            r = client.post("/api/v2", content=b"x" * size)
            assert r.status_code == 200 and r.json()["got"] == size
        assert client.post("/other", content=b"abc").json()["got"] == 3
        assert client.head("/api/v2").status_code == 200


def test_expect_100_continue_is_not_held(url: str) -> None:
    """A client that waits for `100 Continue` before sending its body gets it at once."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /api/v2 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"abcd")
        data = b""
        while b'"got": 4' not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")
