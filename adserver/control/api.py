"""The management API: REST+JSON under /v1/ for every entity, keys, audit, OpenAPI, docs.

Routes are generated from the EntitySpecs. Handlers decode, authorize and hand the work to the
Repository in a worker thread (SQLite is blocking). Errors are always JSON:
`{"error": {"status", "code", "message", "fields": [{"field", "message"}]}}`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver import explorer
from adserver.control import auth, openapi, products, quarantine
from adserver.control import reports as report_queries
from adserver.control.auth import Authenticator, Principal
from adserver.control.repo import MAX_LIMIT, Forbidden, NotFound, Repository
from adserver.control.responses import ApiError, error_response, int_param, json_response
from adserver.control.schema import SPECS, EntitySpec
from adserver.control.store import Store
from adserver.ratelimit import LIMITER
from adserver.validation import FieldError, Invalid, ascii_int, convert, json_body

KEY_HEADERS = ("x-api-key", "x-adzerk-apikey")


class KeyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    role: auth.Role
    name: str = ""
    network_id: int | None = None
    advertiser_id: int | None = None


class ManagementApi:
    """Holds the store, the repository and the authenticator; builds the Starlette app."""

    settings: Any = None  # the process's Config: who may read /metrics (None: anyone)

    def __init__(self, store: Store, bootstrap_key: str | None, max_body_bytes: int,
                 on_change: Callable[[], None] = lambda: None, pacer: Any = None,
                 catalog_builder: Any = None, registry: Any = None,
                 learner_settings: Any = None, learner: Any = None):
        self.store = store
        self.builder = catalog_builder  # adserver/control/catalog.CatalogBuilder, when it runs
        self.pacer = pacer  # adserver/control/pacing.Pacer, when the controller runs here
        self.registry = registry  # adserver/control/registry.Registry (model routes)
        self.learner_settings = learner_settings  # control/personalizer.Settings
        self.learner = learner  # control/personalizer.Learner
        self.on_change = on_change
        self.repo = Repository(store)
        self.catalog = products.Catalog(store, lambda network_id: model_dim(store.path))
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
                presented = next(
                    (request.headers[h] for h in KEY_HEADERS if h in request.headers), None
                )
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

    # -- entities -----------------------------------------------------------------------

    def entity_routes(self, spec: EntitySpec) -> list[Route]:
        repo = self.repo
        filterable = {c.column: c for c in spec.columns if c.kind in ("scalar", "bool")}
        types = {f.name: f.type for f in msgspec.structs.fields(spec.struct)}

        async def list_(request: Request, who: Principal) -> Response:
            q = dict(request.query_params)
            errors: list[FieldError] = []
            limit = int_param(q.pop("limit", "100"), "limit", 1, MAX_LIMIT, errors)
            cursor = q.pop("cursor", None)
            archived = q.pop("archived", "false")
            filters: dict[str, Any] = {}
            if archived in ("true", "false"):
                filters["archived"] = int(archived == "true")
            elif archived != "all":
                errors.append(FieldError("archived", "must be true, false or all"))
            for name, raw in q.items():
                if name not in filterable:
                    errors.append(FieldError(name, "not a filter of this list"))
                    continue
                try:
                    value = msgspec.convert(raw, types[name], strict=False)
                except msgspec.ValidationError as e:
                    errors.append(FieldError(name, str(e)))
                    continue
                filters[name] = int(value) if isinstance(value, bool) else value
            if errors:
                raise Invalid(errors)
            items, nxt = await run_in_threadpool(repo.list, spec, who, filters, limit, cursor)
            return json_response({"data": items, "next_cursor": nxt})

        async def create(request: Request, who: Principal) -> Response:
            body = await self.body(request)
            return json_response(await run_in_threadpool(repo.create, spec, who, body), 201)

        async def get(request: Request, who: Principal) -> Response:
            return json_response(await run_in_threadpool(repo.get, spec, who, self.path_id(request)))

        async def update(request: Request, who: Principal) -> Response:
            id_ = self.path_id(request)
            body = await self.body(request)
            return json_response(await run_in_threadpool(repo.update, spec, who, id_, body))

        def archiving(archived: bool) -> Callable[..., Awaitable[Response]]:
            async def endpoint(request: Request, who: Principal) -> Response:
                return json_response(await run_in_threadpool(
                    repo.archive, spec, who, self.path_id(request), archived))
            return endpoint

        base = f"/v1/{spec.name}"
        return [
            Route(base, self.handler(list_), methods=["GET"]),
            Route(base, self.handler(create), methods=["POST"]),
            Route(base + "/{id}", self.handler(get), methods=["GET"]),
            Route(base + "/{id}", self.handler(update), methods=["PATCH"]),
            Route(base + "/{id}/archive", self.handler(archiving(True)), methods=["POST"]),
            Route(base + "/{id}/restore", self.handler(archiving(False)), methods=["POST"]),
        ]

    # -- keys, audit, me ----------------------------------------------------------------

    async def me(self, request: Request, who: Principal) -> Response:
        return json_response(who)

    async def create_key(self, request: Request, who: Principal) -> Response:
        if who.role != "admin" or who.advertiser_id is not None:
            raise Forbidden("only an admin key can create keys")
        req = convert(KeyCreate, await self.body(request))

        def work() -> dict[str, Any]:
            network_id = req.network_id
            errors = []
            with self.store.transaction() as db:
                if req.advertiser_id is not None:
                    row = db.execute(
                        "SELECT network_id FROM advertisers WHERE id = ?", (req.advertiser_id,)
                    ).fetchone()
                    if row is None or (who.network_id and row[0] != who.network_id):
                        errors.append(FieldError("advertiser_id", "advertiser not found"))
                    else:
                        network_id = row[0]
                elif req.role == "advertiser":
                    errors.append(FieldError("advertiser_id", "required for an advertiser key"))
                if who.network_id is not None:
                    if req.network_id not in (None, who.network_id):
                        errors.append(FieldError("network_id", "outside this key's network"))
                    network_id = who.network_id
                elif network_id is not None and not db.execute(
                    "SELECT 1 FROM networks WHERE id = ?", (network_id,)
                ).fetchone():
                    errors.append(FieldError("network_id", "network not found"))
                if errors:
                    raise Invalid(errors)
                key, info = auth.create_key(
                    db, role=req.role, name=req.name, created_by=who.key_id,
                    network_id=network_id, advertiser_id=req.advertiser_id,
                )
            return {"key": key, **msgspec.to_builtins(info)}

        return json_response(await run_in_threadpool(work), 201)

    async def list_keys(self, request: Request, who: Principal) -> Response:
        if who.role != "admin" or who.advertiser_id is not None:
            raise Forbidden("only an admin key can list keys")
        keys = await run_in_threadpool(auth.list_keys, self.store)
        if who.network_id is not None:
            keys = [k for k in keys if k.network_id == who.network_id]
        return json_response({"data": keys})

    async def revoke(self, request: Request, who: Principal) -> Response:
        if who.role != "admin" or who.advertiser_id is not None:
            raise Forbidden("only an admin key can revoke keys")
        key_id = request.path_params["key_id"]

        def work() -> auth.KeyInfo:
            with self.store.transaction() as db:
                info = auth.revoke_key(db, key_id, who.key_id)
                if info is None or (who.network_id and info.network_id != who.network_id):
                    raise NotFound(f"key {key_id} not found")
                return info

        return json_response(await run_in_threadpool(work))

    async def audit(self, request: Request, who: Principal) -> Response:
        if who.role == "advertiser":
            raise Forbidden("the audit log is for admin and read-only keys")
        q = request.query_params
        errors: list[FieldError] = []
        limit = int_param(q.get("limit", "100"), "limit", 1, MAX_LIMIT, errors)
        clauses, params = ["1 = 1"], list[Any]()
        if who.network_id is not None:
            clauses.append("network_id = ?")
            params.append(who.network_id)
        if who.advertiser_id is not None:  # a read-only key of one advertiser: its rows only
            clauses.append("advertiser_id = ?")
            params.append(who.advertiser_id)
        for name in ("entity", "entity_id", "key_id", "action"):
            if name in q:
                clauses.append(f"{name} = ?")
                params.append(q[name])
        if "before_id" in q:
            clauses.append("id < ?")
            params.append(int_param(q["before_id"], "before_id", 1, 2**62, errors))
        if errors:
            raise Invalid(errors)
        sql = f"SELECT * FROM audit WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?"
        rows = await run_in_threadpool(self.store.read, sql, [*params, limit])
        return json_response({"data": [_audit_entry(r) for r in rows]})

    async def reports(self, request: Request, who: Principal) -> Response:
        params = report_queries.parse(request.query_params)
        rows = await run_in_threadpool(report_queries.run, self.store, who, params)
        if params["format"] == "csv":
            return Response(report_queries.to_csv(rows), media_type="text/csv")
        return json_response({"data": rows})

    async def pacing(self, request: Request, who: Principal) -> Response:
        """A flight's pacing: today's goal, plan and delivery so far, its throttle and, near
        a cap, each worker's allowance (adserver/control/pacing.py)."""
        id_ = self.path_id(request)
        flight: Any = await run_in_threadpool(self.repo.get, SPECS["flights"], who, id_)
        st = self.pacer.status.get(id_) if self.pacer is not None else None
        if st is None:
            capped = flight.daily_cap is not None or flight.lifetime_cap is not None
            return json_response({
                "flight_id": id_, "mode": flight.pacing, "paced": False,
                "reason": ("not active" if not flight.is_active or flight.archived
                           else "waiting for the controller's next step" if capped
                           else "no daily or lifetime cap to pace"),
                "throttle": 1.0})
        rows = await run_in_threadpool(
            self.store.read,
            "SELECT hour, SUM(spend_nanos), SUM(impressions), SUM(clicks) FROM stats_hourly"
            " WHERE flight_id = ? AND hour >= ? GROUP BY hour ORDER BY hour",
            (id_, _hour_text(st.day_start)))
        column = {"spend": 1, "impressions": 2, "clicks": 3}.get(st.metric or "spend", 1)
        scale = 1e-9 if column == 1 else 1.0
        hourly: dict[str, float] = {r[0]: (r[column] or 0) * scale for r in rows}
        cumulative, total = [], 0.0
        for h in range(24):
            hour = _hour_text(st.day_start + 3600 * h)
            if st.day_start + 3600 * h > st.updated_at:
                break
            total += hourly.get(hour, 0.0)
            cumulative.append(round(total, 9))
        return json_response({
            "flight_id": id_, "mode": st.mode, "paced": st.mode != "asap",
            "metric": st.metric, "goal": _round(st.goal), "plan": _round(st.plan),
            "day_plan": _round(st.day_plan),
            "actual": _round(st.actual), "throttle": round(st.throttle, 6),
            "allowance_per_worker": _round(st.allowance),
            "lifetime_delivered": _round(st.lifetime_delivered),
            "day_start": _iso(st.day_start), "updated_at": _iso(st.updated_at),
            "hourly_plan": [round(x, 9) for x in st.hourly_plan],
            "day_hourly_plan": [round(x, 9) for x in st.day_hourly_plan],
            "hourly_actual": cumulative, "forecast_trust": round(st.forecast_trust, 3)})

    # -- the catalog --------------------------------------------------------------------

    def product_routes(self) -> list[Route]:
        catalog = self.catalog

        def network(request: Request) -> int:
            raw = request.path_params["network_id"]
            if ascii_int(raw) is None:
                raise ApiError(404, "not_found", f"no network {raw!r}")
            return int(raw)

        async def list_(request: Request, who: Principal) -> Response:
            q = request.query_params
            errors: list[FieldError] = []
            unknown = set(q) - {"limit", "cursor", "brand", "category"}
            errors += [FieldError(k, "not a filter of this list") for k in sorted(unknown)]
            limit = int_param(q.get("limit", "100"), "limit", 1, products.MAX_LIMIT, errors)
            if errors:
                raise Invalid(errors)
            items, nxt = await run_in_threadpool(catalog.list, who, network(request), limit,
                                                 q.get("cursor"), q.get("brand"),
                                                 q.get("category"))
            return json_response({"data": items, "next_cursor": nxt})

        async def batch(request: Request, who: Principal) -> Response:
            body = convert(products.BatchRequest, await self.body(request))
            result = await run_in_threadpool(catalog.batch, who, network(request),
                                             body.products, body.delete)
            return json_response(result)

        async def get(request: Request, who: Principal) -> Response:
            return json_response(await run_in_threadpool(
                catalog.get, who, network(request), request.path_params["product_id"]))

        async def put(request: Request, who: Principal) -> Response:
            body = await self.body(request)
            out, created = await run_in_threadpool(
                catalog.put, who, network(request), request.path_params["product_id"], body)
            return json_response(out, 201 if created else 200)

        async def delete(request: Request, who: Principal) -> Response:
            return json_response(await run_in_threadpool(
                catalog.delete, who, network(request), request.path_params["product_id"]))

        async def status(request: Request, who: Principal) -> Response:
            net = network(request)
            page, _ = await run_in_threadpool(catalog.list, who, net, 1, None)
            count = await run_in_threadpool(
                self.store.read, "SELECT count(*) FROM products WHERE network_id = ?", (net,))
            built = self.builder.status if self.builder is not None else {}
            index = built.get("manifest") or {}
            return json_response({
                "network_id": net, "products": count[0][0],
                "index": {"version": built.get("version"), "error": built.get("error"),
                          "model": index.get("model"), "dim": index.get("dim"),
                          "embedding_model": built.get("model"),
                          "sponsored_indexed": index.get("graphs", {}).get(str(net), {}).get(
                              "count", 0),
                          "products_indexed": index.get("products"),
                          "vectors_ignored": index.get("vectors_ignored"),
                          "built_at": built.get("built_at"),
                          "build_s": index.get("build_s")}})

        base = "/v1/networks/{network_id}/products"
        one = base + "/{product_id:path}"
        return [
            Route(base, self.handler(list_), methods=["GET"]),
            Route(base, self.handler(batch), methods=["POST"]),
            Route("/v1/networks/{network_id}/catalog", self.handler(status), methods=["GET"]),
            Route(one, self.handler(get), methods=["GET"]),
            Route(one, self.handler(put), methods=["PUT"]),
            Route(one, self.handler(delete), methods=["DELETE"]),
        ]

    # -- the app ------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/healthz", lambda r: json_response({"status": "ok"})),
            *explorer.routes(openapi.document, "adserver management API"),
            Route("/v1/me", self.handler(self.me)),
            Route("/v1/keys", self.handler(self.list_keys), methods=["GET"]),
            Route("/v1/keys", self.handler(self.create_key), methods=["POST"]),
            Route("/v1/keys/{key_id}/revoke", self.handler(self.revoke), methods=["POST"]),
            Route("/v1/audit", self.handler(self.audit), methods=["GET"]),
            Route("/v1/reports", self.handler(self.reports), methods=["GET"]),
            Route("/v1/flights/{id}/pacing", self.handler(self.pacing), methods=["GET"]),
        ]
        routes.extend(self.product_routes())
        routes.extend(quarantine.routes(self))
        if self.registry is not None:
            from adserver.control import models_api
            routes.extend(models_api.routes(self, self.registry))
        from adserver.control import personalizer_api
        routes.extend(personalizer_api.routes(self, self.store, self.learner_settings,
                                              self.learner))
        for spec in SPECS.values():
            routes.extend(self.entity_routes(spec))

        async def not_found(request: Request, exc: Exception) -> Response:
            return error_response(ApiError(404, "not_found", f"no route {request.url.path}"))

        async def not_allowed(request: Request, exc: Exception) -> Response:
            return error_response(
                ApiError(405, "method_not_allowed", f"{request.method} not allowed here")
            )

        return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})


def model_dim(store_path: str) -> int | None:
    """The dimension new product vectors must have: the ops-supplied (static) embedding
    model's (None: no such model; vectors are kept, and used once one of their dimension
    is dropped in)."""
    import os

    from adserver.learn import embed

    data_dir = os.path.dirname(store_path)
    version = embed.current(data_dir)
    if version is None:
        return None
    try:
        with open(os.path.join(embed.models_dir(data_dir), version, "manifest.json")) as src:
            manifest = msgspec.json.decode(src.read())
        return int(manifest["dim"]) if manifest["kind"] == "static" else None
    except (OSError, ValueError, KeyError, msgspec.DecodeError):
        return None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 9)


def _hour_text(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _audit_entry(row: Any) -> dict[str, Any]:
    before = msgspec.json.decode(row["before"]) if row["before"] else None
    after = msgspec.json.decode(row["after"]) if row["after"] else None
    changes = {}
    if after is not None:
        for k, v in after.items():
            old = None if before is None else before.get(k)
            if old != v and k != "updated_at":
                changes[k] = {"before": old, "after": v}
    return {
        "id": row["id"], "at": row["at"], "key_id": row["key_id"], "entity": row["entity"],
        "entity_id": row["entity_id"], "action": row["action"], "changes": changes,
        "before": before, "after": after,
    }
