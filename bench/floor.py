"""The bare-app floor: the same server stack the decision route runs on (uvicorn with the
project's httptools protocol and its lane for POST /api/v2, uvloop, a plain ASGI endpoint
ahead of Starlette's router for what the lane does not take, as adserver/serving/app.Front
does) that only decodes a decision request with the same typed decoder and answers a body
of a given size with the same headers. What a decision costs beyond this is what the ad
server itself costs.

    python -m bench.floor --port 0 --size 800
"""

from __future__ import annotations

import argparse
from typing import Any

from starlette.applications import Starlette

from adserver.serving.http import JSON_HEADER, Front, read_body
from adserver.web import runtime
from adserver.wire import kevel


def app(size: int) -> Front:
    body = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'
    headers = [
        (b"content-length", str(len(body)).encode()),
        JSON_HEADER,
        (b"x-adserver-snapshot", b"00000001"),
    ]

    async def decide(scope: Any, receive: Any, send: Any) -> None:
        raw = await read_body(receive, 1 << 20)
        kevel.decoder.decode(raw or b"")
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def answer(
        request_headers: Any, raw: bytes | None, scheme: str, server: Any
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        kevel.decoder.decode(raw or b"")
        return 200, headers, body

    return Front(
        decide,
        Starlette(routes=[]),
        runtime.Lane(b"POST", b"/api/v2", 1 << 20, answer, lambda *times: None),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--size", type=int, default=800, help="response body bytes")
    args = ap.parse_args()
    sock = runtime.bind("127.0.0.1", args.port)
    runtime.serve(app(args.size), sock, "floor app", "warning")


if __name__ == "__main__":
    main()
