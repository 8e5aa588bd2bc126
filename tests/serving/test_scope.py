"""Scope on the decision port: an explain shows only what the key may read; audit rows and
the quarantine too (attacks with the keys of other tenants, against a real stack)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from adserver.formats.segment import read_records
from tests.procs import ADMIN_KEY
from tests.serving.conftest import Stack, golden_stack
from tests.serving.test_beacons import events as logged  # a worker's event log

SEARCH = {
    "placements": [{"networkId": 1, "siteId": 1, "zoneIds": [2], "adTypes": [2], "count": 3}],
    "user": {"key": "scope-user"},
}


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, str]]]:
    """The golden network (1) and a second network, with keys of each kind."""
    with golden_stack(tmp_path_factory.mktemp("scope")) as s:
        other = s.admin.post("/v1/networks", json={"name": "Rival"}).json()["id"]
        keys = {
            name: s.admin.post("/v1/keys", json=body).json()["key"]
            for name, body in (
                ("rival admin", {"role": "admin", "network_id": other}),
                ("rival readonly", {"role": "readonly", "network_id": other}),
                ("zeta readonly", {"role": "readonly", "network_id": 1, "advertiser_id": 2}),
                ("zeta", {"role": "advertiser", "advertiser_id": 2}),
                ("readonly", {"role": "readonly", "network_id": 1}),
                ("admin", {"role": "admin", "network_id": 1}),
            )
        }
        s.wait_for(lambda: "explain" in explain(s, keys["readonly"]))  # in the snapshot
        yield s, keys


def explain(s: Stack, key: str) -> dict:
    r = s.decide(SEARCH, headers={"X-Adzerk-Explain": key})
    assert r.status_code == 200
    return r.json()


def ads_explained(body: dict) -> set[int]:
    return {r["adId"] for r in body["explain"]["div0"]["results"]}


def test_the_networks_own_keys_explain_everything(scoped: tuple[Stack, dict[str, str]]) -> None:
    s, keys = scoped
    everything = ads_explained(explain(s, ADMIN_KEY))
    assert {2, 3, 6, 8} <= everything  # Zeta's, Omega's and Acme's ads all had a fate
    assert ads_explained(explain(s, keys["readonly"])) == everything


@pytest.mark.parametrize("who", ["rival admin", "rival readonly"])
def test_another_networks_key_explains_nothing(
    scoped: tuple[Stack, dict[str, str]], who: str
) -> None:
    """Attack: network 2's keys ask why network 1's auction went as it did."""
    s, keys = scoped
    body = explain(s, keys[who])
    div = body["explain"]["div0"]
    assert div["results"] == [] and "may not read" in div["error"]
    assert "flightId" not in str(div) and "eCPM" not in str(div)


@pytest.mark.parametrize("who", ["zeta readonly", "zeta"])
def test_an_advertisers_key_explains_its_own_ads_only(
    scoped: tuple[Stack, dict[str, str]], who: str
) -> None:
    """Attack: a key of one advertiser reads its competitors' bids and fates."""
    s, keys = scoped
    mine = ads_explained(explain(s, keys[who]))
    assert mine and mine <= {2, 5, 7}  # Zeta's ads


def test_a_forced_ad_held_back_is_explained_with_its_reason(
    scoped: tuple[Stack, dict[str, str]],
) -> None:
    """An ad whose creative awaits approval is not in the auction, but a placement forcing
    its flight says why; only to keys that may read that advertiser's ads."""
    s, keys = scoped
    creative = s.admin.post(
        "/v1/creatives",
        json={
            "advertiser_id": 2,
            "ad_type_id": 2,
            "name": "zeta pending",
            "kind": "image",
            "image_url": "https://img.example/zeta-new.png",
            "status": "pending",
        },
    ).json()["id"]
    ad = s.admin.post("/v1/ads", json={"flight_id": 2, "creative_id": creative}).json()["id"]
    forced = {
        "placements": [{"networkId": 1, "siteId": 1, "zoneIds": [1], "adTypes": [2], "flightId": 2}]
    }

    def fate(key: str) -> dict | None:
        r = s.decide(forced, headers={"X-Adzerk-Explain": key})
        return next((x for x in r.json()["explain"]["div0"]["results"] if x["adId"] == ad), None)

    s.wait_for(lambda: fate(ADMIN_KEY) is not None)  # the next snapshot holds it
    assert fate(ADMIN_KEY) == {
        "adId": ad,
        "flightId": 2,
        "campaignId": 2,
        "result": "not served: the creative is not approved (pending)",
    }
    assert fate(keys["zeta"]) is not None  # its own advertiser's
    # Attack: another advertiser's and another network's keys learn nothing of it
    acme = s.admin.post("/v1/keys", json={"role": "advertiser", "advertiser_id": 1}).json()
    s.wait_for(
        lambda: "explain" in s.decide(forced, headers={"X-Adzerk-Explain": acme["key"]}).json()
    )  # the key reached the workers
    assert fate(acme["key"]) is None and fate(keys["rival admin"]) is None
    # archived: no longer anyone's concern (never served, so the other tests never see it)
    assert s.admin.post(f"/v1/ads/{ad}/archive").status_code == 200
    s.wait_for(lambda: fate(ADMIN_KEY) is None)


def test_a_bad_explain_key_is_refused_out_loud(scoped: tuple[Stack, dict[str, str]]) -> None:
    s, _ = scoped
    r = s.decide(SEARCH, headers={"X-Adzerk-Explain": "ak_nope_nope"})
    assert r.status_code == 200 and r.json().get("explain") is None
    assert r.headers["x-adserver-explain"].startswith("refused")


def test_audit_rows_follow_the_advertiser_scope(scoped: tuple[Stack, dict[str, str]]) -> None:
    """Attack: an advertiser-scoped read-only key reads the before/after of a competitor's
    flight (which it gets 404 for)."""
    s, keys = scoped
    with httpx.Client(base_url=s.api, headers={"X-Api-Key": keys["zeta readonly"]}) as zeta:
        assert zeta.get("/v1/flights/1").status_code == 404  # Acme's
        rows = zeta.get("/v1/audit", params={"entity": "flights", "entity_id": 1}).json()
        assert rows["data"] == []
        own = zeta.get("/v1/audit", params={"entity": "flights", "entity_id": 2}).json()
        assert len(own["data"]) >= 1
        assert zeta.get("/v1/quarantine").status_code == 403
    with httpx.Client(base_url=s.api, headers={"X-Api-Key": keys["rival admin"]}) as rival:
        assert rival.get("/v1/audit", params={"entity": "flights"}).json()["data"] == []
        assert rival.get("/v1/quarantine").json()["data"] == []
        for bad in ({"limit": "²"}, {"after_id": "-1"}, {"limit": "100000"}):
            r = rival.get("/v1/quarantine", params=bad)
            assert r.status_code == 400 and list(bad)[0] in r.text


def test_a_key_revoked_from_the_command_line_stops_working_everywhere_within_2s(
    scoped: tuple[Stack, dict[str, str]],
) -> None:
    """`adserver keys revoke` writes the store directly, not through the management API:
    the decision port stops accepting the key within 2 s all the same, and the revocation
    (like the creation) is in the audit log."""
    import os
    import subprocess
    import sys
    import time

    s, _ = scoped
    made = s.admin.post("/v1/keys", json={"role": "readonly", "network_id": 1}).json()
    s.wait_for(lambda: "explain" in explain(s, made["key"]))
    env = {**os.environ, "ADSERVER_DATA_DIR": str(s.data_dir)}
    r = subprocess.run(
        [sys.executable, "-m", "adserver", "keys", "revoke", made["key_id"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    revoked = time.monotonic()
    s.wait_for(lambda: "explain" not in explain(s, made["key"]), timeout=5)
    assert time.monotonic() - revoked < 2.0
    assert s.admin.get("/v1/me", headers={"X-Api-Key": made["key"]}).status_code == 401
    rows = s.admin.get("/v1/audit", params={"entity": "keys", "entity_id": made["key_id"]}).json()[
        "data"
    ]
    assert {row["action"] for row in rows} == {"create", "revoke"}
    assert "hash" not in str(rows) and made["key"] not in str(rows)


PZ = "/personalizer/v1.0"


def pz(s: Stack, method: str, path: str, key: str, **kw: object) -> httpx.Response:
    return s.client.request(method, PZ + path, headers={"Ocp-Apim-Subscription-Key": key}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("who", ["admin", "rival admin"])
def test_a_network_key_cannot_administer_the_personalizer(
    scoped: tuple[Stack, dict[str, str]], who: str
) -> None:
    """Attack: a network-scoped admin key resets the installation's policy, deletes its
    logs, changes its configuration or exports its weights, on either port."""
    s, keys = scoped
    key = keys[who]
    for method, path, body in (
        ("DELETE", "/model", None),
        ("GET", "/model", None),
        ("DELETE", "/logs", None),
        ("PUT", "/configurations/service", {"rewardWaitTime": "PT5S"}),
        ("GET", "/configurations/policy", None),
    ):
        r = pz(s, method, path, key, json=body)
        assert r.status_code == 403, (method, path, r.text)
        r = httpx.request(
            method, f"{s.api}/v1/personalizer{path}", json=body, headers={"X-Api-Key": key}
        )
        assert r.status_code == 403, (method, path, r.text)
    assert pz(s, "GET", "/model/properties", ADMIN_KEY).status_code == 200  # unscoped: yes


def test_rewards_stay_in_their_network(scoped: tuple[Stack, dict[str, str]]) -> None:
    """Attack: network 2's key posts rewards (and activations) for network 1's event ids.
    They are accepted as its own events, which no rank of network 1 ever joins."""
    s, keys = scoped
    body = {
        "actions": [{"id": "a", "features": [{"k": 1}]}, {"id": "b", "features": [{"k": 2}]}],
        "eventId": "scoped-event",
    }
    assert pz(s, "POST", "/rank", keys["admin"], json=body).status_code == 201
    assert (
        pz(
            s, "POST", "/events/scoped-event/reward", keys["rival admin"], json={"value": 1}
        ).status_code
        == 204
    )
    assert (
        pz(s, "POST", "/events/scoped-event/reward", keys["admin"], json={"value": 0.5}).status_code
        == 204
    )

    def rank_ids() -> list[str]:  # the decision log is written in batches: wait for it
        return [
            r["id"]
            for seg in sorted((s.data_dir / "events").glob("w*/decisions-*.seg"))
            for _, r in read_records(str(seg))
            if r.get("t") == "pz_rank" and r["id"].endswith("scoped-event")
        ]

    s.wait_for(rank_ids, timeout=10)
    (rank_id,) = rank_ids()
    assert rank_id != "scoped-event"  # kept in the network's own namespace
    rewards = {r["event"]: r["value"] for r in logged(s) if r.get("t") == "pz_reward"}
    assert rewards[rank_id] == 0.5  # network 1's own reward joins its rank
    assert [e for e in rewards if e.endswith("scoped-event") and e != rank_id]  # the rival's
    assert all(v != 1 for e, v in rewards.items() if e == rank_id)


def test_the_personalizer_model_reset_is_audited(scoped: tuple[Stack, dict[str, str]]) -> None:
    s, _ = scoped
    assert pz(s, "DELETE", "/model", ADMIN_KEY).status_code == 204
    rows = s.admin.get("/v1/audit", params={"entity": "personalizer"}).json()["data"]
    assert any(r["entity_id"] == "model" and r["action"] == "reset" for r in rows)


def test_metrics_are_for_the_allowed_networks_or_the_key(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Attack: anyone who reaches the decision port reads its metrics. With no network
    allowed, even loopback needs the metrics key."""
    key = "metrics-key-0123456789"
    with golden_stack(
        tmp_path_factory.mktemp("metrics"), ADSERVER_METRICS_ALLOW="", ADSERVER_METRICS_KEY=key
    ) as s:
        r = s.client.get("/metrics")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert (
            s.client.get(
                "/metrics", headers={"Authorization": "Bearer wrong-key-0000000"}
            ).status_code
            == 403
        )
        r = s.client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and "adserver_decision_seconds" in r.text
        # the control port's metrics follow the same rule
        assert httpx.get(s.api + "/metrics").status_code == 403
        r = httpx.get(s.api + "/metrics", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and "adserver_quarantined_total" in r.text


def test_a_networks_click_domains_bound_where_clicks_go(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A network that lists its click domains: a placement clickUrl elsewhere is refused
    (400 naming it), a creative's destination elsewhere is counted but not redirected to
    (204), and the listed hosts and their subdomains redirect as before."""
    from tests.serving.test_beacons import BROWSER

    with golden_stack(tmp_path_factory.mktemp("domains")) as s:
        bad = s.admin.patch("/v1/networks/1", json={"click_domains": ["http://x"]})
        assert bad.status_code == 400 and "click_domains[0]" in bad.text
        r = s.admin.patch("/v1/networks/1", json={"click_domains": ["acme.example", "example.com"]})
        assert r.status_code == 200 and r.json()["click_domains"] == ["acme.example", "example.com"]

        def placed(url: str, flight: int = 1) -> httpx.Response:
            return s.decide(
                {
                    "placements": [
                        {
                            "networkId": 1,
                            "siteId": 1,
                            "zoneIds": [1],
                            "adTypes": [2],
                            "flightId": flight,
                            "clickUrl": url,
                        }
                    ]
                }
                if url
                else {
                    "placements": [
                        {
                            "networkId": 1,
                            "siteId": 1,
                            "zoneIds": [1],
                            "adTypes": [2],
                            "flightId": flight,
                        }
                    ]
                }
            )

        s.wait_for(lambda: placed("https://evil.example/x").status_code == 400)
        r = placed("https://evil.example/x")
        assert r.json()["error"]["fields"][0]["field"] == "placements[0].clickUrl"
        ok = placed("https://shop.example.com/landing").json()["decisions"]["div0"]
        r = httpx.get(ok["clickUrl"], headers=BROWSER)
        assert r.status_code == 302 and r.headers["location"] == "https://shop.example.com/landing"
        acme = placed("").json()["decisions"]["div0"]  # its creative: https://acme.example/
        assert httpx.get(acme["clickUrl"], headers=BROWSER).status_code == 302
        zeta = placed("", flight=2).json()["decisions"]["div0"]  # https://zeta.example/
        r = httpx.get(zeta["clickUrl"], headers=BROWSER)
        assert r.status_code == 204 and "location" not in r.headers
