"""A console user reaches what its scope reaches, through the management API's own checks:
URL tampering, forged form fields and the user API's own scoping."""

from __future__ import annotations

from typing import Any

import httpx

from tests.console.conftest import PASSWORD


def test_another_advertisers_campaign_is_not_found(console: Any, world: dict[str, Any]) -> None:
    c = console("a")
    theirs = world["b"]["campaign"]
    r = c.get(f"/console/campaigns/{theirs['id']}")
    assert r.status_code == 404 and theirs["name"] not in r.text
    for raw in ("0", "-1", "99999999999999999999", "1%20OR%201", "../v1/campaigns"):
        r = c.get(f"/console/campaigns/{raw}")
        assert r.status_code in (404, 303), raw  # never a 500, never a page of data
    mine = world["a"]["campaign"]
    r = c.get(f"/console/campaigns/{mine['id']}")
    assert r.status_code == 200 and mine["name"] in r.text
    assert f'href="/console/flights?campaign_id={mine["id"]}"' in r.text
    r = c.get(f"/console/flights?campaign_id={mine['id']}")
    assert r.status_code == 200 and world["a"]["flight"]["name"] in r.text
    # a filter naming another advertiser's campaign lists nothing of theirs
    r = c.get(f"/console/flights?campaign_id={theirs['id']}")
    assert world["b"]["flight"]["name"] not in r.text
    # nor does a page of theirs under another kind, nor a kind outside the menu
    assert c.get(f"/console/flights/{world['b']['flight']['id']}").status_code == 404
    assert c.get(f"/console/creatives/{world['b']['creative']['id']}").status_code == 404
    assert c.get("/console/networks").status_code == 404
    assert c.get("/console/api_keys").status_code == 404


def test_an_advertiser_cannot_create_for_another_advertiser(
    console: Any, world: dict[str, Any], admin: httpx.Client
) -> None:
    c = console("a")
    name = "Forged for B"
    r = c.post(
        "/console/campaigns/new", {"name": name, "advertiser_id": world["b"]["advertiser"]["id"]}
    )
    assert r.status_code == 400
    theirs = admin.get("/v1/campaigns", params={"advertiser_id": world["b"]["advertiser"]["id"]})
    assert name not in theirs.text


def test_a_bad_field_is_shown_at_the_field_and_a_good_form_creates(
    console: Any, world: dict[str, Any], admin: httpx.Client
) -> None:
    c = console("a")
    mine = world["a"]["advertiser"]["id"]
    r = c.post("/console/campaigns/new", {"name": "", "advertiser_id": mine})
    assert r.status_code == 400
    assert 'id="name" name="name" value="" aria-invalid="true"' in r.text
    assert 'id="name-error"' in r.text
    r = c.post("/console/campaigns/new", {"name": "Summer <b>sale</b>", "advertiser_id": mine})
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert "Summer &lt;b&gt;sale&lt;/b&gt;" in page.text  # escaped, not markup
    made = admin.get("/v1/campaigns", params={"advertiser_id": mine}).json()["data"]
    assert "Summer <b>sale</b>" in {x["name"] for x in made}
    audit = admin.get("/v1/audit", params={"entity": "campaigns", "action": "create"}).json()
    assert any(row["key_id"] == f"user:{world['people']['a']['email']}" for row in audit["data"])


def test_only_admins_manage_users_and_only_in_their_network(
    world: dict[str, Any], admin: httpx.Client, control: str
) -> None:
    net_a = world["a"]["network"]["id"]
    key = admin.post("/v1/keys", json={"role": "admin", "network_id": net_a}).json()["key"]
    buyer = admin.post(
        "/v1/keys", json={"role": "advertiser", "advertiser_id": world["a"]["advertiser"]["id"]}
    ).json()["key"]
    with httpx.Client(base_url=control, timeout=30) as http:
        body = {"email": "x@example.com", "password": PASSWORD, "role": "admin"}
        r = http.post("/v1/users", json=body, headers={"X-Api-Key": buyer})
        assert r.status_code == 403
        r = http.post(
            "/v1/users",
            json={**body, "network_id": world["b"]["network"]["id"]},
            headers={"X-Api-Key": key},
        )
        assert r.status_code == 400 and r.json()["error"]["fields"][0]["field"] == "network_id"
        r = http.post(
            "/v1/users",
            json={
                **body,
                "role": "advertiser",
                "advertiser_id": world["b"]["advertiser"]["id"],
            },
            headers={"X-Api-Key": key},
        )
        assert r.status_code == 400
        listed = http.get("/v1/users", headers={"X-Api-Key": key}).json()["data"]
        assert {u["network_id"] for u in listed} <= {net_a}
        assert world["people"]["b"]["email"] not in str(listed)
        assert "password" not in str(listed)
        b_user = next(
            u
            for u in admin.get("/v1/users").json()["data"]
            if u["email"] == world["people"]["b"]["email"]
        )
        r = http.post(f"/v1/users/{b_user['id']}/disable", headers={"X-Api-Key": key})
        assert r.status_code == 404


def test_user_fields_are_checked_where_they_enter(admin: httpx.Client) -> None:
    r = admin.post(
        "/v1/users",
        json={"email": "not-an-email", "password": "short", "role": "advertiser"},
    )
    assert r.status_code == 400
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert {"email", "password", "advertiser_id"} <= fields
    r = admin.post("/v1/users", json={"email": "a@b.example", "password": PASSWORD, "role": "god"})
    assert r.status_code == 400


def test_a_creative_preview_is_scoped_and_runs_nothing(console: Any, world: dict[str, Any]) -> None:
    c = console("a")
    mine, theirs = world["a"]["creative"], world["b"]["creative"]
    r = c.get(f"/console/preview/creatives/{mine['id']}")
    assert r.status_code == 200
    policy = r.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert c.get(f"/console/preview/creatives/{theirs['id']}").status_code == 404
    signed_out = console()
    assert signed_out.get(f"/console/preview/creatives/{mine['id']}").status_code == 401


def test_only_admins_review(console: Any, world: dict[str, Any], admin: Any) -> None:
    c = console("a")
    mine = world["a"]["creative"]
    assert c.get("/console/review").status_code == 404
    r = c.post("/console/review", {"ids": str(mine["id"]), "verdict": "approved"})
    assert r.status_code == 404
    assert admin.get(f"/v1/creatives/{mine['id']}").json()["status"] == mine["status"]


def test_a_preview_of_another_networks_site_is_refused(console: Any, world: dict[str, Any]) -> None:
    c = console("a")
    b = world["b"]
    r = c.get(
        f"/console/preview?site_id={b['site']['id']}&ad_type_id={b['ad_type']['id']}&count=2&show=1"
    )
    assert r.status_code == 400 and 'id="site_id-error"' in r.text
    for count in ("0", "11", "-1", "1e9", "99999999999999999999"):
        r = c.get(
            f"/console/preview?site_id={world['a']['site']['id']}"
            f"&ad_type_id={world['a']['ad_type']['id']}&count={count}&show=1"
        )
        assert r.status_code == 400 and 'id="count-error"' in r.text, count


def test_a_read_only_key_manages_no_users(
    world: dict[str, Any], admin: httpx.Client, control: str
) -> None:
    key = admin.post("/v1/keys", json={"role": "readonly"}).json()["key"]
    with httpx.Client(base_url=control, headers={"X-Api-Key": key}, timeout=30) as ro:
        body = {"email": "ro@example.com", "password": PASSWORD, "role": "admin"}
        assert ro.post("/v1/users", json=body).status_code == 403
        assert ro.get("/v1/users").status_code == 403
        assert ro.post("/v1/users/1/disable").status_code == 403
    # deep JSON is a 400, never a 500
    deep = "[" * 5000 + "]" * 5000
    r = admin.post("/v1/users", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400
