"""Build a small network through the API, the way an integrator would."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from adserver.common import clock

# The test flight ends at midnight, Berlin winter time, on the first of January two years on
# from today (by the project's clock): open on any date the suite runs, with a zone to convert.
END_YEAR = dt.datetime.fromtimestamp(clock.now(), dt.UTC).year + 2
END = f"{END_YEAR}-01-01T00:00:00+01:00"
END_UTC = f"{END_YEAR - 1}-12-31T23:00:00Z"


def created(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def build(admin: httpx.Client, name: str = "Test net") -> dict[str, Any]:
    """One of each entity, wired together; returns them by kind."""
    n: dict[str, Any] = {}
    n["network"] = created(admin, "/v1/networks", {"name": name, "time_zone": "Europe/Berlin"})
    net = n["network"]["id"]
    n["site"] = created(admin, "/v1/sites", {"network_id": net, "name": "Web"})
    n["zone"] = created(
        admin, "/v1/zones", {"site_id": n["site"]["id"], "name": "search", "page_type": "search"}
    )
    n["ad_type"] = created(
        admin,
        "/v1/ad_types",
        {"network_id": net, "name": "MPU", "format": "display", "width": 300, "height": 250},
    )
    n["channel"] = created(
        admin, "/v1/channels", {"network_id": net, "name": "All", "site_ids": [n["site"]["id"]]}
    )
    n["priority"] = created(
        admin,
        "/v1/priorities",
        {"channel_id": n["channel"]["id"], "name": "Auction", "tier": 2, "floor_cpm": "0.5"},
    )
    n["advertiser"] = created(admin, "/v1/advertisers", {"network_id": net, "name": "Acme"})
    n["campaign"] = created(
        admin, "/v1/campaigns", {"advertiser_id": n["advertiser"]["id"], "name": "Spring"}
    )
    n["flight"] = created(
        admin,
        "/v1/flights",
        {
            "campaign_id": n["campaign"]["id"],
            "priority_id": n["priority"]["id"],
            "name": "F1",
            "start": "2026-01-01T00:00:00Z",
            "end": END,
            "rate_type": "cpm",
            "price": 2.5,
            "daily_cap": {"metric": "spend", "value": "100.25"},
            "keywords": [{"text": "shoes", "match": "phrase"}],
            "custom_targeting": '$page == "search" and $price >= 20',
            "zone_ids": [n["zone"]["id"]],
        },
    )
    n["creative"] = created(
        admin,
        "/v1/creatives",
        {
            "advertiser_id": n["advertiser"]["id"],
            "ad_type_id": n["ad_type"]["id"],
            "name": "Banner",
            "kind": "image",
            "image_url": "https://img.example/a.png",
            "status": "approved",
        },
    )
    n["ad"] = created(
        admin, "/v1/ads", {"flight_id": n["flight"]["id"], "creative_id": n["creative"]["id"]}
    )
    return n
