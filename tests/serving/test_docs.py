"""The API explorer on both ports, in a real browser (the system's Chromium via Playwright):
Swagger UI renders each port's own document from assets the server itself serves (nothing
from a CDN), and the documents list every route."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.serving.shop import Shop


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = shutil.which("chromium")
    assert path, "the tests need the system's chromium (./dev installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.mark.parametrize(
    "port, title, operation",
    [
        ("management", "adserver management API", "/v1/flights/{id}/restore"),
        ("decision", "adserver decision API", "/api/v2"),
    ],
)
def test_the_explorer_renders_the_ports_document_offline(
    browser: Browser, shop: Shop, port: str, title: str, operation: str
) -> None:
    base = str((shop.admin if port == "management" else shop.client).base_url).rstrip("/")
    page = browser.new_page()
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.goto(f"{base}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert title in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(f"[data-path='{operation}']", timeout=20_000)
    # expand an operation: its parameters and schema render
    page.click(f"[data-path='{operation}']")
    page.wait_for_selector(".opblock-body", timeout=10_000)
    assert outside == [], f"the page fetched from elsewhere: {outside}"
    page.close()


def test_assets_are_served_with_cache_headers_and_nothing_else(shop: Shop) -> None:
    for client in (shop.admin, shop.client):
        r = client.get("/docs/assets/swagger-ui-bundle.js")
        assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
        assert r.headers["content-type"].startswith("text/javascript")
        # Attack: a path into the package (or anywhere) is not a file to read
        for name in ("..%2F__init__.py", "swagger-editor.js", "%2Fetc%2Fpasswd"):
            assert client.get(f"/docs/assets/{name}").status_code == 404
        assert client.get("/docs/reference").status_code == 200
        doc = client.get("/openapi.json").json()
        assert doc["openapi"] == "3.1.0"


def test_the_decision_document_names_its_wire_formats(shop: Shop) -> None:
    doc = shop.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert {"DecisionRequest", "DecisionResponse", "AuctionRequest", "RankRequest"} <= set(schemas)
    assert "explain" in schemas["Result"]["properties"]
    assert "/personalizer/v1.0/rank" in doc["paths"] and "/r" in doc["paths"]
