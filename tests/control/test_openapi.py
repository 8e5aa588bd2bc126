from __future__ import annotations

import httpx
from openapi_spec_validator import validate

from adserver.control.schema import SPECS


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


def test_docs_page_lists_every_route(anon: httpx.Client) -> None:
    page = anon.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in SPECS:
        assert f"/v1/{name}/{{id}}/archive" in page.text
    assert "custom_targeting" in page.text and "/v1/flights/{id}/pacing" in page.text
