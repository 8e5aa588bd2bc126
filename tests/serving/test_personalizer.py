"""Personalizer's rank/reward API on a running decision server, driven by both published
clients unmodified: azure-cognitiveservices-personalizer (v1.0 paths, msrest) and
azure-ai-personalizer (the 2022-09-01-preview shape, azure-core)."""

from __future__ import annotations

import time

import httpx
import pytest
from azure.ai.personalizer import PersonalizerClient
from azure.cognitiveservices.personalizer import PersonalizerClient as LegacyClient
from azure.cognitiveservices.personalizer.models import (
    ErrorResponseException,
    RankableAction,
    RankRequest,
)
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from msrest.authentication import CognitiveServicesCredentials
from msrest.exceptions import HttpOperationError

from adserver.formats.segment import read_records
from tests.procs import ADMIN_KEY
from tests.serving.conftest import Stack

ACTIONS = [
    {"id": "pasta", "features": [{"cuisine": "italian", "spice": "low"}, {"calories": 700}]},
    {"id": "curry", "features": [{"cuisine": "indian", "spice": "high"}]},
    {"id": "salad", "features": [{"cuisine": "any", "healthy": True}]},
]
CONTEXT = [{"time": "evening", "weather": "rain"}, {"device": {"kind": "phone", "os": "ios"}}]


@pytest.fixture
def modern(stack: Stack) -> PersonalizerClient:
    return PersonalizerClient(stack.decisions, AzureKeyCredential(ADMIN_KEY), retry_total=0)


@pytest.fixture
def legacy(stack: Stack) -> LegacyClient:
    return LegacyClient(stack.decisions, CognitiveServicesCredentials(ADMIN_KEY))


def logged(stack: Stack, stream: str, event: str, kinds: tuple[str, ...]) -> list[dict]:
    deadline = time.monotonic() + 5
    while True:
        found = [
            rec
            for seg in sorted((stack.data_dir / "events").glob(f"w*/{stream}-*.seg"))
            for _, rec in read_records(str(seg))
            if rec.get("t") in kinds and event in (rec.get("id"), rec.get("event"))
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_rank_reward_with_the_newer_client(stack: Stack, modern: PersonalizerClient) -> None:
    r = modern.rank(
        {
            "contextFeatures": CONTEXT,
            "actions": ACTIONS,
            "excludedActions": ["salad"],
            "eventId": "evt-new-1",
        }
    )
    assert r["eventId"] == "evt-new-1"
    ranking = {a["id"]: a["probability"] for a in r["ranking"]}
    assert set(ranking) == {"pasta", "curry", "salad"} and ranking["salad"] == 0
    assert sum(ranking.values()) == pytest.approx(1.0, abs=1e-5)
    assert r["rewardActionId"] in ("pasta", "curry")  # never an excluded action
    assert r["ranking"][0]["id"] == r["rewardActionId"]
    modern.reward("evt-new-1", {"value": 0.8})
    modern.activate("evt-new-1")
    rank = logged(stack, "decisions", "evt-new-1", ("pz_rank",))[0]
    assert rank["excluded"] == ["salad"] and rank["probabilities"][2] == 0
    assert rank["probabilities"][rank["chosen"]] == ranking[r["rewardActionId"]]
    events = logged(stack, "events", "evt-new-1", ("pz_reward", "pz_activate"))
    assert {e["t"] for e in events} == {"pz_reward", "pz_activate"}
    assert next(e["value"] for e in events if e["t"] == "pz_reward") == 0.8
    # without an eventId the service makes one; event ids are percent-encoded in paths
    r = modern.rank({"actions": ACTIONS})
    assert len(r["eventId"]) == 32
    modern.reward("id with/odd chars?", {"value": 1})


def test_multislot_with_the_newer_client(modern: PersonalizerClient) -> None:
    r = modern.rank_multi_slot(
        {
            "contextFeatures": CONTEXT,
            "actions": ACTIONS,
            "eventId": "evt-multi-1",
            "slots": [
                {"id": "hero", "baselineAction": "pasta", "features": [{"size": "large"}]},
                {"id": "side", "baselineAction": "curry", "excludedActions": ["salad"]},
            ],
        }
    )
    assert r["eventId"] == "evt-multi-1"
    chosen = {s["id"]: s["rewardActionId"] for s in r["slots"]}
    assert set(chosen) == {"hero", "side"} and chosen["hero"] != chosen["side"]
    assert chosen["side"] != "salad"
    modern.reward_multi_slot("evt-multi-1", {"reward": [{"slotId": "hero", "value": 1}]})
    modern.activate_multi_slot("evt-multi-1")


def test_the_legacy_client(legacy: LegacyClient) -> None:
    req = RankRequest(
        actions=[RankableAction(id=a["id"], features=a["features"]) for a in ACTIONS],
        context_features=CONTEXT,
        excluded_actions=["pasta"],
        event_id="evt-old-1",
    )
    r = legacy.rank(req)
    assert r.event_id == "evt-old-1" and r.reward_action_id in ("curry", "salad")
    assert {a.id for a in r.ranking} == {"pasta", "curry", "salad"}
    legacy.events.reward("evt-old-1", value=0.5)
    legacy.events.activate("evt-old-1")
    with pytest.raises(HttpOperationError) as bad:  # what this client raises for events
        legacy.events.reward("evt-old-1", value=3.0)
    assert bad.value.response.status_code == 400
    assert "between -1 and 1" in bad.value.response.json()["error"]["message"]
    with pytest.raises(ErrorResponseException) as e:
        legacy.rank(RankRequest(actions=[]))
    assert e.value.error.error.code == "BadRequest"
    assert e.value.error.error.target == "actions"


@pytest.mark.parametrize(
    "body,target",
    [
        ({"actions": []}, "actions"),
        ({"actions": [{"id": "a"}, {"id": "a"}]}, "actions[1].id"),
        ({"actions": [{"id": "a"}], "excludedActions": ["zz"]}, "excludedActions"),
        ({"actions": [{"id": "a"}], "excludedActions": ["a"]}, "excludedActions"),
        ({"actions": [{"id": "x" * 257}]}, "actions[0].id"),
        ({"actions": [{"id": f"a{i}"} for i in range(51)]}, "actions"),
        ({"actions": [{"id": 5}]}, "actions[0].id"),
    ],
)
def test_bad_rank_requests_name_the_field(
    modern: PersonalizerClient, body: dict, target: str
) -> None:
    with pytest.raises(HttpResponseError) as e:
        modern.rank(body)
    assert e.value.status_code == 400
    assert e.value.error.code == "BadRequest" and e.value.error.target == target


def test_keys_and_raw_errors(stack: Stack) -> None:
    url = stack.decisions + "/personalizer/v1.0/rank"
    r = httpx.post(url, json={"actions": ACTIONS})
    assert r.status_code == 401 and r.json()["error"]["code"] == "PermissionDenied"
    r = httpx.post(url, json={"actions": ACTIONS}, headers={"Ocp-Apim-Subscription-Key": "wrong"})
    assert r.status_code == 401
    r = httpx.post(url, content=b"{", headers={"Ocp-Apim-Subscription-Key": ADMIN_KEY})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    r = httpx.post(
        stack.decisions + "/personalizer/v1.0/multislot/rank",
        json={"actions": ACTIONS, "slots": [{"id": "s", "baselineAction": "nope"}]},
        headers={"Ocp-Apim-Subscription-Key": ADMIN_KEY},
    )
    assert r.status_code == 400 and r.json()["error"]["target"] == "slots[0].baselineAction"
