"""The management API's entity routes, against a real control process."""

from __future__ import annotations

import httpx
import pytest

from tests.control.network import END_UTC, build, created


def errors_of(r: httpx.Response) -> dict[str, str]:
    body = r.json()
    return {f["field"]: f["message"] for f in body["error"].get("fields", [])}


def test_full_network_round_trip(admin: httpx.Client) -> None:
    n = build(admin)
    flight = admin.get(f"/v1/flights/{n['flight']['id']}").json()
    assert flight["price"] == 2.5
    assert flight["daily_cap"] == {"metric": "spend", "value": 100.25}
    assert flight["end"] == END_UTC  # stored and shown in UTC
    assert flight["keywords"] == [
        {"text": "shoes", "match": "phrase", "negative": False, "bid": None}
    ]
    assert flight["archived"] is False and flight["id"] == n["flight"]["id"]
    ad = admin.get(f"/v1/ads/{n['ad']['id']}").json()
    assert ad["weight"] == 100 and ad["creative_id"] == n["creative"]["id"]


def test_money_is_exact(admin: httpx.Client) -> None:
    n = build(admin)
    r = admin.patch(f"/v1/flights/{n['flight']['id']}", json={"price": "0.000001"})
    assert r.status_code == 200, r.text
    assert r.text.count('"price":0.000001') == 1
    r = admin.patch(f"/v1/flights/{n['flight']['id']}", json={"price": "98765.891011"})
    assert '"price":98765.891011' in r.text
    r = admin.patch(
        f"/v1/flights/{n['flight']['id']}",
        json={"lifetime_cap": {"metric": "spend", "value": "987654321.123456"}},
    )
    assert '"value":987654321.123456' in r.text


@pytest.mark.parametrize(
    "body, field",
    [
        ({"price": "100000.000001"}, "price"),  # past the largest bid
        ({"price": 1e30}, "price"),
        ({"keywords": [{"text": "x", "bid": "250000"}]}, "keywords[0].bid"),
        ({"daily_cap": {"metric": "impressions", "value": 1e30}}, "daily_cap.value"),
        ({"lifetime_cap": {"metric": "spend", "value": "1000000000.5"}}, "lifetime_cap.value"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "start"),
        ({"end": "9999-12-31T23:59:59Z"}, "end"),
    ],
)
def test_numbers_and_times_are_range_checked_at_the_edge(
    admin: httpx.Client, body: dict, field: str
) -> None:
    """Attack: numbers the ledger or the pacer cannot hold (a cap of 1e30 made the pacer
    throw for every network), times that overflow when moved to UTC. Each is a 400 naming
    the field; nothing is written."""
    n = build(admin)
    fid = n["flight"]["id"]
    before = admin.get(f"/v1/flights/{fid}").json()
    r = admin.patch(f"/v1/flights/{fid}", json=body)
    assert r.status_code == 400, r.text
    assert field in {f["field"] for f in r.json()["error"]["fields"]}, r.text
    assert admin.get(f"/v1/flights/{fid}").json() == before


@pytest.mark.parametrize(
    "path",
    [
        "/v1/flights/%C2%B2",
        "/v1/ads/%C2%B9",
        "/v1/networks/%D9%A1/archive",
        "/v1/flights/0",
        "/v1/flights/99999999999999999999999",
    ],
)
def test_ids_are_ascii_digits(admin: httpx.Client, path: str) -> None:
    """Attack: '²' and '١' pass str.isdigit(); '١' once read as 1 and archived network 1."""
    method = admin.post if path.endswith("/archive") else admin.get
    r = method(path)
    assert r.status_code == 404, r.text
    assert admin.get("/v1/networks/1").json().get("archived") in (False, None)


@pytest.mark.parametrize("query", [{"limit": "²"}, {"limit": "-١"}, {"before_id": "⁵"}])
def test_query_numbers_are_ascii_digits(admin: httpx.Client, query: dict) -> None:
    path = "/v1/audit" if "before_id" in query else "/v1/flights"
    r = admin.get(path, params=query)
    assert r.status_code == 400 and list(query)[0] in r.text


def test_deep_json_is_a_400(admin: httpx.Client) -> None:
    """Attack: a body nested 5,000 deep (a RecursionError, a 500, before); an integer past
    int64 (it reached SQLite)."""
    r = admin.post("/v1/networks", content=b'{"a":' * 5000 + b"1" + b"}" * 5000)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = admin.post("/v1/advertisers", json={"network_id": 9223372036854775808, "name": "x"})
    assert r.status_code == 400 and "network_id" in r.text


def test_partial_update_changes_only_given_fields(admin: httpx.Client) -> None:
    n = build(admin)
    fid = n["flight"]["id"]
    r = admin.patch(f"/v1/flights/{fid}", json={"name": "Renamed", "pacing": "asap"})
    assert r.status_code == 200
    after = r.json()
    assert after["name"] == "Renamed" and after["pacing"] == "asap"
    assert after["keywords"] == n["flight"]["keywords"]
    assert after["updated_at"] > n["flight"]["updated_at"]


@pytest.mark.parametrize(
    "body, field, fragment",
    [
        ({"bogus": 1}, "bogus", "unknown field"),
        ({"price": "abc"}, "price", "decimal"),
        ({"price": -1}, "price", "negative"),
        ({"price": "0.0000001"}, "price", "decimal places"),
        ({"rate_type": "cpx"}, "rate_type", "enum"),
        ({"start": "2026-01-01T00:00:00"}, "start", "timezone"),
        ({"end": "2025-01-01T00:00:00Z"}, "end", "after start"),
        ({"custom_targeting": "$a == "}, "custom_targeting", "position"),
        ({"keywords": [{"text": "x", "match": "fuzzy"}]}, "keywords[0].match", "enum"),
        ({"daily_cap": {"metric": "clicks", "value": 1.5}}, "daily_cap.value", "whole"),
        ({"frequency_caps": [{"count": 0, "window_seconds": 60}]}, "frequency_caps[0].count", ">="),
        ({"priority_id": 999999}, "priority_id", "not found"),
        ({"zone_ids": [999999]}, "zone_ids[0]", "not found"),
        ({"campaign_id": 999999}, "campaign_id", "cannot be changed"),
        ({"id": 5}, "id", "read-only"),
    ],
)
def test_update_validation_names_the_field(
    admin: httpx.Client, body: dict, field: str, fragment: str
) -> None:
    n = build(admin)
    fid = n["flight"]["id"]
    r = admin.patch(f"/v1/flights/{fid}", json=body)
    assert r.status_code == 400, r.text
    assert fragment in errors_of(r)[field]
    assert admin.get(f"/v1/flights/{fid}").json() == n["flight"]  # nothing written


def test_every_bad_field_is_reported_at_once(admin: httpx.Client) -> None:
    n = build(admin)
    r = admin.post(
        "/v1/flights",
        json={
            "campaign_id": n["campaign"]["id"],
            "priority_id": "two",
            "name": "",
            "start": "2026-01-01T00:00:00Z",
            "price": -3,
            "pacing": "sometimes",
            "extra": True,
        },
    )
    assert r.status_code == 400
    assert set(errors_of(r)) == {"priority_id", "name", "price", "pacing", "extra"}


def test_every_problem_is_reported_at_once(admin: httpx.Client) -> None:
    n = build(admin)
    body = {
        "campaign_id": n["campaign"]["id"],
        "priority_id": n["priority"]["id"],
        "name": "four problems",
        "start": "2026-02-01T00:00:00Z",
        "end": "2026-01-01T00:00:00Z",
        "price": "1.1234567",
        "colour": "red",
        "custom_targeting": '$page_type in ["search"',
    }
    r = admin.post("/v1/flights", json=body)
    assert r.status_code == 400
    errors = errors_of(r)
    assert set(errors) == {"colour", "price", "end", "custom_targeting"}, errors
    assert errors["end"] == "must be after start" and "decimal places" in errors["price"]
    # a rule that depends on a bad field waits for it: with start bad, end is not judged
    r = admin.post("/v1/flights", json={**body, "start": "soon", "price": "1"})
    assert set(errors_of(r)) == {"colour", "start", "custom_targeting"}


def test_create_requires_fields(admin: httpx.Client) -> None:
    r = admin.post("/v1/flights", json={})
    assert r.status_code == 400
    assert {"campaign_id", "priority_id", "name", "start", "price"} <= set(errors_of(r))


def test_flight_on_archived_campaign_is_refused(admin: httpx.Client) -> None:
    n = build(admin)
    cid = n["campaign"]["id"]
    assert admin.post(f"/v1/campaigns/{cid}/archive").json()["archived"] is True
    body = {
        "campaign_id": cid,
        "priority_id": n["priority"]["id"],
        "name": "late",
        "start": "2026-01-01T00:00:00Z",
        "price": 1,
    }
    r = admin.post("/v1/flights", json=body)
    assert r.status_code == 400
    assert "archived" in errors_of(r)["campaign_id"]
    r = admin.patch(f"/v1/campaigns/{cid}", json={"name": "x"})
    assert r.status_code == 400 and "restore it first" in r.json()["error"]["fields"][0]["message"]


def test_archived_entities_can_be_restored(admin: httpx.Client) -> None:
    n = build(admin)
    cid, fid = n["campaign"]["id"], n["flight"]["id"]
    assert admin.post(f"/v1/flights/{fid}/archive").json()["archived"] is True
    assert admin.post(f"/v1/campaigns/{cid}/archive").json()["archived"] is True
    # the flight's campaign is archived: restore that first
    r = admin.post(f"/v1/flights/{fid}/restore")
    assert r.status_code == 400 and "archived" in errors_of(r)["campaign_id"]
    assert admin.post(f"/v1/campaigns/{cid}/restore").json()["archived"] is False
    r = admin.post(f"/v1/flights/{fid}/restore")
    assert r.status_code == 200 and r.json()["archived"] is False
    assert admin.post(f"/v1/flights/{fid}/restore").json()["archived"] is False  # idempotent
    assert admin.patch(f"/v1/campaigns/{cid}", json={"name": "back"}).json()["name"] == "back"
    actions = [
        e["action"]
        for e in admin.get("/v1/audit", params={"entity": "flights", "entity_id": fid}).json()[
            "data"
        ]
    ]
    assert actions.count("restore") == 1 and actions.count("archive") == 1
    # another network's key cannot restore it
    other = admin.post(
        "/v1/keys",
        json={"role": "admin", "network_id": build(admin, "O")["network"]["id"], "name": "other"},
    ).json()["key"]
    r = httpx.post(f"{admin.base_url}/v1/flights/{fid}/restore", headers={"X-Api-Key": other})
    assert r.status_code == 404
    # nor can a read-only key of its own network, nor an id out of range
    ro = admin.post(
        "/v1/keys", json={"role": "readonly", "network_id": n["network"]["id"], "name": "ro"}
    ).json()["key"]
    assert admin.post(f"/v1/flights/{fid}/archive").status_code == 200
    r = httpx.post(f"{admin.base_url}/v1/flights/{fid}/restore", headers={"X-Api-Key": ro})
    assert r.status_code == 403
    assert admin.get(f"/v1/flights/{fid}").json()["archived"] is True
    assert admin.post(f"/v1/flights/{2**70}/restore").status_code == 404


def test_cross_tenant_references_are_refused(admin: httpx.Client) -> None:
    a, b = build(admin, "A"), build(admin, "B")
    r = admin.post(
        "/v1/ads", json={"flight_id": a["flight"]["id"], "creative_id": b["creative"]["id"]}
    )
    assert r.status_code == 400 and "creative_id" in errors_of(r)
    other = created(admin, "/v1/advertisers", {"network_id": a["network"]["id"], "name": "Z"})
    creative = created(
        admin,
        "/v1/creatives",
        {
            "advertiser_id": other["id"],
            "ad_type_id": a["ad_type"]["id"],
            "name": "c",
            "kind": "html",
            "body": "<b>hi</b>",
        },
    )
    r = admin.post("/v1/ads", json={"flight_id": a["flight"]["id"], "creative_id": creative["id"]})
    assert r.status_code == 400 and "another advertiser" in errors_of(r)["creative_id"]


def test_creative_kind_rules(admin: httpx.Client) -> None:
    n = build(admin)
    r = admin.post(
        "/v1/creatives",
        json={
            "advertiser_id": n["advertiser"]["id"],
            "ad_type_id": n["ad_type"]["id"],
            "name": "p",
            "kind": "product",
        },
    )
    assert r.status_code == 400 and "product_id" in errors_of(r)


def test_malformed_json_and_oversized_body(admin: httpx.Client) -> None:
    r = admin.post(
        "/v1/networks", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = admin.post("/v1/networks", json=["not", "an", "object"])
    assert r.status_code == 400 and "$" in errors_of(r)
    r = admin.post("/v1/networks", json={"name": "x" * 300_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_list_filters_and_stable_cursor_pagination(admin: httpx.Client) -> None:
    n = build(admin)
    adv = n["advertiser"]["id"]
    ids = [n["campaign"]["id"]] + [
        created(admin, "/v1/campaigns", {"advertiser_id": adv, "name": f"c{i}"})["id"]
        for i in range(6)
    ]
    seen, cursor = [], None
    while True:
        params = {"advertiser_id": adv, "limit": 3} | ({"cursor": cursor} if cursor else {})
        page = admin.get("/v1/campaigns", params=params).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # a row created between pages appears at the end, never shifts the pages
        if len(seen) == 3:
            ids.append(created(admin, "/v1/campaigns", {"advertiser_id": adv, "name": "new"})["id"])
    assert seen == ids
    admin.post(f"/v1/campaigns/{ids[0]}/archive")
    live = admin.get("/v1/campaigns", params={"advertiser_id": adv, "limit": 100}).json()["data"]
    assert ids[0] not in [c["id"] for c in live]
    everything = admin.get("/v1/campaigns", params={"advertiser_id": adv, "archived": "all"})
    assert ids[0] in [c["id"] for c in everything.json()["data"]]


def test_list_rejects_unknown_filters(admin: httpx.Client) -> None:
    r = admin.get("/v1/flights", params={"colour": "red", "limit": 0, "cursor": "zzz"})
    assert r.status_code == 400
    assert {"colour", "limit"} <= set(errors_of(r))
    r = admin.get("/v1/flights", params={"cursor": "zzz"})
    assert r.status_code == 400 and "cursor" in errors_of(r)


def test_unknown_ids_and_routes_are_json_404(admin: httpx.Client) -> None:
    for path in ("/v1/flights/999999", "/v1/flights/abc", "/v1/nothing"):
        r = admin.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = admin.delete("/v1/flights")
    assert r.status_code == 405 and r.headers["content-type"] == "application/json"


def test_custom_pacing_needs_24_hourly_weights(admin: httpx.Client) -> None:
    n = build(admin, "Curves")
    flight = n["flight"]["id"]
    r = admin.patch(f"/v1/flights/{flight}", json={"pacing": "custom"})
    assert r.status_code == 400 and "pacing_curve" in errors_of(r)
    r = admin.patch(f"/v1/flights/{flight}", json={"pacing": "custom", "pacing_curve": [1] * 23})
    assert r.status_code == 400 and "pacing_curve" in errors_of(r)
    r = admin.patch(f"/v1/flights/{flight}", json={"pacing_curve": [1] * 24})
    assert r.status_code == 400 and errors_of(r)["pacing_curve"] == 'only with pacing "custom"'
    curve = [0] * 8 + [1] * 16
    r = admin.patch(f"/v1/flights/{flight}", json={"pacing": "custom", "pacing_curve": curve})
    assert r.status_code == 200 and r.json()["pacing_curve"] == curve
    r = admin.get(f"/v1/flights/{flight}/pacing")
    assert r.status_code == 200 and r.json()["flight_id"] == flight
    assert admin.get("/v1/flights/99999999/pacing").status_code == 404


def test_year_one_is_a_400_in_reports_and_evaluations(admin: httpx.Client) -> None:
    """Attack: 0001-01-01T00:00:00+01:00 overflows when moved to UTC (a 500 before)."""
    year_one = "0001-01-01T00:00:00+01:00"
    r = admin.get("/v1/reports", params={"from": year_one})
    assert r.status_code == 400 and "from" in {f["field"] for f in r.json()["error"]["fields"]}
    r = admin.put(
        "/v1/personalizer/evaluations/year-one",
        json={
            "name": "x",
            "startTime": year_one,
            "endTime": "2026-01-01T00:00:00Z",
            "policies": [{"name": "p", "arguments": "--cb_explore_adf --epsilon 0.2"}],
        },
    )
    assert r.status_code == 400, r.text
