"""The entity routes of the management API: for each EntitySpec (adserver/control/schema.py),
`GET`/`POST /v1/<name>`, `GET`/`PATCH /v1/<name>/{id}`, and `POST .../archive` and
`.../restore`. Handlers decode, authorize and hand the work to the Repository in a worker
thread (SQLite is blocking)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import FieldError, Invalid
from adserver.control.auth import Principal
from adserver.control.repo import MAX_LIMIT
from adserver.control.responses import int_param, json_response
from adserver.control.schema import SPECS, EntitySpec


def routes(api: Any) -> list[Route]:
    """Every entity's routes."""
    return [r for spec in SPECS.values() for r in entity_routes(api, spec)]


def entity_routes(api: Any, spec: EntitySpec) -> list[Route]:
    """List, create, get, change, archive and restore one kind of entity."""
    repo = api.repo
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
        body = await api.body(request)
        return json_response(await run_in_threadpool(repo.create, spec, who, body), 201)

    async def get(request: Request, who: Principal) -> Response:
        return json_response(await run_in_threadpool(repo.get, spec, who, api.path_id(request)))

    async def update(request: Request, who: Principal) -> Response:
        id_ = api.path_id(request)
        body = await api.body(request)
        return json_response(await run_in_threadpool(repo.update, spec, who, id_, body))

    def archiving(archived: bool) -> Callable[..., Awaitable[Response]]:
        async def endpoint(request: Request, who: Principal) -> Response:
            return json_response(
                await run_in_threadpool(repo.archive, spec, who, api.path_id(request), archived)
            )

        return endpoint

    base = f"/v1/{spec.name}"
    return [
        Route(base, api.handler(list_), methods=["GET"]),
        Route(base, api.handler(create), methods=["POST"]),
        Route(base + "/{id}", api.handler(get), methods=["GET"]),
        Route(base + "/{id}", api.handler(update), methods=["PATCH"]),
        Route(base + "/{id}/archive", api.handler(archiving(True)), methods=["POST"]),
        Route(base + "/{id}/restore", api.handler(archiving(False)), methods=["POST"]),
    ]
