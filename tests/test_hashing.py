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
