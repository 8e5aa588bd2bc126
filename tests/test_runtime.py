"""The uvicorn protocol the servers run on: each request is stamped with when the worker read
it, and the decision route's responses go out in one write."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import httpx
import pytest

APP = textwrap.dedent("""
    import asyncio, json, time
    from adserver.web import runtime

    SERVED = []

    class App:
        async def __call__(self, scope, receive, send):
            if scope["type"] != "http":
                return
            if scope["path"] == "/slow":
                await asyncio.sleep(0.05)
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            stamp = scope.get(runtime.RECEIVED)
            out = json.dumps({"via": "asgi", "path": scope["path"], "got": len(body),
                              "age": None if stamp is None else time.perf_counter() - stamp,
                              "served": SERVED[-1:]}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(out)).encode())]})
            await send({"type": "http.response.body", "body": out})

    def answer(headers, body, scheme, server):
        if body is None:
            return 413, [(b"content-length", b"2")], b"{}"
        if body == b"boom":
            raise RuntimeError("a bug in the answer")
        out = json.dumps({"via": "lane", "got": len(body), "scheme": scheme,
                          "host": dict(headers).get(b"host", b"").decode()}).encode()
        return 200, [(b"content-type", b"application/json"),
                     (b"content-length", str(len(out)).encode())], out

    def served(status, received, started, ended):
        SERVED.append([status, received <= started <= ended, ended - received])

    app = App()
    app.lane = runtime.Lane(b"POST", b"/api/v2", 100_000, answer, served)
    sock = runtime.bind("127.0.0.1", 0)
    runtime.serve(app, sock, "test app", "warning", keep_alive_s=1)
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
        # the lane's answers are timed from the same stamp: read <= started <= written
        client.post("/api/v2", content=b"abc")
        status, ordered, seconds = client.get("/x").json()["served"][0]
        assert status == 200 and ordered and 0 <= seconds < 1.0


def test_decision_route_responses_are_whole_on_one_connection(url: str) -> None:
    """Head and body held for one write: every response arrives whole, in order, on a
    keep-alive connection, for bodies of any size, and the other routes answer as before."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for size in (0, 10, 70_000, 3):
            r = client.post("/api/v2", content=b"x" * size)
            assert r.status_code == 200 and r.json()["got"] == size
            assert r.json()["via"] == "lane" and r.headers["date"]  # uvicorn's default header
        assert client.post("/other", content=b"abc").json()["got"] == 3
        assert client.head("/api/v2").status_code == 200


def test_expect_100_continue_is_not_held(url: str) -> None:
    """A client that waits for `100 Continue` before sending its body gets it at once."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /api/v2 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"abcd")
        data = b""
        while b'"got": 4' not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")


def read_response(
    s: socket.socket, data: bytes = b""
) -> tuple[tuple[bytes, dict[bytes, bytes], bytes], bytes]:
    """One whole response (status line, head fields, body) from a socket, and the bytes
    read past it."""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in lines)
    n = int(fields[b"content-length"])
    while len(data) < n:
        chunk = s.recv(65536)
        assert chunk
        data += chunk
    return (status, fields, data[:n]), data[n:]


def exchange(url: str, raw: bytes, responses: int) -> list[tuple[bytes, dict[bytes, bytes], bytes]]:
    """Send raw bytes on one connection and read `responses` whole responses (head fields,
    body); also returns whether the server closed the connection after them."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    out = []
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(raw)
        data = b""
        while len(out) < responses:
            response, data = read_response(s, data)
            out.append(response)
        s.settimeout(0.3)  # (the keep-alive timeout is 1 s)
        try:
            closed = s.recv(1) == b""
        except TimeoutError:
            closed = False
    out.append((b"closed" if closed else b"open", {}, b""))
    return out


def post(
    path: str = "/api/v2", body: bytes = b"abc", version: bytes = b"1.1", extra: bytes = b""
) -> bytes:
    return (
        b"POST " + path.encode() + b" HTTP/" + version + b"\r\nHost: shop.test\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


def test_the_lane_answers_only_what_uvicorn_would_answer_the_same(url: str) -> None:
    """The decision lane takes POST /api/v2 and nothing else: a query string, another
    method or a client waiting for `100 Continue` go the ASGI way."""
    got = exchange(
        url,
        post() + post("/api/v2?x=1") + post("/other") + b"GET /api/v2 HTTP/1.1\r\nHost: t\r\n\r\n",
        4,
    )
    assert [json.loads(b)["via"] for _, _, b in got[:4]] == ["lane", "asgi", "asgi", "asgi"]
    assert got[4][0] == b"open"  # keep-alive


def test_pipelined_requests_are_answered_in_order(url: str) -> None:
    """A lane request behind one uvicorn still holds waits its turn (and goes the ASGI
    way); one ahead of it is answered first."""
    got = exchange(
        url,
        post(body=b"1")
        + b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
        + post(body=b"22")
        + post(body=b"333"),
        4,
    )
    bodies = [json.loads(b) for _, _, b in got[:4]]
    assert [(b["via"], b.get("path"), b["got"]) for b in bodies] == [
        ("lane", None, 1),
        ("asgi", "/slow", 0),
        ("asgi", "/api/v2", 2),
        ("asgi", "/api/v2", 3),
    ]


def test_the_lane_closes_when_the_client_asks_and_for_http_1_0(url: str) -> None:
    for raw in (post(extra=b"Connection: close\r\n"), post(version=b"1.0")):
        (status, fields, body), (state, _, _) = exchange(url, raw, 1)
        assert status == b"HTTP/1.1 200 OK" and json.loads(body)["via"] == "lane"
        assert fields[b"connection"] == b"close" and state == b"closed"


def test_the_lane_sees_the_size_limit_proxy_scheme_and_errors(url: str) -> None:
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in [b"x" * 50_001] * 2) + b"0\r\n\r\n"
    got = exchange(
        url,
        b"POST /api/v2 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked
        + post(extra=b"X-Forwarded-Proto: https\r\n")
        + post(),
        3,
    )
    assert got[0][0] == b"HTTP/1.1 413 Request Entity Too Large"  # the answer saw None
    # (a declared Content-Length over the limit goes uvicorn's way: answered before the body)
    assert json.loads(exchange(url, post(body=b"x" * 100_001), 1)[0][2])["via"] == "asgi"
    # from 127.0.0.1 (uvicorn's trusted proxy by default) X-Forwarded-Proto is the scheme
    assert [json.loads(b)["scheme"] for _, _, b in got[1:3]] == ["https", "http"]
    assert json.loads(got[1][2])["host"] == "shop.test"
    (status, fields, _), (state, _, _) = exchange(url, post(body=b"boom"), 1)
    assert status.startswith(b"HTTP/1.1 500") and state == b"closed"


def test_idle_keep_alive_connections_close_after_the_timeout(url: str) -> None:
    """The lane's keep-alive timer closes a connection idle for the timeout (1 s here) after
    its last answer, not one that keeps asking; as uvicorn's path does for its routes."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    for first in (post(), b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            for raw in (first, post(), post()):  # 1.2 s in all, never 1 s idle
                s.sendall(raw)
                (status, _, _), rest = read_response(s)
                assert status == b"HTTP/1.1 200 OK" and rest == b""
                time.sleep(0.6)
            s.settimeout(3)
            began = time.monotonic()
            assert s.recv(1) == b""  # closed by the server
            assert time.monotonic() - began < 1.0  # 0.6 s of the second already waited


def test_shutdown_answers_a_lane_request_being_read_then_closes() -> None:
    """SIGTERM while a lane request's body is half read: the request is answered (with
    `connection: close`) and the server then exits."""
    proc = subprocess.Popen([sys.executable, "-c", APP], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().rsplit(" on ", 1)[1].strip()  # type: ignore[union-attr]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"POST /api/v2 HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
            time.sleep(0.3)
            proc.terminate()
            time.sleep(0.3)
            s.sendall(b"67890")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"connection: close" in head.lower()
        assert json.loads(body)["got"] == 10
        proc.wait(timeout=10)  # (uvicorn re-raises the signal once it has shut down)
    finally:
        proc.kill()
        proc.communicate(timeout=10)
