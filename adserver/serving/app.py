"""The decision server's app: Kevel's POST /api/v2 (serving/decide.py, through the front door
and lane of serving/http.py), the listings auctions (Topsort v2 shape, serving/listings.py),
Personalizer's rank/reward (serving/personalize.py), beacons, health, readiness, metrics and
the API explorer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.config import Config
from adserver.serving import errors, metrics
from adserver.serving.decide import DecisionRoute
from adserver.serving.errors import JSON, error
from adserver.serving.http import AsgiEndpoint, Front, asgi_endpoint
from adserver.serving.worker import Worker
from adserver.web.runtime import Lane


def build(config: Config, worker: Worker) -> Front:
    """The worker's ASGI app (and the lane its protocol answers decisions on)."""
    route = DecisionRoute(config, worker)
    decide = asgi_endpoint(route.answer, route.served, route.max_body)

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type=JSON)

    async def readyz(request: Request) -> Response:
        if worker.ready and worker.snapshot is not None:
            return Response(
                errors.encoder.encode({"status": "ready", "snapshot": worker.snapshot.version}),
                media_type=JSON,
            )
        return error(503, "not_ready", "no snapshot loaded yet")

    async def metrics_route(request: Request) -> Response:
        """Prometheus exposition, for the allowed client networks or the metrics key."""
        if not config.may_read_metrics(
            request.client.host if request.client else "", request.headers.get("authorization", "")
        ):
            return error(
                403,
                "forbidden",
                "metrics are for the allowed networks (ADSERVER_METRICS_ALLOW) or the metrics key",
            )
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

    from adserver.serving import beacons, listings, personalize
    from adserver.serving import openapi as decision_openapi
    from adserver.web import explorer

    beacon = beacons.routes(worker, config)
    listing = listings.routes(worker, config)
    personalizer = [
        Route(
            path,
            fn,
            methods=["GET", "PUT", "DELETE", "POST"]
            if "{rest" in path or path.rsplit("/", 1)[1] in personalize.ADMIN
            else ["POST"],
        )
        for path, fn in personalize.routes(worker, config).items()
    ]
    lane = Lane(b"POST", b"/api/v2", route.max_body, route.answer, route.served)
    return Front(
        decide,
        Starlette(
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
        ),
        lane,
    )
