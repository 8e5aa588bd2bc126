"""CTR models through the management API on a running `adserver run`: upload, gate, shadow,
rollback; hot swap under traffic with no failed request; the auction and the decision
records use the active model's pCTR; /metrics shows the versions."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from adserver.formats.segment import read_records
from adserver.learn import ctr
from adserver.learn.features import Spec
from tests.serving.conftest import Stack, golden_stack, traffic

BODY = {
    "placements": [{"networkId": 1, "siteId": 1, "zoneIds": [2], "adTypes": [2], "count": 2}],
    "user": {"key": "model-shopper"},
}
GOOD = {"logloss": 0.10, "auc": 0.70, "calibration": 1.0}


def model_tar(tmp: Path, seed: int, metrics: dict = GOOD, damage: bool = False) -> bytes:
    w = np.random.default_rng(seed).normal(0, 0.5, 1 << 12).astype(np.float32)
    version = ctr.write(
        "",
        "ctr",
        w,
        -3.0,
        Spec(bits=12),
        1.0,
        {
            "metrics": metrics,
            "baseline": {"prior": {"logloss": 0.2, "auc": 0.5}},
            "label": f"seed {seed}",
        },
        root=str(tmp),
    )
    path = tmp / version
    if damage:
        with open(path / "weights.npy", "r+b") as f:
            f.truncate(os.path.getsize(path / "weights.npy") // 2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(path, arcname="model")
    return buf.getvalue()


@pytest.fixture(scope="module")
def mstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with golden_stack(tmp_path_factory.mktemp("models")) as s:
        yield s


def upload(s: Stack, data: bytes, label: str = "") -> httpx.Response:
    return s.admin.put(
        "/v1/models/ctr/versions",
        content=data,
        params={"label": label},
        headers={"content-type": "application/gzip"},
    )


def upload_active(s: Stack, data: bytes, label: str = "") -> str:
    """Upload a version and make it active. The golden stack's logs are too few for the
    gate to measure an uploaded model (tests/control/test_registry.py measures on a
    simulated day's), so it is registered, then activated with force."""
    r = upload(s, data, label)
    assert r.status_code == 201 and r.json()["status"] == "registered", r.text
    assert "too few examples" in r.json()["reason"]
    version = r.json()["version"]
    a = s.admin.post(f"/v1/models/ctr/versions/{version}/activate", json={"force": True})
    assert a.status_code == 200 and a.json()["status"] == "active", a.text
    return version


@pytest.fixture(scope="module")
def models(mstack: Stack, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two good versions uploaded (the second active), for the tests that need an active
    model and another one, whichever of this module's tests ran before."""
    tmp = tmp_path_factory.mktemp("model-files")
    made = []
    for seed in (20, 21):
        made.append(upload_active(mstack, model_tar(tmp, seed), f"fixture {seed}"))
    mstack.wait_for(
        lambda: mstack.decide(BODY).headers.get("x-adserver-models") == f"ctr={made[-1]}"
    )
    return made


def test_hot_swap_under_traffic(mstack: Stack, tmp_path: Path) -> None:
    delays, versions = [], []
    with traffic(
        mstack.decisions, BODY, lambda r: (r.status_code, r.headers.get("x-adserver-models", ""))
    ) as seen:
        time.sleep(0.3)
        for i in range(5):
            version = upload_active(mstack, model_tar(tmp_path, i), f"swap {i}")
            versions.append(version)
            delays.append(mstack.wait_for(lambda: seen[-1][1] == f"ctr={version}", 5))
        # a truncated model is refused and the active one keeps serving
        r = upload(mstack, model_tar(tmp_path, 99, damage=True))
        assert r.status_code == 422 and "checksum" in r.json()["error"]["message"]
        time.sleep(0.3)
    failures = [x for x in seen if x[0] != 200]
    assert not failures, failures[:5]
    assert len(seen) > 50
    assert max(delays) < 1.0, delays  # the bound: workers switch within 1 s
    assert seen[-1][1] == f"ctr={versions[-1]}"
    metrics = httpx.get(mstack.decisions + "/metrics").text
    assert 'adserver_model_version{model="ctr",pid=' in metrics
    assert f'role="active"}} {float(int(versions[-1]))}' in metrics


def test_registry_api(mstack: Stack, tmp_path: Path) -> None:
    a = mstack.admin
    first = upload_active(mstack, model_tar(tmp_path, 10))
    # an upload's manifest is not evidence: the gate measures it on the server's own logs,
    # and here there are too few of them to (tests/control/test_registry.py measures)
    worse = upload(mstack, model_tar(tmp_path, 11, {**GOOD, "logloss": 0.3}))
    assert worse.status_code == 201 and worse.json()["status"] == "registered"
    assert "too few examples" in worse.json()["reason"]
    v = worse.json()["version"]
    r = a.post(f"/v1/models/ctr/versions/{v}/activate")
    assert r.status_code == 422 and "too few examples" in r.json()["error"]["message"]
    assert a.get("/v1/models").json()["ctr"]["active"] == first
    # shadow: scored and logged beside the active model
    assert a.post(f"/v1/models/ctr/versions/{v}/shadow").json()["shadow"] == v
    mstack.wait_for(
        lambda: f"ctr_shadow={v}" in mstack.decide(BODY).headers.get("x-adserver-models", "")
    )
    assert (
        a.post(f"/v1/models/ctr/versions/{v}/activate", json={"force": True}).json()["status"]
        == "active"
    )
    assert a.post("/v1/models/ctr/rollback").json()["version"] == first
    got = a.get(f"/v1/models/ctr/versions/{first}").json()
    assert got["status"] == "active" and got["manifest"]["metrics"] == GOOD
    assert got["manifest"]["label"] == "seed 10"
    listed = a.get("/v1/models/ctr/versions").json()["data"]
    assert {x["version"] for x in listed} >= {first, v}
    assert a.delete("/v1/models/ctr/shadow").json()["shadow"] is None
    # errors
    assert a.put("/v1/models/ctr/versions", content=b"not a tar").status_code == 422
    assert a.get("/v1/models/nope/versions").status_code == 404
    assert a.get("/v1/models/ctr/versions/999999").status_code == 404
    assert a.post("/v1/models/ctr/versions/bad/activate", content=b"{").status_code in (400, 404)
    ro = a.post("/v1/keys", json={"role": "readonly"}).json()["key"]
    with httpx.Client(base_url=mstack.api, headers={"X-Api-Key": ro}) as c:
        assert c.get("/v1/models").status_code == 200
        assert c.post("/v1/models/ctr/rollback").status_code == 403
        # Attack: a read-only key pins (or unpins) nothing
        assert c.post(f"/v1/models/ctr/versions/{v}/pin").status_code == 403
        assert c.delete(f"/v1/models/ctr/versions/{v}/pin").status_code == 403
    assert a.post(f"/v1/models/ctr/versions/{v}/pin").json()["pinned"] == 1
    assert a.delete(f"/v1/models/ctr/versions/{v}/pin").json()["pinned"] == 0
    assert a.post("/v1/models/ctr/versions/999999/pin").status_code == 404
    assert a.post("/v1/models/nope/versions/1/pin").status_code == 404


def records_of(s: Stack, user: str) -> list[dict]:
    found: list[dict] = []
    deadline = time.monotonic() + 5
    while not found and time.monotonic() < deadline:
        time.sleep(0.1)
        for seg in sorted((s.data_dir / "events").glob("w*/decisions-*.seg")):
            found += [rec for _, rec in read_records(str(seg)) if rec.get("user") == user]
    return found


def test_decision_records_carry_the_models_predictions(mstack: Stack, models: list[str]) -> None:
    a = mstack.admin
    active = a.get("/v1/models").json()["ctr"]["active"]
    other = next(
        x["version"]
        for x in a.get("/v1/models/ctr/versions").json()["data"]
        if x["version"] != active and x["status"] != "refused"
    )
    assert a.post(f"/v1/models/ctr/versions/{other}/shadow").status_code == 200
    header = f"ctr={active},ctr_shadow={other}"
    mstack.wait_for(lambda: mstack.decide(BODY).headers.get("x-adserver-models") == header)
    r = mstack.decide(
        {**BODY, "user": {"key": "record-models", "segments": ["a", "b"]}},
        headers={"user-agent": "Mozilla/5.0 (iPhone) Mobile"},
    )
    assert r.status_code == 200
    rec = records_of(mstack, "record-models")[0]
    assert rec["models"] == {"ctr": active, "ctr_shadow": other}
    assert rec["f"]["device"] == 2 and len(rec["f"]["segment"]) == 2
    winners = rec["placements"][0][2]
    raw = {**rec["f"], "site": 1, "zone": 2, "category": 0}
    ads = np.array([w[8] for w in winners], dtype=np.uint64)
    for version, at in ((active, 4), (other, 5)):  # shadowing: both, for every winner
        model = ctr.load(str(mstack.data_dir), "ctr", version)
        want = model.predict(model.spec.context_arrays(raw), ads)
        assert [w[at] for w in winners] == pytest.approx(want.tolist(), abs=1e-6)
    # without a shadow the record keeps what the auction used: these CPM winners' prior
    assert a.delete("/v1/models/ctr/shadow").status_code == 200
    mstack.wait_for(lambda: mstack.decide(BODY).headers.get("x-adserver-models") == f"ctr={active}")
    mstack.decide({**BODY, "user": {"key": "record-plain"}})
    rec = records_of(mstack, "record-plain")[0]
    assert rec["models"] == {"ctr": active}
    assert [(w[4], w[5]) for w in rec["placements"][0][2]] == [(0.01, None)] * len(winners)


def test_the_auction_ranks_cpc_ads_by_the_models_pctr(mstack: Stack, models: list[str]) -> None:
    active = mstack.admin.get("/v1/models").json()["ctr"]["active"]
    body = {
        "placements": [{"networkId": 1, "siteId": 1, "zoneIds": [2], "adTypes": [1], "count": 2}],
        "searchTerm": "running shoes",
        "user": {"key": "record-cpc"},
        "includePricingData": True,
    }
    mstack.wait_for(lambda: mstack.decide(body).headers.get("x-adserver-models") == f"ctr={active}")
    r = mstack.decide({**body, "user": {"key": "record-cpc-scored"}})  # on that model
    made = r.json()["decisions"]["div0"]
    assert {d["adId"] for d in made} == {4, 5}  # both CPC keyword ads
    model = ctr.load(str(mstack.data_dir), "ctr", active)
    rec = next(x for x in records_of(mstack, "record-cpc-scored") if x["id"])
    raw = {**rec["f"], "site": 1, "zone": 2, "category": 0}
    winners = rec["placements"][0][2]
    want = model.predict(
        model.spec.context_arrays(raw), np.array([w[8] for w in winners], dtype=np.uint64)
    )
    for d, w, p in zip(made, winners, want.tolist()):
        assert w[4] == pytest.approx(p, abs=1e-9)  # logged: the model's, not the prior
        # eCPM = bid x pCTR x 1000 with the model's pCTR
        assert d["pricing"]["eCPM"] == pytest.approx(d["pricing"]["price"] * p * 1000, rel=1e-5)
    ranked = sorted(made, key=lambda d: -d["pricing"]["eCPM"])
    assert [d["adId"] for d in made] == [d["adId"] for d in ranked]


def test_a_worker_refuses_a_damaged_model_the_pointer_names(
    mstack: Stack, models: list[str]
) -> None:
    """Fault injection past the registry (which never publishes a damaged version): the
    worker verifies the files again, refuses them and keeps serving the old model."""
    import shutil

    from adserver.formats import versions

    root = Path(ctr.models_root(str(mstack.data_dir), "ctr"))
    active = ctr.pointer(str(mstack.data_dir), "ctr")
    bad = root / "999990"
    shutil.copytree(root / str(active), bad)
    with open(bad / "weights.npy", "r+b") as f:
        f.truncate(100)
    try:
        versions.publish(str(root), "999990")
        time.sleep(0.5)  # five polls
        for _ in range(20):
            r = mstack.decide(BODY)
            assert r.status_code == 200 and r.headers["x-adserver-models"] == f"ctr={active}"
        assert (
            'adserver_model_refused_total{model="ctr"} 1.0'
            in httpx.get(mstack.decisions + "/metrics").text
        )
    finally:
        versions.publish(str(root), str(active))
        shutil.rmtree(bad)


def tar_of(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def test_uploads_cannot_fill_the_disk_or_lie_their_way_in(mstack: Stack) -> None:
    """Attack: a small gzip whose one member claims 1 GiB (a decompression bomb), an archive
    of thousands of files, and one carrying a link out of the extraction folder. Each is a
    422 before anything is written; the models directory holds no leftovers."""
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb") as gz:
        info = tarfile.TarInfo("model/weights.npy")
        info.size = 1 << 30
        gz.write(info.tobuf())
        gz.write(b"\0" * (1 << 20))  # the first MiB of it; the header is what is judged
    many = tar_of([(tarfile.TarInfo(f"f{i}"), b"") for i in range(5000)])
    link = tarfile.TarInfo("model/manifest.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    linked = tar_of([(link, b"")])
    for body, why in (
        (bomb.getvalue(), "unpacks to more than"),
        (many, "more than 16"),
        (linked, "not a file or folder"),
    ):
        r = upload(mstack, body)
        assert r.status_code == 422 and why in r.json()["error"]["message"], r.text
    root = Path(mstack.data_dir) / "models"
    assert not [p for p in root.glob(".upload-*")]
