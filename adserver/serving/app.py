"""The decision server's routes: Kevel's POST /api/v2, the listings auctions (Topsort v2
shape), Personalizer's rank/reward (serving/personalize.py), beacons, health, readiness,
metrics."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from adserver import apikeys, clock
from adserver.config import Config
from adserver.config import relevance as config_relevance
from adserver.runtime import RECEIVED, Lane
from adserver.serving import errors, metrics, pipeline
from adserver.serving.errors import JSON, error, error_body, field_of
from adserver.serving.stages.resolve import BadRequest
from adserver.serving.worker import Worker
from adserver.snapshot.loader import Snapshot
from adserver.validation import TOO_DEEP
from adserver.wire import kevel

log = logging.getLogger("adserver.worker")
EXPLAIN_ROLES = ("admin", "readonly", "advertiser")


def explainer(snap: Snapshot, config: Config, presented: str | None) -> apikeys.Caller | None:
    """Who may see an explain for the key in `X-Adzerk-Explain` (per the snapshot's copy of
    the key table; the bootstrap key is an unscoped admin key): the pipeline explains only
    placements of the key's network, and only the ads of its advertiser when it has one."""
    caller = apikeys.identify(presented, config.admin_key, snap.keys)
    return caller if caller is not None and caller.role in EXPLAIN_ROLES else None


JSON_HEADER = (b"content-type", JSON.encode())


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


class AsgiEndpoint:
    """A route endpoint Starlette calls as a plain ASGI app (a function would be wrapped as
    a Request -> Response handler)."""

    __slots__ = ("app",)

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Refused(Exception):
    """An error answer of the decision route, decided before the decision itself."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        self.status, self.body = status, error_body(status, code, message, field)


class Front:
    """The worker's ASGI app: `POST /api/v2`, the hot path, goes straight to its endpoint;
    everything else (and the lifespan) to the Starlette app, whose router also holds the
    decision route so that other methods get its 405 and a mounted app (root_path) its
    routing. `lane` is the same endpoint for the project's protocol to answer without
    ASGI (adserver/runtime.Lane); the endpoint serves the requests the lane does not take."""

    __slots__ = ("decide", "app", "lane")

    def __init__(self, decide: Any, app: Starlette, lane: Lane | None = None):
        self.decide, self.app, self.lane = decide, app, lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/api/v2" \
                and scope["method"] == "POST" and not scope.get("root_path"):
            await self.decide(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def build(config: Config, worker: Worker) -> Front:
    max_body = config.max_body_bytes
    decoder = kevel.decoder
    encoder = kevel.encoder
    tally = metrics.TALLY
    relevance = config_relevance(config)
    bases: dict[tuple[str, str], str] = {}  # (scheme, Host header) -> tracking URL base

    def base_url(scheme: str, host: str, server: tuple[str, int] | None) -> str:
        if config.public_url:
            return config.public_url
        key = (scheme, host)
        found = bases.get(key)
        if found is None:  # parse once per Host a client sends, not per request
            if len(bases) > 64:
                bases.clear()
            url = Request({"type": "http", "scheme": scheme, "server": server, "path": "/",
                           "query_string": b"", "root_path": "",
                           "headers": [(b"host", host.encode("latin-1"))] if host else []}).url
            found = bases[key] = f"{url.scheme}://{url.netloc}"
        return found

    def served(status: int, received: float, started: float, ended: float) -> None:
        # server time of a decision: from when the worker read the request (the wait for
        # the event loop included) to the response handed to the socket; and the wait
        if status == 200:
            tally.seconds.append(ended - received)
            tally.waits.append(started - received)

    async def decide(scope: Scope, receive: Receive, send: Send) -> None:
        # the plain ASGI endpoint, called by Front ahead of Starlette's middleware and
        # router (Starlette's Request and Response cost ~15 us a request here, its
        # middleware and routing ~30 us more), for the requests the protocol's lane does
        # not answer itself
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
        status, headers, out = answer(scope["headers"], body, scope["scheme"],
                                      scope.get("server"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})
        served(status, scope.get(RECEIVED, started), started, time.perf_counter())

    def answer(headers: list[tuple[bytes, bytes]], body: bytes | None, scheme: str,
               server: tuple[str, int] | None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The decision route's answer to a request's headers and body (None: larger than
        the limit): (status, response headers, body). Never raises: errors are answered as
        JSON (500s logged)."""
        try:
            return _decide(headers, body, scheme, server)
        except Refused as e:
            status, out = e.status, e.body
        except Exception:  # answered as JSON like every other error, and logged
            log.exception("decision failed")
            status, out = 500, error_body(500, "internal",
                                          "the decision failed; see the server log")
        return status, [(b"content-length", str(len(out)).encode()), JSON_HEADER], out

    def _decide(headers: list[tuple[bytes, bytes]], body: bytes | None, scheme: str,
                server: tuple[str, int] | None
                ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        snap = worker.snapshot
        if snap is None or worker.signer is None:
            raise Refused(503, "not_ready", "no snapshot loaded yet")
        presented = None
        ua = host = ""
        for name, value in headers:
            if name == b"user-agent":
                ua = value.decode("latin-1")
            elif name == b"x-adzerk-explain":
                presented = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
        if body is None:
            raise Refused(413, "too_large", f"body larger than {max_body} bytes")
        try:
            req = decoder.decode(body)
        except msgspec.ValidationError as e:
            field, message = field_of(e)
            tally.bad += 1
            raise Refused(400, "invalid", message, field) from None
        except msgspec.DecodeError as e:
            tally.bad += 1
            raise Refused(400, "malformed_json", f"body is not valid JSON: {e}") from None
        except RecursionError:  # properties nested thousands deep
            tally.bad += 1
            raise Refused(400, "malformed_json", TOO_DEEP) from None
        explain = explainer(snap, config, presented) if presented else None
        view = worker.view
        ctx = pipeline.Context(clock.now(), base_url(scheme, host, server), explain,
                               worker.signer, worker.rng, view.paused_for(snap), worker.live,
                               config.max_candidates, view.throttle_for(snap),
                               view if view.left else None, relevance)
        ctx.models, ctx.device = worker.models, worker.device(ua)
        try:
            response, record = pipeline.decide(snap, req, ctx)
        except BadRequest as e:
            tally.bad += 1
            raise Refused(400, "invalid", e.message, e.field) from None
        if worker.records is not None and not req.notrack:
            worker.records.append(record)
        for div in response.decisions.values():
            if div:
                tally.filled += 1
            else:
                tally.unfilled += 1
        tally.ok += 1
        out = encoder.encode(response)
        extra = [(b"content-length", str(len(out)).encode()), JSON_HEADER,
                 (b"x-adserver-snapshot", snap.version.encode())]
        if ctx.models.header:
            extra.append((b"x-adserver-models", ctx.models.header.encode()))
        if presented and explain is None:  # say why no explain came back
            extra.append((b"x-adserver-explain", b"refused: not a live API key"))
        return 200, extra, out

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(request: Request) -> Response:
        if worker.ready and worker.snapshot is not None:
            return Response(errors.encoder.encode({"status": "ready",
                                                   "snapshot": worker.snapshot.version}),
                            media_type=JSON)
        return error(503, "not_ready", "no snapshot loaded yet")

    async def metrics_route(request: Request) -> Response:
        """Prometheus exposition, for the allowed client networks or the metrics key."""
        if not config.may_read_metrics(request.client.host if request.client else "",
                                       request.headers.get("authorization", "")):
            return error(403, "forbidden", "metrics are for the allowed networks"
                         " (ADSERVER_METRICS_ALLOW) or the metrics key")
        data, content_type = metrics.exposition()
        return Response(data, media_type=content_type)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, "not_found", f"no route {request.url.path}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, "method_not_allowed", f"{request.method} not allowed here")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await worker.start()
        yield
        await worker.stop()

    from adserver import explorer
    from adserver.serving import beacons, listings, personalize
    from adserver.serving import openapi as decision_openapi

    beacon = beacons.routes(worker, config)
    listing = listings.routes(worker, config)
    personalizer = [Route(path, fn, methods=["GET", "PUT", "DELETE", "POST"]
                          if "{rest" in path or path.rsplit("/", 1)[1] in personalize.ADMIN
                          else ["POST"])
                    for path, fn in personalize.routes(worker, config).items()]
    lane = Lane(b"POST", b"/api/v2", max_body, answer, served)
    return Front(decide, Starlette(
        routes=[
            Route("/api/v2", AsgiEndpoint(decide), methods=["POST"]),
            Route("/v2/auctions", listing["/v2/auctions"], methods=["POST"]),
            Route("/v2/events", listing["/v2/events"], methods=["POST"]),
            Route("/i.gif", beacon["/i.gif"], methods=["GET", "POST"]),
            Route("/e.gif", beacon["/e.gif"], methods=["GET", "POST"]),
            Route("/r", beacon["/r"], methods=["GET", "POST"]),
            Route("/v1/conversions", beacon["/v1/conversions"], methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_route),
            *explorer.routes(decision_openapi.document, "adserver decision API"),
            *personalizer,
        ],
        exception_handlers={404: not_found, 405: not_allowed},
        lifespan=lifespan,
    ), lane)
