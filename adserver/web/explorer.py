"""The interactive API explorer both ports serve at `/docs`: Swagger UI over the port's own
OpenAPI document, from the assets the `swagger-ui-py` package ships (nothing from a CDN: it
works offline and behind a firewall). `/docs/reference` keeps a plain HTML table of the
routes for reading without JavaScript.

Only the package's files are used, located through its distribution metadata, so its own
Python code (and the template engine it needs) is never imported.
"""

from __future__ import annotations

import functools
import html
import json
import os
from collections.abc import Callable
from importlib import metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The files of the package the page loads (no other file of it is served)."""
CACHE = "public, max-age=86400"


@functools.cache
def assets_dir() -> str:
    """Where the installed swagger-ui-py keeps its static files."""
    found = str(metadata.distribution("swagger-ui-py").locate_file("swagger_ui/static"))
    if not os.path.isfile(os.path.join(found, "swagger-ui-bundle.js")):
        raise RuntimeError(f"swagger-ui-py's assets are not at {found}")
    return found


def _page(title: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        "<link rel=stylesheet href='/docs/assets/swagger-ui.css'>"
        "<link rel=icon type=image/png href='/docs/assets/favicon-32x32.png'>"
        "</head><body><div id=swagger-ui></div>"
        "<script src='/docs/assets/swagger-ui-bundle.js'></script>"
        "<script src='/docs/assets/swagger-ui-standalone-preset.js'></script>"
        "<script src='/docs/explorer.js'></script>"
        "<noscript><a href='/docs/reference'>The routes as a table</a></noscript>"
        "</body></html>"
    )


def _init(document_url: str) -> str:
    config = {
        "url": document_url,
        "dom_id": "#swagger-ui",
        "deepLinking": True,
        "layout": "StandaloneLayout",
        "tryItOutEnabled": False,
        "persistAuthorization": False,
        "displayRequestDuration": True,
    }
    return (
        "window.onload = function () {\n  const config = " + json.dumps(config) + ";\n"
        "  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset];\n"
        "  window.ui = SwaggerUIBundle(config);\n};\n"
    )


def reference_page(doc: dict[str, Any]) -> str:
    """A readable, self-contained HTML table of a document's routes and schemas."""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(doc['info']['title'])}</title>",
        "<style>body{font:15px system-ui;margin:2em auto;max-width:60em;padding:0 1em}"
        "code,pre{background:#f4f4f4;padding:2px 4px}h3{margin-bottom:.2em}"
        "table{border-collapse:collapse}td{border-top:1px solid #ddd;padding:3px 8px}"
        ".m{font-weight:bold;width:4em}</style></head><body>",
        f"<h1>{html.escape(doc['info']['title'])} {html.escape(doc['info']['version'])}</h1>",
        "<p>Interactive: <a href='/docs'>/docs</a>. Machine-readable: "
        "<a href='/openapi.json'>/openapi.json</a>.</p><h2>Endpoints</h2><table>",
    ]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            out.append(
                f"<tr><td class=m>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op.get('summary', ''))}</td></tr>"
            )
    out.append("</table><h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out.append(f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3><table>")
        required = set(schema.get("required", ()))
        for prop, sub in schema.get("properties", {}).items():
            kind = (
                sub.get("type")
                or sub.get("enum")
                or sub.get("$ref", "").split("/")[-1]
                or ("one of" if "anyOf" in sub else "")
            )
            out.append(
                f"<tr><td><code>{html.escape(prop)}</code>{' *' if prop in required else ''}</td>"
                f"<td>{html.escape(str(kind))}</td>"
                f"<td>{html.escape(sub.get('description', ''))}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "".join(out)


def routes(document: Callable[[], dict[str, Any]], title: str) -> list[Route]:
    """`/openapi.json`, `/docs` (Swagger UI), its assets and `/docs/reference` for a port."""
    page, init = _page(title), _init("/openapi.json")

    async def openapi(request: Request) -> Response:
        return Response(json.dumps(document()), media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(page)

    async def script(request: Request) -> Response:
        return Response(init, media_type="text/javascript")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:  # only the named files: never a path into the package
            return Response(
                b'{"error":{"status":404,"code":"not_found","message":"no such asset"}}',
                404,
                media_type="application/json",
            )
        return FileResponse(
            os.path.join(assets_dir(), name),
            media_type=ASSETS[name],
            headers={"cache-control": CACHE},
        )

    async def reference(request: Request) -> Response:
        return HTMLResponse(reference_page(document()))

    return [
        Route("/openapi.json", openapi),
        Route("/docs", docs),
        Route("/docs/explorer.js", script),
        Route("/docs/assets/{name}", asset),
        Route("/docs/reference", reference),
    ]
