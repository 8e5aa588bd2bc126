"""The bare-app floor: the same server stack (Starlette on uvicorn, uvloop, httptools) that
only decodes a decision request with the same typed decoder and answers a body of a given
size. What a decision costs beyond this is what the ad server itself costs.

    python -m bench.floor --port 0 --size 800
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver import runtime
from adserver.wire import kevel


def app(size: int) -> Starlette:
    body = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'

    async def decide(request: Request) -> Response:
        kevel.decoder.decode(await request.body())
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/api/v2", decide, methods=["POST"])])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--size", type=int, default=800, help="response body bytes")
    args = ap.parse_args()
    sock = runtime.bind("127.0.0.1", args.port)
    runtime.serve(app(args.size), sock, "floor app", "warning")


if __name__ == "__main__":
    main()
