from __future__ import annotations

import re

import httpx
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route

from adserver.control import openapi
from adserver.control.api import ManagementApi
from adserver.control.registry import Margins, Registry
from adserver.control.schema import SPECS
from adserver.control.store import Store

# the explorer's own pages and assets are not API routes
UNDOCUMENTED = {"/docs", "/docs/explorer.js", "/docs/assets/{name}", "/docs/reference"}


def test_openapi_document_is_valid_3_1(anon: httpx.Client) -> None:
    doc = anon.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    for name in SPECS:
        assert {"get", "post"} <= set(doc["paths"][f"/v1/{name}"])
        assert "patch" in doc["paths"][f"/v1/{name}/{{id}}"]
    assert {"get", "put"} <= set(doc["paths"]["/v1/models/{name}/versions"])
    flight = doc["components"]["schemas"]["Flight"]
    assert {"campaign_id", "priority_id", "name", "start", "price"} <= set(flight["required"])
    assert "required" not in doc["components"]["schemas"]["FlightPatch"]


def test_the_reference_page_lists_every_route(anon: httpx.Client) -> None:
    page = anon.get("/docs/reference")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in SPECS:
        assert f"/v1/{name}/{{id}}/archive" in page.text
        assert f"/v1/{name}/{{id}}/restore" in page.text
    assert "custom_targeting" in page.text and "/v1/flights/{id}/pacing" in page.text
    assert "Create an ad" in page.text and "Create a ad" not in page.text


def test_money_is_typed_as_it_travels(anon: httpx.Client) -> None:
    schemas = anon.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["FlightOut"]["properties"]["price"]["type"] == "number"  # returned
    written = schemas["Flight"]["properties"]["price"]["anyOf"]
    assert {s["type"] for s in written} == {"number", "string"}  # a number or a decimal string
    assert '"decimal"' not in str(schemas).replace("'", '"')


def _paths(app: Starlette) -> set[str]:
    """Every route's path as OpenAPI writes it ({id:int} and {rest:path} as {id}, {rest})."""
    return {re.sub(r"\{(\w+):\w+\}", r"{\1}", r.path) for r in app.routes if isinstance(r, Route)}


def test_every_management_route_is_documented(tmp_path: str) -> None:
    store = Store(str(tmp_path))
    app = ManagementApi(store, None, 1024, registry=Registry(store, str(tmp_path), Margins())).app()
    documented = set(openapi.document()["paths"])
    pages = {p for p in _paths(app) if p == "/" or p.startswith("/console")}  # HTML, not API
    assert "/console/login" in pages
    missing = _paths(app) - documented - UNDOCUMENTED - pages
    assert not missing, f"routes missing from the document: {sorted(missing)}"
    assert "/v1/networks/{network_id}/catalog" in documented


def test_every_decision_route_is_documented(tmp_path: str) -> None:
    from adserver.config import Config
    from adserver.serving import app as serving_app
    from adserver.serving import openapi as decision_openapi
    from adserver.serving.worker import Worker

    front = serving_app.build(Config(data_dir=str(tmp_path)), Worker(Config(), "w0"))
    documented = set(decision_openapi.document()["paths"])
    validate(decision_openapi.document())
    missing = _paths(front.app) - documented - UNDOCUMENTED
    assert not missing, f"routes missing from the document: {sorted(missing)}"
