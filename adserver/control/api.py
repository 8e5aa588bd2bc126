"""The management API's app: authentication, bodies and errors shared by every route, and the
routes of each resource assembled: entities (control/entities_api.py), keys and audit
(keys_api.py), reports and pacing (delivery_api.py), the catalog (products_api.py), the
quarantine, models and the Personalizer, the explorer and health. Errors are always JSON:
`{"error": {"status", "code", "message", "fields": [{"field", "message"}]}}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import Invalid, ascii_int, json_body
from adserver.control import (
    delivery_api,
    entities_api,
    keys_api,
    openapi,
    products,
    products_api,
    quarantine,
    users_api,
)
from adserver.control.auth import Authenticator, Principal
from adserver.control.console import app as console_app
from adserver.control.console.pages import PRINCIPAL
from adserver.control.repo import Forbidden, NotFound, Repository
from adserver.control.responses import ApiError, error_response, json_response
from adserver.control.store import Store
from adserver.web import explorer
from adserver.web.ratelimit import LIMITER

KEY_HEADERS = ("x-api-key", "x-adzerk-apikey")


class ManagementApi:
    """Holds the store, the repository and the authenticator; builds the Starlette app."""

    settings: Any = None  # the process's Config: who may read /metrics (None: anyone)

    def __init__(
        self,
        store: Store,
        bootstrap_key: str | None,
        max_body_bytes: int,
        on_change: Callable[[], None] = lambda: None,
        pacer: Any = None,
        catalog_builder: Any = None,
        registry: Any = None,
        learner_settings: Any = None,
        learner: Any = None,
    ):
        self.store = store
        self.builder = catalog_builder  # adserver/control/catalog.CatalogBuilder, when it runs
        self.pacer = pacer  # adserver/control/pacing.Pacer, when the controller runs here
        self.registry = registry  # adserver/control/registry.Registry (model routes)
        self.learner_settings = learner_settings  # control/personalizer.Settings
        self.learner = learner  # control/personalizer.Learner
        self.on_change = on_change
        self.repo = Repository(store)
        self.catalog = products.Catalog(
            store, lambda network_id: products_api.model_dim(store.path)
        )
        self.auth = Authenticator(store, bootstrap_key)
        self.max_body = max_body_bytes

    # -- plumbing ------------------------------------------------------------------------

    def handler(
        self, fn: Callable[[Request, Principal], Awaitable[Response]], snapshot: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, run, and map every expected failure to a JSON error. With
        `snapshot`, a successful change asks for a new snapshot."""

        async def endpoint(request: Request) -> Response:
            try:
                # a console page's call (in-process: no client can set an ASGI scope key)
                who = request.scope.get(PRINCIPAL)
                presented = next(
                    (request.headers[h] for h in KEY_HEADERS if h in request.headers), None
                )
                if who is None:
                    who = await run_in_threadpool(self.auth.authenticate, presented)
                if who is None:
                    if presented:  # repeated bad keys from one address are held back
                        LIMITER.failed(request.client.host if request.client else None)
                    raise ApiError(401, "unauthorized", "missing or invalid API key")
                response = await fn(request, who)
                if snapshot and request.method != "GET" and response.status_code < 300:
                    self.on_change()  # a new snapshot follows every committed change
                return response
            except ApiError as e:
                return error_response(e)
            except Invalid as e:
                return error_response(ApiError(400, "invalid", "invalid request", e.errors))
            except NotFound as e:
                return error_response(ApiError(404, "not_found", str(e)))
            except Forbidden as e:
                return error_response(ApiError(403, "forbidden", str(e)))

        return endpoint

    async def body(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        size = ascii_int(declared) if declared else None
        if size is not None and size > self.max_body:
            raise ApiError(413, "too_large", f"body larger than {self.max_body} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_body:
                raise ApiError(413, "too_large", f"body larger than {self.max_body} bytes")
        try:
            return json_body(raw)  # depth and int64 checked too: never a RecursionError
        except Invalid as e:
            raise ApiError(400, "malformed_json", e.errors[0].message, e.errors) from None

    @staticmethod
    def path_id(request: Request) -> int:
        raw = request.path_params["id"]
        value = ascii_int(raw)  # not '²' nor '١', which str.isdigit() takes
        if not value:
            raise ApiError(404, "not_found", f"no object with id {raw!r}")
        return value

    # -- keys, audit, me ----------------------------------------------------------------

    # -- the app ------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/healthz", lambda r: json_response({"status": "ok"})),
            *explorer.routes(openapi.document, "adserver management API"),
        ]
        for module in (keys_api, users_api, delivery_api, products_api):
            routes.extend(module.routes(self))
        routes.extend(quarantine.routes(self))
        if self.registry is not None:
            from adserver.control import models_api

            routes.extend(models_api.routes(self, self.registry))
        from adserver.control import personalizer_api

        routes.extend(
            personalizer_api.routes(self, self.store, self.learner_settings, self.learner)
        )
        routes.extend(entities_api.routes(self))
        routes.extend(console_app.routes(self))

        async def not_found(request: Request, exc: Exception) -> Response:
            return error_response(ApiError(404, "not_found", f"no route {request.url.path}"))

        async def not_allowed(request: Request, exc: Exception) -> Response:
            return error_response(
                ApiError(405, "method_not_allowed", f"{request.method} not allowed here")
            )

        self.asgi = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
        return self.asgi
