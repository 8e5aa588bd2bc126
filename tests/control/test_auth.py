"""API keys, roles and tenant scoping, against a real control process."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.control.network import build, created


@pytest.fixture(scope="module")
def world(admin: httpx.Client) -> dict:
    """Two networks; an advertiser key for network A's advertiser; a read-only key."""
    a, b = build(admin, "A"), build(admin, "B")
    adv_key = admin.post(
        "/v1/keys",
        json={"role": "advertiser", "name": "acme", "advertiser_id": a["advertiser"]["id"]},
    )
    assert adv_key.status_code == 201, adv_key.text
    ro_key = admin.post("/v1/keys", json={"role": "readonly", "network_id": a["network"]["id"]})
    net_admin = admin.post("/v1/keys", json={"role": "admin", "network_id": a["network"]["id"]})
    other = created(admin, "/v1/advertisers", {"network_id": a["network"]["id"], "name": "Rival"})
    other_campaign = created(admin, "/v1/campaigns", {"advertiser_id": other["id"], "name": "R"})
    return {
        "a": a,
        "b": b,
        "adv": adv_key.json(),
        "ro": ro_key.json(),
        "net_admin": net_admin.json(),
        "other_campaign": other_campaign,
    }


def client(control: str, key: str, header: str = "X-Api-Key") -> httpx.Client:
    return httpx.Client(base_url=control, headers={header: key}, timeout=30)


@pytest.fixture
def adv(control: str, world: dict) -> Iterator[httpx.Client]:
    with client(control, world["adv"]["key"]) as c:
        yield c


def test_missing_and_wrong_keys_get_401(anon: httpx.Client, control: str) -> None:
    assert anon.get("/v1/networks").status_code == 401
    for bad in ("nope", "ak_000000000000_wrong", "ak__", "test-admin-key-012345678"):
        with client(control, bad) as c:
            r = c.get("/v1/networks")
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_kevel_header_is_accepted(control: str, world: dict) -> None:
    with client(control, world["adv"]["key"], "X-Adzerk-ApiKey") as c:
        assert c.get("/v1/me").json()["advertiser_id"] == world["a"]["advertiser"]["id"]


def test_key_is_shown_once_and_stored_hashed(
    admin: httpx.Client, world: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    listed = admin.get("/v1/keys").json()["data"]
    assert world["adv"]["key_id"] in [k["key_id"] for k in listed]
    assert all("key" not in k and "hash" not in k for k in listed)
    secret = world["adv"]["key"].split("_", 2)[2]
    db = next(Path(tmp_path_factory.getbasetemp()).glob("control*/control.sqlite3"))
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert secret not in dump and world["adv"]["key_id"] in dump


def test_advertiser_sees_only_its_own_objects(adv: httpx.Client, world: dict) -> None:
    a = world["a"]
    campaigns = adv.get("/v1/campaigns").json()["data"]  # its own (another test adds one)
    assert a["campaign"]["id"] in [c["id"] for c in campaigns]
    assert {c["advertiser_id"] for c in campaigns} == {a["advertiser"]["id"]}
    assert adv.get(f"/v1/campaigns/{world['other_campaign']['id']}").status_code == 404
    assert adv.get(f"/v1/flights/{world['b']['flight']['id']}").status_code == 404
    assert adv.get(f"/v1/networks/{world['b']['network']['id']}").status_code == 404
    # its network's inventory is readable, so it can target zones
    assert adv.get(f"/v1/zones/{a['zone']['id']}").status_code == 200


def test_advertiser_writes_its_own_demand_only(adv: httpx.Client, world: dict) -> None:
    a = world["a"]
    mine = adv.post("/v1/campaigns", json={"advertiser_id": a["advertiser"]["id"], "name": "Mine"})
    assert mine.status_code == 201
    theirs = adv.post(
        "/v1/campaigns",
        json={"advertiser_id": world["other_campaign"]["advertiser_id"], "name": "Theirs"},
    )
    assert theirs.status_code == 400
    assert "not found" in theirs.json()["error"]["fields"][0]["message"]
    assert (
        adv.patch(f"/v1/campaigns/{world['other_campaign']['id']}", json={"name": "x"}).status_code
        == 404
    )
    r = adv.post("/v1/sites", json={"network_id": a["network"]["id"], "name": "s"})
    assert r.status_code == 403
    r = adv.post(
        "/v1/creatives",
        json={
            "advertiser_id": a["advertiser"]["id"],
            "ad_type_id": a["ad_type"]["id"],
            "name": "x",
            "kind": "html",
            "body": "<p>",
            "status": "approved",
        },
    )
    assert r.status_code == 403 and "approve" in r.json()["error"]["message"]
    assert adv.get("/v1/keys").status_code == 403
    assert adv.get("/v1/audit").status_code == 403


def test_readonly_reads_but_never_writes(control: str, world: dict) -> None:
    with client(control, world["ro"]["key"]) as ro:
        assert ro.get(f"/v1/flights/{world['a']['flight']['id']}").status_code == 200
        assert ro.get(f"/v1/flights/{world['b']['flight']['id']}").status_code == 404
        r = ro.patch(f"/v1/flights/{world['a']['flight']['id']}", json={"name": "x"})
        assert r.status_code == 403
        assert ro.post("/v1/networks", json={"name": "n"}).status_code == 403


def test_network_admin_is_confined_to_its_network(control: str, world: dict) -> None:
    with client(control, world["net_admin"]["key"]) as na:
        assert na.get(f"/v1/sites/{world['b']['site']['id']}").status_code == 404
        assert na.post("/v1/networks", json={"name": "n"}).status_code == 403
        r = na.post("/v1/sites", json={"network_id": world["b"]["network"]["id"], "name": "s"})
        assert r.status_code == 400
        r = na.post(
            "/v1/keys", json={"role": "readonly", "network_id": world["b"]["network"]["id"]}
        )
        assert r.status_code == 400
        ok = na.post("/v1/sites", json={"network_id": world["a"]["network"]["id"], "name": "s"})
        assert ok.status_code == 201


def test_revoked_key_stops_working(admin: httpx.Client, control: str) -> None:
    made = admin.post("/v1/keys", json={"role": "readonly"}).json()
    with client(control, made["key"]) as c:
        assert c.get("/v1/me").status_code == 200
        assert admin.post(f"/v1/keys/{made['key_id']}/revoke").json()["revoked_at"]
        assert c.get("/v1/me").status_code == 401
    assert admin.post("/v1/keys/nosuchkey/revoke").status_code == 404


def test_key_creation_is_validated(admin: httpx.Client) -> None:
    r = admin.post("/v1/keys", json={"role": "advertiser"})
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "advertiser_id"
    r = admin.post("/v1/keys", json={"role": "owner"})
    assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "role"


def test_pacing_state_is_scoped_like_its_flight(adv: httpx.Client, world: dict) -> None:
    own, other = world["a"]["flight"]["id"], world["b"]["flight"]["id"]
    assert adv.get(f"/v1/flights/{other}/pacing").status_code == 404
    deadline = time.monotonic() + 15
    while True:  # the controller steps every 2 s
        body = adv.get(f"/v1/flights/{own}/pacing").json()
        if body["paced"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["paced"] and body["mode"] == "even" and body["metric"] == "spend"
    assert body["goal"] == 100.25 and body["actual"] == 0 and 0 <= body["throttle"] <= 1
    assert len(body["hourly_plan"]) == 24 and body["hourly_plan"][-1] == pytest.approx(100.25)
    day = body["day_hourly_plan"]  # the day's own plan: non-decreasing, to the goal
    assert len(day) == 24 and day[-1] == pytest.approx(100.25)
    assert all(a <= b for a, b in zip(day, day[1:])) and body["day_plan"] <= day[-1]
    assert body["plan"] <= body["goal"]


def test_a_reviewed_creatives_content_change_goes_back_to_review(
    adv: httpx.Client, admin: httpx.Client, world: dict
) -> None:
    a = world["a"]
    r = adv.post(
        "/v1/creatives",
        json={
            "advertiser_id": a["advertiser"]["id"],
            "ad_type_id": a["ad_type"]["id"],
            "name": "banner",
            "kind": "image",
            "image_url": "https://img.example/ok.png",
            "status": "pending",
        },
    )
    assert r.status_code == 201
    cid = r.json()["id"]
    r = admin.patch(f"/v1/creatives/{cid}", json={"status": "approved", "review_reason": "ok"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    # Attack: approved, then swap the image for one nobody reviewed
    r = adv.patch(f"/v1/creatives/{cid}", json={"image_url": "https://img.example/swap.png"})
    assert r.status_code == 200 and r.json()["status"] == "pending"
    # a change that is not content (its name) keeps a review
    admin.patch(f"/v1/creatives/{cid}", json={"status": "approved"})
    r = adv.patch(f"/v1/creatives/{cid}", json={"name": "renamed"})
    assert r.json()["status"] == "approved"
    # Attack: the advertiser writes the reviewer's reason, or approves itself
    r = adv.patch(f"/v1/creatives/{cid}", json={"review_reason": "approved by legal"})
    assert r.status_code == 403
    admin.patch(f"/v1/creatives/{cid}", json={"status": "rejected", "review_reason": "blurry"})
    r = adv.patch(f"/v1/creatives/{cid}", json={"status": "approved"})
    assert r.status_code == 403
    # a rejected creative resubmitted with new content is pending again, its reason kept
    r = adv.patch(f"/v1/creatives/{cid}", json={"image_url": "https://img.example/sharp.png"})
    assert r.json()["status"] == "pending" and r.json()["review_reason"] == "blurry"
