"""The catalog page: an import with bad lines in the browser (progress, the rejected rows
with their lines and reasons, the good rows imported), the chunk route's own checks (CSRF
header, role, CSV line numbers), and who may see the page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser

from tests.console.pages import Watched, sign_in


def test_an_import_with_bad_lines_shows_them(
    browser: Browser, world: dict[str, Any], admin: httpx.Client, tmp_path: Path
) -> None:
    net = world["a"]["network"]["id"]
    rows = [
        json.dumps({"id": "IMP-1", "title": "Blue mug", "brand": "Clay", "price": "9.99"}),
        "{not json",
        json.dumps({"id": "IMP-2", "title": "Red mug", "price": "-3"}),
        "[1, 2]",
        "",
        json.dumps({"id": "IMP-3", "title": "Green mug", "category": "Home > Mugs", "price": 7}),
        json.dumps({"id": "IMP-4", "title": "Teapot", "available": False, "price": "19.5"}),
    ]
    path = tmp_path / "products.jsonl"
    path.write_text("\n".join(rows) + "\n")
    base = world["url"]
    w = Watched(browser.new_context().new_page(), base)
    page = w.page
    sign_in(page, base, world["people"]["admin"]["email"])
    page.goto(f"{base}/console/catalog?network_id={net}")
    page.get_by_label("File").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    status = page.locator("#import-status")
    status.filter(has_text="done").wait_for(timeout=20_000)
    assert status.inner_text() == "done: 3 imported, 3 rejected"
    lines = page.locator("#import-rejected tbody tr td:first-child").all_inner_texts()
    assert lines == ["2", "3", "4"]
    reasons = page.locator("#import-rejected tbody").inner_text()
    assert "not valid JSON" in reasons and "price" in reasons and "not a JSON object" in reasons
    assert page.locator("#import-progress").evaluate("p => p.value === p.max")
    got = admin.get(f"/v1/networks/{net}/products", params={"limit": 1000}).json()["data"]
    assert {"IMP-1", "IMP-3", "IMP-4"} <= {p["id"] for p in got}
    assert "IMP-2" not in {p["id"] for p in got}
    page.reload()
    assert page.locator("#products").get_by_text("IMP-3").count() == 1
    w.clean()


def test_the_import_route_checks_its_caller(console: Any, world: dict[str, Any]) -> None:
    net = world["a"]["network"]["id"]
    chunk = {
        "network_id": net,
        "format": "csv",
        "header": "id,title,available,colour,price",
        "lines": ['CSV-1,"Mug, large",yes,blue,4', "CSV-2,Plate,maybe,red,4", ',"no id",1,x,4'],
        "first_line": 2,
    }
    ops = console("admin")
    cookie = {"cookie": f"adserver_session={ops.session}"}
    r = ops.http.post("/console/catalog/import", json=chunk, headers=cookie)
    assert r.status_code == 403  # no CSRF header
    r = ops.http.post(
        "/console/catalog/import", json=chunk, headers={**cookie, "x-csrf-token": ops.csrf}
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["upserted"] == 1
    assert [x["line"] for x in answer["rejected"]] == [3, 4]
    assert "available" in answer["rejected"][0]["reason"]
    for bad in ({**chunk, "format": "xml"}, {**chunk, "lines": ["x"] * 1001}, {"lines": 1}):
        r = ops.http.post(
            "/console/catalog/import", json=bad, headers={**cookie, "x-csrf-token": ops.csrf}
        )
        assert r.status_code == 400
    buyer = console("a")
    assert buyer.get("/console/catalog").status_code == 404
    r = buyer.http.post(
        "/console/catalog/import",
        json=chunk,
        headers={"cookie": f"adserver_session={buyer.session}", "x-csrf-token": buyer.csrf},
    )
    assert r.status_code == 403
