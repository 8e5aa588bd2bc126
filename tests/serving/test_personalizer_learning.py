"""The personalization loop on a running `adserver run`: ranks and rewards through the
published client, joined and learned by the control process, the policy hot-swapped into the
workers; the learned policy beats the random and the baseline policies in a simulated world."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from azure.ai.personalizer import PersonalizerClient
from azure.core.credentials import AzureKeyCredential

from tests.procs import ADMIN_KEY, env_for, running, wait_ready

USERS = ["a", "b", "c"]
ITEMS = ["x0", "x1", "x2", "x3"]
# true click probability of each item per user type: each type has one favourite
TRUTH = {"a": [0.8, 0.1, 0.1, 0.1], "b": [0.1, 0.8, 0.1, 0.1], "c": [0.1, 0.1, 0.1, 0.8]}
ACTIONS = [{"id": i, "features": [{"kind": f"k{n}"}]} for n, i in enumerate(ITEMS)]


@contextlib.contextmanager
def stack(data: str) -> Iterator[tuple[str, str]]:
    env = env_for(
        data,
        ADSERVER_PERSONALIZER_REWARD_WAIT_S="0.3",
        ADSERVER_PERSONALIZER_LEARN_INTERVAL_S="0.3",
    )
    with running(["run", "--api-port", "0", "--port", "0"], env, want=2) as proc:
        url = proc.urls["decision API"]
        wait_ready(url)
        yield url, data


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A stack the tests here share: none changes its configuration, model or logs."""
    with stack(str(tmp_path_factory.mktemp("personalize"))) as s:
        yield s


@pytest.fixture
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A stack of its own, for a test that changes the configuration, model or logs."""
    with stack(str(tmp_path_factory.mktemp("personalize-own"))) as s:
        yield s


def play(client: PersonalizerClient, rng: np.random.Generator, n: int) -> list[float]:
    """n rank calls, each rewarded with a draw from the chosen item's true probability;
    returns the expected reward of each choice."""
    got = []
    for _ in range(n):
        user = USERS[int(rng.integers(0, 3))]
        r = client.rank({"contextFeatures": [{"user": {"type": user}}], "actions": ACTIONS})
        p = TRUTH[user][ITEMS.index(r["rewardActionId"])]
        got.append(p)
        client.reward(r["eventId"], {"value": float(rng.random() < p)})
    return got


@pytest.fixture(scope="module")
def world(live: tuple[str, str]) -> dict[str, Any]:
    """The simulated world played once on the shared stack, whichever test asks first:
    400 plays while the policy explores and learns, then 300 more; with the time span of
    the plays (the offline evaluation reads those events only: other tests log ranks whose
    rewards do not follow the world)."""
    url, _ = live
    client = PersonalizerClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    rng = np.random.default_rng(3)
    started = time.time()
    before = play(client, rng, 400)  # explores; the control process learns meanwhile
    time.sleep(1.5)  # the last rewards wait 0.3 s, learning runs every 0.3 s
    after = play(client, rng, 300)
    return {"before": before, "after": after, "from": started, "until": time.time()}


def test_the_learned_policy_beats_random_and_baseline(
    live: tuple[str, str], world: dict[str, Any]
) -> None:
    url, data = live
    random_policy = float(np.mean([np.mean(v) for v in TRUTH.values()]))  # 0.275
    baseline = float(np.mean([v[0] for v in TRUTH.values()]))  # always the first: 0.333
    learned = float(np.mean(world["after"]))
    # epsilon-greedy at 20 %: the favourite 85 % of the time -> about 0.70
    print(
        f"average reward: first 400 {np.mean(world['before']):.3f}, next 300 {learned:.3f},"
        f" random {random_policy:.3f}, baseline {baseline:.3f}"
    )
    assert learned > baseline + 0.15 and learned > random_policy + 0.15, (
        np.mean(world["before"]),
        learned,
    )
    db = sqlite3.connect(f"file:{data}/control.sqlite3?mode=ro", uri=True)
    learned_events = db.execute("SELECT count(*) FROM pz_ranks WHERE learned = 1").fetchone()[0]
    db.close()
    assert learned_events >= 400


def test_a_deferred_rank_without_activation_is_not_learned(live: tuple[str, str]) -> None:
    url, data = live
    client = PersonalizerClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    for eid, activate in (("deferred-never", False), ("deferred-shown", True)):
        client.rank({"actions": ACTIONS, "eventId": eid, "deferActivation": True})
        client.reward(eid, {"value": 1.0})
        if activate:
            client.activate(eid)
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(f"file:{data}/control.sqlite3?mode=ro", uri=True)
        state = dict(db.execute("SELECT id, learned FROM pz_ranks WHERE id LIKE 'deferred-%'"))
        db.close()
        if len(state) == 2 and 0 not in state.values():
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state == {"deferred-never": 2, "deferred-shown": 1}


def test_offline_evaluation_through_the_administration_client(
    live: tuple[str, str], world: dict[str, Any]
) -> None:
    import datetime as dt

    from azure.ai.personalizer import PersonalizerAdministrationClient
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    url, _ = live
    admin = PersonalizerAdministrationClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    start = dt.datetime.fromtimestamp(world["from"], dt.UTC)
    end = dt.datetime.fromtimestamp(world["until"], dt.UTC)
    admin.create_evaluation(
        "eval-1",
        {
            "name": "greedy or not",
            "startTime": start.isoformat(),
            "endTime": end.isoformat(),
            "policies": [
                {"name": "greedy", "arguments": "--cb_explore_adf --epsilon 0 -l 0.5"},
                {"name": "explorer", "arguments": "--cb_explore_adf --epsilon 0.6"},
            ],
        },
    )
    got = admin.get_evaluation("eval-1", start_time=start, end_time=end)
    assert got["status"] == "Succeeded" and got["events"] >= 400, {
        k: v for k, v in got.items() if k != "content"
    }
    value = {v["name"]: v for v in got["content"]["value"]}
    assert set(value) == {"Online", "Baseline", "Random", "greedy", "explorer"}
    reward = {k: v["summary"]["expectedReward"] for k, v in value.items()}
    # the world's true values: random 0.275, always-the-first 0.333, the best 0.8. Within
    # each estimate's interval widened to ~99.9 % (x 1.7): the 95 % one alone misses the truth
    # one run in twenty by design (the baseline's matched events carry weights up to 1/p)
    for name, truth in (("Random", 0.275), ("Baseline", 0.333)):
        low, high = value[name]["summary"]["confidenceInterval"]
        at = value[name]["summary"]["expectedReward"]
        assert at - 1.7 * (at - low) <= truth <= at + 1.7 * (high - at), (
            name,
            value[name]["summary"],
        )
    # both learned policies beat random choice; greedy is not measurably worse than
    # exploring 60 % of the time (its estimate beat the explorer's in 6 runs of 6, by 0.04
    # to 0.2, but once in a full suite it fell 0.05 below: IPS estimates on ~500 events
    # vary that much, so the order alone is not a claim this test can make every run)
    assert reward["greedy"] > reward["Random"] + 0.1, reward
    assert reward["explorer"] > reward["Random"] + 0.05, reward
    assert value["greedy"]["summary"]["confidenceInterval"][1] > reward["explorer"], reward
    print(reward)
    assert got["optimalPolicy"] == max(("greedy", "Online"), key=reward.__getitem__)
    assert {"ips", "snips", "dm", "dr"} <= set(value["greedy"]["estimates"])
    listed = list(admin.list_evaluations())
    assert [x["id"] for x in listed] == ["eval-1"]
    with pytest.raises(HttpResponseError) as e:
        admin.create_evaluation(
            "eval-2",
            {
                "name": "x",
                "startTime": end.isoformat(),
                "endTime": start.isoformat(),
                "policies": [],
            },
        )
    assert e.value.status_code == 400
    admin.delete_evaluation("eval-1")
    with pytest.raises(ResourceNotFoundError):
        admin.get_evaluation("eval-1", start_time=start, end_time=end)


def test_configuration_through_the_administration_client(fresh: tuple[str, str]) -> None:
    from azure.ai.personalizer import PersonalizerAdministrationClient
    from azure.core.exceptions import HttpResponseError

    url, data = fresh
    admin = PersonalizerAdministrationClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    client = PersonalizerClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    config = admin.get_service_configuration()
    assert config["rewardWaitTime"] == "PT10M" and config["learningMode"] == "Online"
    config.update(
        rewardWaitTime="PT5S",
        explorationPercentage=0.3,
        learningMode="Apprentice",
        defaultReward=0.1,
    )
    out = admin.update_service_configuration(config)
    assert out["learningMode"] == "Apprentice" and out["lastConfigurationEditDate"]
    assert admin.get_service_configuration()["explorationPercentage"] == 0.3
    # apprentice: the baseline (first action not excluded) comes back, with probability 1
    deadline = time.monotonic() + 10
    while True:
        r = client.rank({"actions": ACTIONS, "excludedActions": ["x0"]})
        if r["rewardActionId"] == "x1" and r["ranking"][0]["probability"] == 1.0:
            break
        assert time.monotonic() < deadline, r
        time.sleep(0.2)
    assert all(
        client.rank({"actions": ACTIONS, "excludedActions": ["x0"]})["rewardActionId"] == "x1"
        for _ in range(20)
    )
    policy = admin.update_policy(
        {"name": "softer", "arguments": "--cb_explore_adf --softmax --lambda 5 -l 0.3"}
    )
    assert policy["name"] == "softer" and admin.get_policy()["name"] == "softer"
    assert admin.reset_policy()["name"] == "default"
    for bad, target in (
        ({**config, "explorationPercentage": 2}, "explorationPercentage"),
        ({**config, "rewardWaitTime": "10 minutes"}, "rewardWaitTime"),
        ({**config, "rewardWaitTime": "PT1S"}, "rewardWaitTime"),
        ({**config, "learningMode": "Sometimes"}, "learningMode"),
    ):
        with pytest.raises(HttpResponseError) as e:
            admin.update_service_configuration(bad)
        assert e.value.status_code == 400 and e.value.error.target == target
    with pytest.raises(HttpResponseError) as e:
        admin.update_policy({"name": "x", "arguments": "--epsilon lots"})
    assert e.value.status_code == 400
    admin.update_service_configuration({**config, "learningMode": "Online"})


def test_adserver_evaluate_prints_the_comparison(
    live: tuple[str, str], world: dict[str, Any]
) -> None:
    import subprocess
    import sys

    _, data = live
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "adserver",
            "evaluate",
            "--data-dir",
            data,
            "--policy",
            "greedy=--cb_explore_adf --epsilon 0",
            "--runs",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "logged choices" in r.stdout and "greedy" in r.stdout and "Random" in r.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "adserver", "evaluate", "--data-dir", data, "--policy", "nameless"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "NAME=ARGUMENTS" in bad.stderr


def test_feature_importances(live: tuple[str, str], world: dict[str, Any]) -> None:
    import datetime as dt

    from azure.ai.personalizer import PersonalizerAdministrationClient

    url, _ = live
    admin = PersonalizerAdministrationClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    now = dt.datetime.now(dt.UTC)
    admin.create_feature_importance(
        "fi-1",
        {
            "name": "what matters",
            "startTime": (now - dt.timedelta(hours=1)).isoformat(),
            "endTime": (now + dt.timedelta(minutes=1)).isoformat(),
        },
    )
    got = admin.get_feature_importance("fi-1")
    assert got["status"] == "Succeeded"
    scores = got["featureScores"]
    assert sum(x["score"] for x in scores) == pytest.approx(1.0, abs=1e-4)
    names = {(x["namespace"], x["featureName"]) for x in scores}
    assert ("context", "user.type=a") in names and ("action", "kind=k0") in names
    top = [x for x in scores if x["namespace"] == "context"][0]
    assert top["featureName"].startswith("user.type=")  # the only context there is
    assert [x["id"] for x in admin.list_feature_importances()] == ["fi-1"]
    admin.delete_feature_importance("fi-1")
    assert list(admin.list_feature_importances()) == []


def test_model_and_logs_administration(fresh: tuple[str, str]) -> None:
    import datetime as dt
    import io
    import zipfile

    from azure.ai.personalizer import PersonalizerAdministrationClient
    from azure.core.exceptions import HttpResponseError

    url, data = fresh
    admin = PersonalizerAdministrationClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    client = PersonalizerClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    play(client, np.random.default_rng(4), 60)  # a policy learned from something
    # apprentice ranks are learned from once their wait is over; the match rate (the
    # policy's own choice = the baseline) is then reported
    config = admin.get_service_configuration()
    admin.update_service_configuration(
        {**config, "learningMode": "Apprentice", "rewardWaitTime": "PT5S"}
    )
    deadline = time.monotonic() + 10
    while client.rank({"actions": ACTIONS})["ranking"][0]["probability"] != 1.0:
        assert time.monotonic() < deadline, "apprentice mode never reached the worker"
        time.sleep(0.2)
    for _ in range(5):  # apprentice ranks: the baseline, with probability 1
        r = client.rank({"actions": ACTIONS})
        client.reward(r["eventId"], {"value": 1.0})
    deadline = time.monotonic() + 20
    while admin.get_model_properties().get("apprenticeMatchRate") is None:
        assert time.monotonic() < deadline, admin.get_model_properties()
        time.sleep(0.5)
    assert 0 <= admin.get_model_properties()["apprenticeMatchRate"] <= 1
    exported = b"".join(admin.export_model(signed=True))
    with zipfile.ZipFile(io.BytesIO(exported)) as z:
        weights = np.load(io.BytesIO(z.read("weights.npy")))
    assert np.abs(weights).sum() > 0  # the learned policy
    before = admin.get_model_properties()
    admin.reset_model()
    props = admin.get_model_properties()
    # a fresh model; events whose rewards came due just then may already be learned into it
    # (the learner runs every 0.3 s here: a fresh-clone run once saw 10)
    assert props["creationTime"] > before["creationTime"]
    assert props["learnedEvents"] < min(50, before["learnedEvents"]), (before, props)
    admin.import_model(io.BytesIO(exported))
    again = b"".join(admin.export_model())
    with zipfile.ZipFile(io.BytesIO(again)) as z:
        assert np.array_equal(np.load(io.BytesIO(z.read("weights.npy"))), weights)
    with pytest.raises(HttpResponseError) as e:
        admin.import_model(io.BytesIO(b"not a zip"))
    assert e.value.status_code == 400
    # apply an evaluation's candidate as the learning policy
    now = dt.datetime.now(dt.UTC)
    admin.create_evaluation(
        "eval-apply",
        {
            "name": "apply",
            "startTime": (now - dt.timedelta(hours=1)).isoformat(),
            "endTime": (now + dt.timedelta(minutes=1)).isoformat(),
            "policies": [{"name": "soft", "arguments": "--cb_explore_adf --softmax --lambda 4"}],
        },
    )
    admin.apply_from_evaluation({"evaluationId": "eval-apply", "policyName": "soft"})
    assert admin.get_policy() == {
        "name": "soft",
        "arguments": "--cb_explore_adf --softmax --lambda 4",
    }
    admin.reset_policy()
    logs = admin.get_log_properties()
    assert logs["dateRange"]["from"] <= logs["dateRange"]["to"]
    admin.delete_logs()
    assert admin.get_log_properties()["dateRange"] == {"from": None, "to": None}


def test_business_constraints_daily_cap_and_minimum_share(live: tuple[str, str]) -> None:
    url, _ = live
    client = PersonalizerClient(url, AzureKeyCredential(ADMIN_KEY), retry_total=0)
    from azure.core.exceptions import HttpResponseError

    capped = [
        {"id": "promo", "features": [{"kind": "promo"}], "constraints": {"dailyCap": 3}},
        {"id": "plain", "features": [{"kind": "plain"}]},
    ]
    for _ in range(3):  # only the promo is allowed: shown three times
        assert (
            client.rank({"actions": capped, "excludedActions": ["plain"]})["rewardActionId"]
            == "promo"
        )
    deadline = time.monotonic() + 10  # the control process counts them (about a second)
    while True:
        try:
            client.rank({"actions": capped, "excludedActions": ["plain"]})
        except HttpResponseError as e:
            assert e.status_code == 400 and "daily cap" in e.error.message
            break
        assert time.monotonic() < deadline, "the cap was never enforced"
        time.sleep(0.2)
    r = client.rank({"actions": capped})
    assert r["rewardActionId"] == "plain"
    assert {a["id"]: a["probability"] for a in r["ranking"]}["promo"] == 0
    # a minimum share: the rule's floor holds whatever the policy prefers
    shares = [{"id": f"s{i}", "features": [{"n": i}]} for i in range(4)]
    shares[3]["constraints"] = {"minShare": 0.4}
    for _ in range(5):
        r = client.rank({"actions": shares})
        assert {a["id"]: a["probability"] for a in r["ranking"]}["s3"] >= 0.4 - 1e-6
    with pytest.raises(HttpResponseError) as e:
        client.rank(
            {
                "actions": [
                    {"id": "a", "constraints": {"minShare": 0.7}},
                    {"id": "b", "constraints": {"minShare": 0.6}},
                ]
            }
        )
    assert e.value.status_code == 400 and e.value.error.target == "actions"
