"""Every change leaves an audit row: who, when, what changed."""

from __future__ import annotations

import httpx

from tests.control.network import build


def test_create_update_archive_are_audited(admin: httpx.Client, control: str) -> None:
    n = build(admin)
    fid = n["flight"]["id"]
    key = admin.post("/v1/keys", json={"role": "admin", "name": "ops"}).json()
    with httpx.Client(base_url=control, headers={"X-Api-Key": key["key"]}) as ops:
        assert ops.patch(f"/v1/flights/{fid}", json={"price": 3, "name": "F2"}).status_code == 200
        assert ops.post(f"/v1/flights/{fid}/archive").status_code == 200
    entries = admin.get("/v1/audit", params={"entity": "flights", "entity_id": fid}).json()["data"]
    assert [e["action"] for e in entries] == ["archive", "update", "create"]
    archive, update, create = entries
    assert create["key_id"] == "bootstrap" and create["before"] is None
    assert create["after"]["name"] == "F1"
    assert update["key_id"] == key["key_id"]
    assert update["changes"] == {
        "price": {"before": 2.5, "after": 3},
        "name": {"before": "F1", "after": "F2"},
    }
    assert archive["changes"] == {"archived": {"before": False, "after": True}}
    assert create["at"] < update["at"] < archive["at"]


def test_refused_change_leaves_no_audit_row(admin: httpx.Client) -> None:
    n = build(admin)
    fid = n["flight"]["id"]
    assert admin.patch(f"/v1/flights/{fid}", json={"price": -1}).status_code == 400
    entries = admin.get("/v1/audit", params={"entity": "flights", "entity_id": fid}).json()["data"]
    assert [e["action"] for e in entries] == ["create"]
