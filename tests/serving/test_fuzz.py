"""Whatever arrives, the servers answer 2xx or a 4xx JSON error: never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adserver.control.schema import SPECS
from tests.procs import ADMIN_KEY
from tests.serving.conftest import Stack, golden_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Its own instance: the fuzzer may create and change objects."""
    with golden_stack(tmp_path_factory.mktemp("fuzz")) as s:
        yield s


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=12,
)
placement = st.fixed_dictionaries(
    {},
    optional={
        "divName": json_values,
        "networkId": json_values,
        "siteId": st.sampled_from([1, 2, 99]),
        "adTypes": st.lists(st.integers(-5, 5), max_size=3) | json_values,
        "zoneIds": st.lists(st.integers(-5, 5), max_size=3) | json_values,
        "count": st.integers(-3, 30) | json_values,
        "properties": json_values,
        "floorPrice": json_values,
        "eventIds": json_values,
        "flightId": json_values,
    },
)
requests = (
    st.fixed_dictionaries(
        {},
        optional={
            "placements": st.lists(placement, max_size=3) | json_values,
            "user": json_values,
            "keywords": json_values,
            "searchTerm": json_values,
            "blockedCreatives": json_values,
            "consent": json_values,
            "geo": json_values,
            "includePricingData": json_values,
        },
    )
    | json_values
)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def ok(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/json")
        assert "message" in r.json()["error"]


@SETTINGS
@given(requests)
def test_decision_api_never_500(stack: Stack, body: object) -> None:
    ok(stack.client.post("/api/v2", json=body))


@SETTINGS
@given(
    st.sampled_from(sorted(SPECS)), st.dictionaries(st.text(max_size=15), json_values, max_size=6)
)
def test_management_api_never_500(stack: Stack, resource: str, body: dict) -> None:
    ok(stack.admin.post(f"/v1/{resource}", json=body))
    ok(stack.admin.patch(f"/v1/{resource}/1", json=body))
    ok(stack.admin.get(f"/v1/{resource}", params={k: str(v) for k, v in body.items()}))


@SETTINGS
@given(
    st.text(max_size=60),
    st.dictionaries(
        st.sampled_from(["override", "additional", "gmv", "eventMultiplier", "e"]),
        st.text(max_size=12),
        max_size=3,
    ),
)
def test_beacons_never_500(stack: Stack, token: str, params: dict) -> None:
    for path in ("/i.gif", "/r", "/e.gif"):
        ok(stack.client.get(path, params={"t": token, **params}))


@SETTINGS
@given(json_values)
def test_conversions_never_500(stack: Stack, body: object) -> None:
    ok(stack.client.post("/v1/conversions", json=body, headers={"X-Api-Key": ADMIN_KEY}))
