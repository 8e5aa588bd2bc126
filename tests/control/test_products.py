"""The catalog routes of the management API, against a real control process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx

from tests.control.network import created
from tests.procs import ADMIN_KEY, env_for

VEC = [0.5, -0.25, 1.0, 2.0] * 4  # no static model is dropped in here: any length is kept
MUG = {
    "id": "SKU-1",
    "title": "Stoneware Coffee Mug",
    "brand": "Acme",
    "category": "Home > Kitchen > Mugs",
    "price": "12.50",
    "image_url": "https://img.example/1.jpg",
    "data": {"color": "blue"},
}


def network(admin: httpx.Client, name: str = "Catalog net") -> int:
    return created(admin, "/v1/networks", {"name": name})["id"]


def test_put_get_replace_delete(admin: httpx.Client) -> None:
    net = network(admin)
    r = admin.put(f"/v1/networks/{net}/products/SKU-1", json=MUG)
    assert r.status_code == 201, r.text
    got = admin.get(f"/v1/networks/{net}/products/SKU-1").json()
    assert got["category"] == ["Home", "Kitchen", "Mugs"]
    assert got["price"] == 12.5 and got["available"] is True and got["vector"] is None
    assert got["data"] == {"color": "blue"}
    r = admin.put(
        f"/v1/networks/{net}/products/SKU-1",
        json={**MUG, "price": 9, "available": False, "vector": VEC},
    )
    assert r.status_code == 200
    got = admin.get(f"/v1/networks/{net}/products/SKU-1").json()
    assert got["price"] == 9 and got["available"] is False
    assert got["vector"] == VEC  # float32 holds these exactly
    assert admin.delete(f"/v1/networks/{net}/products/SKU-1").status_code == 200
    r = admin.get(f"/v1/networks/{net}/products/SKU-1")
    assert r.status_code == 404 and "SKU-1" in r.json()["error"]["message"]
    audit = admin.get("/v1/audit", params={"entity": "products"}).json()["data"]
    assert [a["action"] for a in audit[:3]] == ["delete", "update", "create"]


def test_product_ids_may_hold_slashes_and_spaces(admin: httpx.Client) -> None:
    net = network(admin)
    r = admin.put(f"/v1/networks/{net}/products/a/b c", json={**MUG, "id": "a/b c"})
    assert r.status_code == 201, r.text
    assert admin.get(f"/v1/networks/{net}/products/a/b c").json()["id"] == "a/b c"
    r = admin.put(f"/v1/networks/{net}/products/other", json=MUG)
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "id"


def test_batch_keeps_good_rows_and_names_every_bad_one(admin: httpx.Client) -> None:
    net = network(admin)
    good = [{**MUG, "id": f"G{i}", "title": f"Mug {i}"} for i in range(5)]
    bad = [
        {**MUG, "id": "B1", "price": -1},
        {**MUG, "id": "B2", "vector": [0, 0, 0]},
        {"id": "B3", "price": 1},
        {**MUG, "id": "B4", "colour": "red"},
        {**MUG, "id": "B5", "category": [f"c{i}" for i in range(11)]},
        "not an object",
    ]
    r = admin.post(f"/v1/networks/{net}/products", json={"products": good[:3] + bad + good[3:]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["upserted"] == 5 and body["deleted"] == 0
    rejected = {x["index"]: x for x in body["rejected"]}
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8]
    assert rejected[3]["id"] == "B1" and rejected[3]["fields"][0]["field"] == "price"
    assert rejected[4]["fields"][0] == {"field": "vector", "message": "must not be all zeros"}
    assert rejected[5]["fields"][0] == {"field": "title", "message": "required"}
    assert rejected[6]["fields"][0] == {"field": "colour", "message": "unknown field"}
    assert rejected[7]["fields"][0]["field"] == "category"
    assert rejected[8]["id"] is None
    listed = admin.get(f"/v1/networks/{net}/products").json()
    assert [p["id"] for p in listed["data"]] == ["G0", "G1", "G2", "G3", "G4"]
    r = admin.post(f"/v1/networks/{net}/products", json={"delete": ["G0", "G1", "missing"]})
    assert r.json() == {"upserted": 0, "deleted": 2, "rejected": []}


def test_list_pages_and_filters(admin: httpx.Client) -> None:
    net = network(admin)
    items = [
        {
            **MUG,
            "id": f"P{i:02d}",
            "brand": "Acme" if i % 2 else "Zed",
            "category": "Home > Kitchen > Mugs" if i < 6 else ["Home", "Garden"],
        }
        for i in range(10)
    ]
    assert (
        admin.post(f"/v1/networks/{net}/products", json={"products": items}).json()["upserted"]
        == 10
    )
    seen, cursor = [], None
    while True:
        page = admin.get(
            f"/v1/networks/{net}/products",
            params={"limit": 4, **({"cursor": cursor} if cursor else {})},
        ).json()
        seen += [p["id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"P{i:02d}" for i in range(10)]
    kitchen = admin.get(f"/v1/networks/{net}/products", params={"category": "Kitchen"}).json()
    assert [p["id"] for p in kitchen["data"]] == [f"P{i:02d}" for i in range(6)]
    assert (
        len(admin.get(f"/v1/networks/{net}/products", params={"category": "Home"}).json()["data"])
        == 10
    )
    assert (
        admin.get(f"/v1/networks/{net}/products", params={"category": "Kitch"}).json()["data"] == []
    )
    acme = admin.get(f"/v1/networks/{net}/products", params={"brand": "Acme"}).json()
    assert len(acme["data"]) == 5
    r = admin.get(f"/v1/networks/{net}/products", params={"colour": "x", "cursor": "zz"})
    assert r.status_code == 400


def test_scope_and_roles(admin: httpx.Client, control: str) -> None:
    a, b = network(admin, "A"), network(admin, "B")
    admin.put(f"/v1/networks/{b}/products/SKU-1", json=MUG)
    ro = admin.post("/v1/keys", json={"role": "readonly", "network_id": a}).json()["key"]
    net_admin = admin.post("/v1/keys", json={"role": "admin", "network_id": a}).json()["key"]
    with httpx.Client(base_url=control, headers={"X-Api-Key": ro}) as c:
        assert c.get(f"/v1/networks/{a}/products").status_code == 200
        assert c.put(f"/v1/networks/{a}/products/SKU-1", json=MUG).status_code == 403
        assert c.get(f"/v1/networks/{b}/products/SKU-1").status_code == 404
    with httpx.Client(base_url=control, headers={"X-Api-Key": net_admin}) as c:
        assert c.put(f"/v1/networks/{a}/products/SKU-1", json=MUG).status_code == 201
        assert c.put(f"/v1/networks/{b}/products/SKU-1", json=MUG).status_code == 404
        assert c.delete(f"/v1/networks/{b}/products/SKU-1").status_code == 404
    assert admin.get(f"/v1/networks/{b}/products/SKU-1").status_code == 200
    assert admin.get("/v1/networks/999999/products").status_code == 404


def test_out_of_range_numbers_are_a_clear_400(admin: httpx.Client) -> None:
    net = network(admin)
    r = admin.post(
        f"/v1/networks/{net}/products",
        content=b'{"products": [{"id": "x", "title": "t", "price": 1, "vector": [1, 1e999]}]}',
    )
    assert r.status_code == 400 and "out of range" in r.json()["error"]["message"]


def test_cli_imports_a_file_and_reports_rejected_lines(
    admin: httpx.Client, control: str, tmp_path: Any
) -> None:
    net = network(admin)
    jsonl = tmp_path / "catalog.jsonl"
    rows = [json.dumps({**MUG, "id": f"J{i}"}) for i in range(1200)]
    rows[10] = "{broken"
    rows[20] = json.dumps({**MUG, "id": "J20", "price": "x"})
    jsonl.write_text("\n".join(rows) + "\n")
    csv_file = tmp_path / "catalog.csv"
    csv_file.write_text(
        "id,title,brand,category,price,available,vector,colour\n"
        f"C1,Blue Mug,Acme,Home > Kitchen > Mugs,3.5,yes,{' '.join(map(str, VEC))},blue\n"
        "C2,Red Mug,Acme,Home > Kitchen > Mugs,4,maybe,,red\n"
        "C3,,Acme,Home,4,no,,\n"
        f"C4,Plate,Acme,Home,2.25,out_of_stock,{';'.join(map(str, VEC))},\n"
    )
    env = env_for("/nonexistent", ADSERVER_API_KEY=ADMIN_KEY)
    run = [
        sys.executable,
        "-m",
        "adserver",
        "products",
        "import",
        "--quiet",
        "--api",
        control,
        "--network",
        str(net),
    ]
    done = subprocess.run([*run, str(jsonl)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported 1,198 of 1,200 rows; rejected 2" in done.stdout
    assert "line 11: (no id): not valid JSON" in done.stdout
    assert "line 21: J20: price:" in done.stdout
    done = subprocess.run(
        [*run, str(csv_file)], env=env, capture_output=True, text=True, timeout=120
    )
    assert "imported 2 of 4 rows; rejected 2" in done.stdout, done.stdout + done.stderr
    assert "line 3: (no id): available: 'maybe' is not true or false" in done.stdout
    assert "line 4: C3: title: required" in done.stdout
    c1 = admin.get(f"/v1/networks/{net}/products/C1").json()
    assert c1["data"] == {"colour": "blue"} and c1["available"] is True
    assert c1["vector"] == VEC
    c4 = admin.get(f"/v1/networks/{net}/products/C4").json()
    assert c4["available"] is False and c4["price"] == 2.25 and c4["vector"] == VEC
    assert admin.get(f"/v1/networks/{net}/products/J1199").status_code == 200
    done = subprocess.run(
        [*run[:-1], "999999", str(csv_file)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and "network 999999 not found" in done.stderr
