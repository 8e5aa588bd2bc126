"""The catalog on the management API: `/v1/networks/{network_id}/products` (list, batch,
get, put, delete; adserver/control/products.py) and `GET /v1/networks/{network_id}/catalog`,
the product index and embedding model behind it (adserver/control/catalog.py)."""

from __future__ import annotations

import os
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adserver.common.validation import FieldError, Invalid, ascii_int, convert
from adserver.control import products
from adserver.control.auth import Principal
from adserver.control.responses import ApiError, int_param, json_response


def routes(api: Any) -> list[Route]:
    """The catalog's routes and its status."""
    catalog = api.catalog

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
        items, nxt = await run_in_threadpool(
            catalog.list,
            who,
            network(request),
            limit,
            q.get("cursor"),
            q.get("brand"),
            q.get("category"),
        )
        return json_response({"data": items, "next_cursor": nxt})

    async def batch(request: Request, who: Principal) -> Response:
        body = convert(products.BatchRequest, await api.body(request))
        result = await run_in_threadpool(
            catalog.batch, who, network(request), body.products, body.delete
        )
        return json_response(result)

    async def get(request: Request, who: Principal) -> Response:
        return json_response(
            await run_in_threadpool(
                catalog.get, who, network(request), request.path_params["product_id"]
            )
        )

    async def put(request: Request, who: Principal) -> Response:
        body = await api.body(request)
        out, created = await run_in_threadpool(
            catalog.put, who, network(request), request.path_params["product_id"], body
        )
        return json_response(out, 201 if created else 200)

    async def delete(request: Request, who: Principal) -> Response:
        return json_response(
            await run_in_threadpool(
                catalog.delete, who, network(request), request.path_params["product_id"]
            )
        )

    async def status(request: Request, who: Principal) -> Response:
        net = network(request)
        page, _ = await run_in_threadpool(catalog.list, who, net, 1, None)
        count = await run_in_threadpool(
            api.store.read, "SELECT count(*) FROM products WHERE network_id = ?", (net,)
        )
        built = api.builder.status if api.builder is not None else {}
        index = built.get("manifest") or {}
        return json_response(
            {
                "network_id": net,
                "products": count[0][0],
                "index": {
                    "version": built.get("version"),
                    "error": built.get("error"),
                    "model": index.get("model"),
                    "dim": index.get("dim"),
                    "embedding_model": built.get("model"),
                    "sponsored_indexed": index.get("graphs", {}).get(str(net), {}).get("count", 0),
                    "products_indexed": index.get("products"),
                    "vectors_ignored": index.get("vectors_ignored"),
                    "built_at": built.get("built_at"),
                    "build_s": index.get("build_s"),
                },
            }
        )

    base = "/v1/networks/{network_id}/products"
    one = base + "/{product_id:path}"
    return [
        Route(base, api.handler(list_), methods=["GET"]),
        Route(base, api.handler(batch), methods=["POST"]),
        Route("/v1/networks/{network_id}/catalog", api.handler(status), methods=["GET"]),
        Route(one, api.handler(get), methods=["GET"]),
        Route(one, api.handler(put), methods=["PUT"]),
        Route(one, api.handler(delete), methods=["DELETE"]),
    ]


def model_dim(store_path: str) -> int | None:
    """The dimension new product vectors must have: the ops-supplied (static) embedding
    model's (None: no such model; vectors are kept, and used once one of their dimension
    is dropped in)."""
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
