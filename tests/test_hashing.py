"""The Cython hashing module against its plain-Python twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adserver import _hashing as native
from adserver.kernels import hashing_ref as ref

u64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(st.text(max_size=200), u64)
def test_hash_str_matches_twin(s: str, seed: int) -> None:
    assert native.hash_str(s, seed) == ref.hash_str(s, seed)


@given(u64, u64)
def test_cross_matches_twin(a: int, b: int) -> None:
    assert native.cross(a, b) == ref.cross(a, b)


@given(st.text(max_size=30), st.text(max_size=30), u64)
def test_hash_feature_matches_twin(name: str, value: str, seed: int) -> None:
    assert native.hash_feature(name, value, seed) == ref.hash_feature(name, value, seed)


@given(st.lists(st.text(max_size=20), max_size=50), u64)
def test_hash_strs_matches_twin(items: list[str], seed: int) -> None:
    out = native.hash_strs(items, seed)
    assert out.dtype == np.uint64
    assert np.array_equal(out, ref.hash_strs(items, seed))


@given(
    st.lists(st.text(min_size=1, max_size=12) | st.text(min_size=250, max_size=300), max_size=8),
    st.integers(min_value=1, max_value=2**20),
    st.floats(0, 4, width=32),
    st.floats(0, 4, width=32),
    u64,
    u64,
    st.integers(min_value=1, max_value=5),
)
def test_text_features_match_twin(
    words: list[str], buckets: int, ww: float, gw: float, wseed: int, gseed: int, gram: int
) -> None:
    # any Unicode (multi-byte characters: grams are characters, not bytes), words shorter
    # than a gram, and words past the kernel's 255-character fast path
    ids, kinds = native.text_features(words, buckets, ww, gw, wseed, gseed, gram)
    want_ids, want_kinds = ref.text_features(words, buckets, ww, gw, wseed, gseed, gram)
    assert ids.dtype == np.int64 and kinds.dtype == np.float32
    assert np.array_equal(ids, want_ids)
    assert np.array_equal(kinds, want_kinds)


def test_text_features_shapes_and_refusals() -> None:
    ids, kinds = native.text_features(["ab", "é"], 1 << 18, 1.0, 0.5, 7, 9, 3)
    # "ab": its word, then "<ab", "ab>"; "é": its word, then "<é>"
    assert ids.tolist() == [
        native.hash_str("ab", 7) % (1 << 18),
        native.hash_str("é", 7) % (1 << 18),
        *(native.hash_str(g, 9) % (1 << 18) for g in ("<ab", "ab>", "<é>")),
    ]
    assert kinds.tolist() == [1.0, 1.0, 0.5, 0.5, 0.5]
    with pytest.raises(ValueError):
        native.text_features(["a"], 0, 1.0, 1.0, 0, 0, 3)
    with pytest.raises(TypeError):
        native.text_features(["a", 3], 8, 1.0, 1.0, 0, 0, 3)  # type: ignore[list-item]


def test_values_are_pinned() -> None:
    # Ids are persisted in snapshots and models: a change here breaks every stored file.
    assert native.hash_str("") == 0x9775A911A90DCF7A
    assert native.hash_str("shoes") == 15028596794369765489


def test_distinct_and_order_sensitive() -> None:
    words = [f"kw{i}" for i in range(20000)]
    assert len(set(native.hash_strs(words).tolist())) == len(words)
    a, b = native.hash_str("a"), native.hash_str("b")
    assert native.cross(a, b) != native.cross(b, a)
    assert native.hash_str("x", 1) != native.hash_str("x", 2)


def test_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        native.hash_str(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.hash_strs(["ok", 3])  # type: ignore[list-item]


@st.composite
def feature_cases(draw):  # type: ignore[no-untyped-def]
    fields = st.integers(min_value=1, max_value=8)
    nctx = draw(st.integers(0, 6))
    ctx_field = np.array(draw(st.lists(fields, min_size=nctx, max_size=nctx)), dtype=np.uint64)
    ctx_value = np.array(draw(st.lists(u64, min_size=nctx, max_size=nctx)), dtype=np.uint64)
    na = draw(st.integers(1, 4))
    n = draw(st.integers(0, 5))
    ad_field = np.arange(16, 16 + na, dtype=np.uint64)
    ad_values = np.array(
        draw(st.lists(u64, min_size=n * na, max_size=n * na)), dtype=np.uint64
    ).reshape(n, na)
    nx = draw(st.integers(0, 3))
    crosses = np.array(
        [[draw(fields), draw(st.integers(0, na - 1))] for _ in range(nx)], dtype=np.int32
    ).reshape(nx, 2)
    return (
        ctx_field,
        ctx_value,
        ad_field,
        ad_values,
        crosses,
        draw(u64),
        draw(st.integers(1, 30)),
        draw(st.booleans()),
    )


@given(feature_cases())
def test_hash_features_matches_twin(case) -> None:  # type: ignore[no-untyped-def]
    got = native.hash_features(*case)
    want = ref.hash_features(*case)
    if not case[-1]:  # crosses only: the last columns of the full matrix
        full = native.hash_features(*case[:-1])
        assert np.array_equal(got, full[:, full.shape[1] - got.shape[1] :])
    assert got.dtype == np.int32 and got.shape == want.shape
    assert np.array_equal(got, want)
    assert got.size == 0 or (got.min() >= 0 and got.max() < 2 ** case[-2])


def test_hash_features_layout() -> None:
    # two context features (a token twice), one ad field crossed with the token field
    ctx_f = np.array([6, 6, 2], dtype=np.uint64)
    ctx_v = np.array([11, 12, 99], dtype=np.uint64)
    ad_f = np.array([16], dtype=np.uint64)
    ads = np.array([[7], [8]], dtype=np.uint64)
    crosses = np.array([[6, 0]], dtype=np.int32)
    out = native.hash_features(ctx_f, ctx_v, ad_f, ads, crosses, 5, 20)
    assert out.shape == (2, 3 + 1 + 2)
    assert np.array_equal(out[0, :3], out[1, :3])  # context part shared
    assert out[0, 3] != out[1, 3]  # the ad differs
    assert native.feature_width(ctx_f, 1, crosses) == 6
    with pytest.raises(ValueError):
        native.hash_features(ctx_f, ctx_v, ad_f, ads, np.array([[6, 1]], dtype=np.int32), 5, 20)
    with pytest.raises(ValueError):
        native.hash_features(ctx_f, ctx_v, ad_f, ads, crosses, 5, 31)
