"""The published adzerk-decision-sdk, unmodified, against a live server."""

from __future__ import annotations

import pytest
from adzerk_decision_sdk import Client, DecisionRequest, Placement, User
from adzerk_decision_sdk.exceptions import ApiException

from tests.procs import ADMIN_KEY
from tests.serving.conftest import Stack


@pytest.fixture
def client(stack: Stack) -> Client:
    return Client(1, host=stack.decisions, site_id=1)


def test_single_and_multi_winner_placements(client: Client) -> None:
    # model objects: the client sends every field, unset ones as null
    request = DecisionRequest(
        placements=[
            # a model leaves networkId null: the server takes it from the site
            Placement(div_name="home", site_id=1, zone_ids=[1], ad_types=[2]),
            Placement(
                div_name="search",
                network_id=1,
                site_id=1,
                zone_ids=[2],
                ad_types=[2],
                count=3,
                properties={"page": "search"},
            ),
            Placement(div_name="sp", network_id=1, site_id=1, ad_types=[1], count=2),
        ],
        user=User(key="sdk-user"),
        search_term="running shoes",
        include_pricing_data=True,
    )
    response = client.decisions.get(request)
    assert response.user.key == "sdk-user"
    home = response.decisions["home"]
    assert [d.ad_id for d in home] == [1]  # the client turns one decision into a list
    assert home[0].pricing.clear_price == pytest.approx(3.01)
    assert home[0].contents[0].data["imageUrl"] == "https://img.example/acme.png"
    assert [d.ad_id for d in response.decisions["search"]] == [2, 3]
    assert [d.ad_id for d in response.decisions["sp"]] == [4, 5]
    assert response.decisions["sp"][0].pricing.rate_type == 3


def test_null_placement_and_generated_user_key(client: Client) -> None:
    # a plain dict, as the client's README shows
    response = client.decisions.get({"placements": [{"zoneIds": [99], "adTypes": [2]}]})
    assert response.decisions["div0"] == [None]
    assert response.user.key


def test_events_and_pixels(client: Client) -> None:
    response = client.decisions.get(
        DecisionRequest(
            placements=[Placement(site_id=1, zone_ids=[1], ad_types=[2], event_ids=[40, 3])]
        )
    )
    d = response.decisions["div0"][0]
    assert [e.id for e in d.events] == [40, 3]
    assert all("/e.gif?t=" in e.url for e in d.events)


def test_explain_header(stack: Stack) -> None:
    client = Client(1, host=stack.decisions, site_id=1)
    response = client.decisions.get(
        DecisionRequest(placements=[Placement(site_id=1, zone_ids=[1], ad_types=[2], count=1)]),
        include_explanation=True,
        api_key=ADMIN_KEY,
    )
    explain = response.explain["div0"]
    results = {r["adId"]: r for r in explain["results"]}
    assert results[1]["result"] == "chosen"
    assert results[2]["result"] == "outbid" and results[2]["winningECPM"] == pytest.approx(5.0)
    assert results[6]["result"] == "below the floor"
    assert results[3]["result"] == "custom targeting expression"
    assert results[8]["result"] == "geo targeting"
    assert set(explain) >= {"placement", "buckets", "rtb_log", "results"}


def test_explain_needs_a_valid_key(stack: Stack) -> None:
    client = Client(1, host=stack.decisions, site_id=1)
    response = client.decisions.get(
        DecisionRequest(placements=[Placement(site_id=1, zone_ids=[1], ad_types=[2])]),
        include_explanation=True,
        api_key="not-a-key",
    )
    assert response.explain is None


def test_errors_reach_the_client_as_api_exceptions(client: Client) -> None:
    with pytest.raises(ApiException) as err:
        client.decisions.get(
            DecisionRequest(placements=[Placement(site_id=1, ad_types=[2], count=25)])
        )
    assert err.value.status == 400 and "count" in err.value.body
