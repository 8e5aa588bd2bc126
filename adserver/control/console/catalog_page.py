"""The console's catalog (operations): a network's products, filtered by brand or category
and paged, each marked when an ad promotes it; the catalog's state (products, the product
index, its embedding model); and an import of a JSON Lines or CSV file that the browser
sends in chunks of rows (a progress bar as they go), each chunk read here
(common/catalog_rows.py, as `adserver products import` reads a file) and written through
`POST /v1/networks/{id}/products`; every rejected row is listed with its line and reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adserver.common.catalog_rows import parse_lines
from adserver.control.console import users
from adserver.control.console.pages import OPERATIONS, api_message

MAX_CHUNK_ROWS = 1000
MAX_LINE = 1 << 20


class Chunk(msgspec.Struct, forbid_unknown_fields=True):
    """What the import page sends: rows of the file from line `first_line`."""

    network_id: int
    format: str
    header: str
    lines: list[str]
    first_line: int


def routes(console: Any) -> list[Route]:
    call = console.call

    async def networks(who: Any) -> list[dict[str, Any]]:
        status, got = await call(who, "GET", "/v1/networks", {"limit": 1000})
        return got["data"] if status == 200 else []

    async def page(request: Request) -> Response:
        s, refused = console.gate(request, OPERATIONS, "the catalog pages are for operations")
        if s is None:
            return refused
        who = s.user.principal()
        nets = await networks(who)
        q = request.query_params
        chosen = q.get("network_id") or (str(nets[0]["id"]) if nets else "")
        net = next((n for n in nets if str(n["id"]) == chosen), None)
        if net is None:
            return console.not_found(request, s, f"no network {chosen!r} you may see")
        filters = {k: q[k] for k in ("brand", "category", "cursor") if q.get(k)}
        status, got = await call(
            who, "GET", f"/v1/networks/{net['id']}/products", {**filters, "limit": 50}
        )
        rows = got["data"] if status == 200 else []
        message = None if status == 200 else api_message(got, status)
        _, state = await call(who, "GET", f"/v1/networks/{net['id']}/catalog")
        _, creatives = await call(who, "GET", "/v1/creatives", {"kind": "product", "limit": 1000})
        promoted = {c.get("product_id") for c in (creatives or {}).get("data", [])}
        index = (state or {}).get("index") or {}
        built = index.get("built_at")
        return console.view(
            request,
            s,
            "catalog.html",
            200 if status == 200 else 400,
            networks=nets,
            network=net,
            rows=rows,
            promoted=promoted,
            state=state or {},
            index=index,
            built=dt.datetime.fromtimestamp(built, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            if built
            else "",
            filters={k: v for k, v in filters.items() if k != "cursor"},
            next_cursor=(got or {}).get("next_cursor"),
            message=message,
            can_import=s.user.role == "admin",
        )

    async def import_chunk(request: Request) -> Response:
        s = console.signed_in(request)
        if s is None:
            return JSONResponse({"error": "signed out"}, 401)
        if not users.csrf_ok(s.csrf, request.headers.get("x-csrf-token")):
            return JSONResponse({"error": "the page expired: reload it"}, 403)
        if s.user.role != "admin":
            return JSONResponse({"error": "only an admin imports products"}, 403)
        raw = await request.body()
        try:
            chunk = msgspec.json.decode(raw, type=Chunk)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            return JSONResponse({"error": f"not an import chunk: {e}"}, 400)
        if chunk.format not in ("jsonl", "csv") or len(chunk.lines) > MAX_CHUNK_ROWS:
            return JSONResponse({"error": "format jsonl or csv, at most 1000 rows"}, 400)
        if any(len(line) > MAX_LINE for line in chunk.lines) or chunk.first_line < 1:
            return JSONResponse({"error": "a row longer than 1 MiB"}, 400)
        rejected: list[dict[str, Any]] = []
        items, lines_of = [], []
        for line, item, why in parse_lines(
            chunk.format, chunk.header, chunk.lines, chunk.first_line
        ):
            if item is None:
                rejected.append({"line": line, "id": None, "reason": why})
            else:
                items.append(item)
                lines_of.append(line)
        upserted = 0
        if items:
            status, got = await call(
                s.user.principal(),
                "POST",
                f"/v1/networks/{chunk.network_id}/products",
                body={"products": items},
            )
            if status != 200:
                return JSONResponse({"error": api_message(got, status)}, status)
            upserted = got["upserted"]
            for r in got["rejected"]:
                reason = "; ".join(f"{f['field']}: {f['message']}" for f in r["fields"])
                rejected.append({"line": lines_of[r["index"]], "id": r["id"], "reason": reason})
        rejected.sort(key=lambda r: r["line"])
        return JSONResponse({"upserted": upserted, "rejected": rejected})

    return [
        Route("/console/catalog", page),
        Route("/console/catalog/import", import_chunk, methods=["POST"]),
    ]
