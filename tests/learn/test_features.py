"""Feature specifications, device classes and model files (verification refuses damage)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from adserver.formats.versions import sha256_file
from adserver.learn import ctr, features
from adserver.learn.features import Spec, SpecError


def test_spec_round_trip_and_errors() -> None:
    spec = Spec()
    again = features.decode_spec(features.encode_spec(spec))
    assert again.crosses == spec.crosses and again.bits == spec.bits
    assert again.cross_arr.tolist() == spec.cross_arr.tolist()
    for bad, word in (
        (b'{"bits": 40}', "bits"),
        (b'{"context": ["nope"]}', "nope"),
        (b'{"crosses": [["token", "campaign"]]}', "crosses"),
        (b'{"extra": 1}', "extra"),
        (b"{", "JSON"),
    ):
        with pytest.raises(SpecError, match=word):
            features.decode_spec(bad)


def test_context_arrays() -> None:
    spec = Spec(context=["zone", "token", "category"], crosses=[("token", "ad")])
    f, v = spec.context_arrays({"zone": 3, "token": [7, 8], "category": 0, "site": 9})
    assert f.tolist() == [2, 6, 6] and v.tolist() == [3, 7, 8]  # category 0: none; site unused


@pytest.mark.parametrize(
    "ua,want",
    [
        (None, "unknown"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148", "mobile"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0)", "tablet"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari", "mobile"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131", "desktop"),
    ],
)
def test_device_of(ua: str | None, want: str) -> None:
    assert features.device_of(ua) == features.DEVICES[want]


def test_hour_of_week() -> None:
    assert features.hour_of_week(0) == 72  # Thursday 1970-01-01 00:00 UTC
    assert features.hour_of_week(4 * 86400) == 0  # Monday 1970-01-05


def _model(tmp_path: str, bits: int = 8) -> str:
    spec = Spec(bits=bits)
    w = np.zeros(1 << bits, dtype=np.float32)
    return ctr.write(str(tmp_path), "ctr", w, -4.0, spec, 0.5, {"label": "t"})


def test_written_model_loads_and_scores(tmp_path: str) -> None:
    version = _model(tmp_path)
    m = ctr.load(str(tmp_path), "ctr", version)
    ads = np.zeros((3, len(features.AD_ORDER)), dtype=np.uint64)
    p = m.predict(m.spec.context_arrays({"zone": 1, "token": [5]}), ads)
    q = 1 / (1 + np.exp(4.0))  # all weights 0: the bias, recalibrated for rate 0.5
    assert p == pytest.approx(np.full(3, q / (q + (1 - q) / 0.5)))


@pytest.mark.parametrize(
    "damage,word",
    [
        ("truncate", "checksum"),
        ("flip", "checksum"),
        ("manifest", "manifest"),
        ("missing", "weights.npy"),
        ("shape", "float32"),
    ],
)
def test_damaged_model_is_refused(tmp_path: str, damage: str, word: str) -> None:
    version = _model(tmp_path)
    path = os.path.join(ctr.models_root(str(tmp_path), "ctr"), version)
    weights = os.path.join(path, "weights.npy")
    if damage == "truncate":
        with open(weights, "r+b") as f:
            f.truncate(os.path.getsize(weights) - 10)
    elif damage == "flip":
        with open(weights, "r+b") as f:
            f.seek(200)
            byte = f.read(1)
            f.seek(200)
            f.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "manifest":
        with open(os.path.join(path, "manifest.json"), "w") as f:
            f.write("{not json")
    elif damage == "missing":
        os.remove(weights)
    elif damage == "shape":  # a consistent manifest over weights of the wrong size
        np.save(weights, np.zeros(10, dtype=np.float32))
        with open(os.path.join(path, "manifest.json")) as src:
            man = json.load(src)
        man["checksums"]["weights.npy"] = sha256_file(weights)
        with open(os.path.join(path, "manifest.json"), "w") as out:
            json.dump(man, out)
    with pytest.raises(ctr.ModelError, match=word):
        ctr.Model(path)


def test_serving_split_equals_the_full_sum(tmp_path: str) -> None:
    rng = np.random.default_rng(4)
    spec = Spec(bits=10)
    w = rng.normal(0, 1, 1 << 10).astype(np.float32)
    version = ctr.write(str(tmp_path), "ctr", w, -2.0, spec, 0.5, {})
    m = ctr.load(str(tmp_path), "ctr", version)
    ads = rng.integers(0, 50, size=(30, len(features.AD_ORDER))).astype(np.uint64)
    raw = {
        "site": 3,
        "zone": 4,
        "hour_of_week": 5,
        "device": 2,
        "segment": [8, 9],
        "token": [10, 11, 12],
        "category": 7,
    }
    rows = np.array([4, 0, 29, 4, 17])
    full = m.predict(m.spec.context_arrays(raw), ads[rows])
    split = m.predict_rows("snap-1", ads, raw, rows)
    assert np.allclose(full, split, rtol=1e-9, atol=1e-12)
    assert "snap-1" in m._ad_logits  # kept for the next request
