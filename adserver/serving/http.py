"""The decision port's HTTP surface for its hot route: the worker's ASGI front door, which
sends `POST /api/v2` straight to its endpoint ahead of Starlette's middleware and router,
and the ASGI adapter of an endpoint the project's protocol can also answer without ASGI
(its lane: adserver/web/runtime.Lane, the same `answer` function).

A decision, file by file: the protocol reads the request (adserver/web/runtime.py: the lane
answers it on the event loop, or uvicorn's ASGI cycle hands it to `Front` here), the
decision route (serving/decide.py) decodes, checks and builds the request's facts, the
pipeline (serving/pipeline.py) runs the stages (serving/stages/), and the route encodes the
response and hands the record to the worker's event log (serving/eventlog.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from adserver.serving.errors import JSON
from adserver.web.runtime import RECEIVED, Lane

JSON_HEADER = (b"content-type", JSON.encode())
Answer = Callable[
    [list[tuple[bytes, bytes]], bytes | None, str, Any],
    tuple[int, list[tuple[bytes, bytes]], bytes],
]


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """A request's body from its ASGI messages (a small POST comes in one), or None once it
    grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks + [chunk]) if chunks else chunk
        chunks.append(chunk)


def asgi_endpoint(
    answer: Answer, served: Callable[[int, float, float, float], None], max_body: int
) -> Callable[[Scope, Receive, Send], Any]:
    """The plain ASGI endpoint of a lane's `answer`, for the requests the protocol's lane
    does not take (Starlette's Request and Response cost ~15 us a request here, its
    middleware and routing ~30 us more: `Front` calls this ahead of them)."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
        body = None
        if not (declared and declared.isdigit() and int(declared) > max_body):
            try:
                body = await read_body(receive, max_body)
            except ClientDisconnect:
                return
        status, headers, out = answer(scope["headers"], body, scope["scheme"], scope.get("server"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})
        served(status, scope.get(RECEIVED, started), started, time.perf_counter())

    return endpoint


class AsgiEndpoint:
    """A route endpoint Starlette calls as a plain ASGI app (a function would be wrapped as
    a Request -> Response handler)."""

    __slots__ = ("app",)

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Front:
    """The worker's ASGI app: `POST /api/v2`, the hot path, goes straight to its endpoint;
    everything else (and the lifespan) to the Starlette app, whose router also holds the
    decision route so that other methods get its 405 and a mounted app (root_path) its
    routing. `lane` is the same endpoint for the project's protocol to answer without
    ASGI (adserver/web/runtime.Lane); the endpoint serves the requests the lane does not take."""

    __slots__ = ("decide", "app", "lane")

    def __init__(self, decide: Any, app: Starlette, lane: Lane | None = None):
        self.decide, self.app, self.lane = decide, app, lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/api/v2"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.decide(scope, receive, send)
        else:
            await self.app(scope, receive, send)
