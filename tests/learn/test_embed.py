"""Embedding models: the kernel against its twin, a model trained on a clustered catalog,
model files that fail their checks, and ops-supplied static models."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adserver.kernels import embed as kernel
from adserver.kernels import embed_ref as twin
from adserver.learn import embed
from adserver.training import embed_train

KINDS = {
    "mug": ["coffee mug", "tea cup", "espresso cup", "travel mug"],
    "shoe": ["running shoe", "trail sneaker", "leather boot", "sandal"],
    "dog": ["dry dog food", "puppy kibble", "dog treats", "chew toy"],
    "audio": ["wireless headphones", "earbuds", "bluetooth speaker", "soundbar"],
}


def catalog(n: int, seed: int = 3) -> tuple[list[str], list[str]]:
    """Product texts in four clusters (brand and style words shared by all)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        kind = list(KINDS)[i % 4]
        texts.append(
            embed.product_text(
                f"{rng.choice(['Acme', 'Zed', 'Nova'])} {rng.choice(['deluxe', 'mini', 'pro'])} "
                f"{rng.choice(KINDS[kind])}",
                "Acme",
                ["Shop", kind.title()],
            )
        )
        labels.append(kind)
    return texts, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, embed.Model]:
    data = str(tmp_path_factory.mktemp("embed"))
    texts, _ = catalog(2000)
    version = embed_train.build(data, texts, dim=16)
    embed.publish(data, version)
    return data, embed.load(data, embed.current(data))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_embed_kernel_matches_twin(data: st.DataObject) -> None:
    rows, dim = data.draw(st.integers(1, 40)), data.draw(st.integers(2, 9))
    n = data.draw(st.integers(0, 30))
    ids = np.array(
        data.draw(st.lists(st.integers(0, rows - 1), min_size=n, max_size=n)), dtype=np.int64
    )
    kinds = np.array(
        data.draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=n, max_size=n)),
        dtype=np.float32,
    )
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    matrix = rng.standard_normal((rows, dim)).astype(np.float32)
    matrix[rng.random(rows) < 0.2] = 0  # buckets no text hit
    idf = (rng.random(rows) * 3).astype(np.float32)
    got, want = np.empty(dim), np.empty(dim)
    g = kernel.embed(ids, kinds, idf, matrix, got)
    w = twin.embed(ids, kinds, idf, matrix, want)
    assert g == pytest.approx(w, rel=1e-9, abs=1e-12)  # coverage
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    if g > 0:
        assert float(got @ got) == pytest.approx(1.0)
    else:
        assert not got.any()


def test_trained_model_puts_a_query_among_its_products(trained: tuple) -> None:
    _, model = trained
    texts, labels = catalog(400, seed=9)  # products the model was not fitted on
    vectors = np.stack([model.embed(t) for t in texts])
    for query, kind in [
        ("coffee mugs", "mug"),
        ("headphone", "audio"),
        ("Dog Food!", "dog"),
        ("sneakers", "shoe"),
        ("trail shoes", "shoe"),
    ]:
        q, confidence = model.query(query)
        assert confidence > 0.5, query
        assert q is not None and q.dtype == np.float32 and q.shape == (16,)
        top = np.argsort(-(vectors @ q))[:10]
        assert [labels[i] for i in top] == [kind] * 10, query
    assert model.embed("") is None and model.query("") == (None, 0.0)
    assert model.query("coffee mugs") is model.query("coffee mugs")  # cached
    # words the catalog never used: some 3-grams are known, but the model keeps little of it
    vec, confidence = model.query("quixotic blorp")
    assert vec is None or confidence < 0.4
    assert model.manifest["trained_on"] == 2000 and model.kind == "hashed"


def test_damaged_model_files_are_refused(trained: tuple, tmp_path: str) -> None:
    data, model = trained
    path = model.path
    with open(os.path.join(path, "idf.npy"), "rb") as src:
        raw = src.read()
    with open(os.path.join(path, "idf.npy"), "wb") as out:
        out.write(raw[:-8])  # truncated
    try:
        with pytest.raises(embed.ModelError, match="idf.npy is missing or does not match"):
            embed.load(data, model.version)
    finally:
        with open(os.path.join(path, "idf.npy"), "wb") as out:
            out.write(raw)
    assert embed.load(data, model.version).dim == 16
    with pytest.raises(embed.ModelError, match="manifest.json"):
        embed.Model(str(tmp_path))


def write_static(
    path: str, vocab: list[str], matrix: np.ndarray, weights: np.ndarray | None = None
) -> str:
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "vocab.txt"), "w") as out:
        out.writelines(v + "\n" for v in vocab)
    np.save(os.path.join(path, "matrix.npy"), matrix)
    if weights is not None:
        np.save(os.path.join(path, "weights.npy"), weights)
    return path


def test_static_model_round_trip(tmp_path: str) -> None:
    vocab = ["Mugs", "cup", "shoe", "new york", "mug"]
    matrix = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1], [0, 1, 0], [5, 5, 5]], dtype=np.float32)
    src = write_static(
        os.path.join(tmp_path, "src"), vocab, matrix, np.array([1, 1, 2, 1, 1], dtype=np.float32)
    )
    m, w, v = embed.read_static(src)
    data = str(tmp_path)
    model = embed.load(data, embed.write(data, "static", m, w, {}, v))
    assert model.kind == "static" and model.dim == 3
    # "Mugs" folds to "mug" (row 0; the later "mug" row is a repeat), "new york" is not a word
    assert model.vocab == {"mug": 0, "cup": 1, "shoe": 2}
    assert model.embed("MUG") == pytest.approx(np.array([1, 0, 0]))
    assert model.embed("shoes and mugs") == pytest.approx(np.array([1, 0, 2]) / np.sqrt(5))
    assert model.embed("new york") is None


@pytest.mark.parametrize(
    "vocab, matrix, weights, message",
    [
        (["a", "b"], np.ones((3, 4), dtype=np.float32), None, "vocab.txt has 2 tokens but"),
        (["a"], np.ones((1, 1), dtype=np.float32), None, "dim from 2 to 4096"),
        (["a"], np.ones((1, 4097), dtype=np.float32), None, "dim from 2 to 4096"),
        (["a"], np.array([[1, np.nan]], dtype=np.float32), None, "NaN or infinite"),
        (["a"], np.ones((1, 2), dtype=np.float32), np.ones(2, dtype=np.float32), "weights: shape"),
        (["a"], np.array([["x", "y"]]), None, "floating-point"),
    ],
)
def test_bad_static_models_are_refused_with_the_reason(
    tmp_path: str, vocab: list[str], matrix: np.ndarray, weights: np.ndarray | None, message: str
) -> None:
    src = write_static(os.path.join(tmp_path, "src"), vocab, matrix, weights)
    with pytest.raises(embed.ModelError, match=message):
        embed.read_static(src)


def test_manifest_names_settings_and_checksums(trained: tuple) -> None:
    _, model = trained
    with open(os.path.join(model.path, "manifest.json")) as src:
        manifest = json.load(src)
    assert manifest["kind"] == "hashed" and manifest["dim"] == 16  # given, not auto_dim
    assert set(manifest["checksums"]) == {"matrix.npy", "idf.npy"}
    assert manifest["buckets"] == embed.BUCKETS and manifest["gram"] == 3
