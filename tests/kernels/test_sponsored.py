"""The sponsored-product kernels (Cython, native/_sponsored.pyx) against their plain-Python
twins: the relevance gate with its rules on a hand-made case and its argument checks, and
the ads of retrieved products."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adserver import _sponsored
from adserver.kernels import sponsored as codes
from adserver.kernels import sponsored_ref as twin


class kernel:  # the Cython kernel with the twin's signature, as a module would
    """`_sponsored.Gate.run` called as the twin's `gate`, every column it reads passed in."""

    KEPT, DEDUPED, NOT_RELEVANT, UNAVAILABLE = (
        _sponsored.KEPT,
        _sponsored.DEDUPED,
        _sponsored.NOT_RELEVANT,
        _sponsored.UNAVAILABLE,
    )
    Gate = _sponsored.Gate
    from_columns = staticmethod(_sponsored.from_columns)

    @staticmethod
    def gate(
        rows,
        n_given,
        n_matched,
        ad_type,
        ad_product,
        ad_relevancy,
        ad_flight,
        fl_rate,
        fl_price,
        prior_ctr,
        prior_cvr,
        types,
        vectors,
        available,
        query,
        confidence,
        active,
        qrows,
        qscores,
        use_quality,
        exclude,
        threshold,
        floor,
        alpha,
        out_rows,
        out_boost,
        reasons,
        rel,
    ):
        columns = {
            "ad_type": ad_type,
            "ad_product": ad_product,
            "ad_relevancy": ad_relevancy,
            "ad_flight": ad_flight,
            "fl_rate": fl_rate,
            "fl_price": fl_price,
            "ad_prior_ctr": prior_ctr,
            "ad_prior_cvr": prior_cvr,
        }
        return _sponsored.from_columns(columns, vectors, available).run(
            rows,
            n_given,
            n_matched,
            types,
            query,
            confidence,
            active,
            qrows,
            qscores,
            use_quality,
            exclude,
            threshold,
            floor,
            alpha,
            out_rows,
            out_boost,
            reasons,
            rel,
        )


@st.composite
def cases(draw: st.DrawFn) -> dict:
    n_ads, n_prod, dim = draw(st.integers(1, 12)), draw(st.integers(1, 6)), 4
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    vectors = rng.standard_normal((n_prod, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n = draw(st.integers(0, 15))
    rows = np.array(
        draw(st.lists(st.integers(0, n_ads - 1), min_size=n, max_size=n, unique=n <= n_ads)),
        dtype=np.int32,
    )
    quality = draw(st.booleans())
    qrows = np.array(
        sorted(draw(st.sets(st.integers(0, n_prod - 1), max_size=n_prod))), dtype=np.int64
    )
    n_matched = draw(st.integers(0, len(rows)))
    return dict(
        rows=rows,
        n_given=draw(st.integers(0, n_matched)),
        n_matched=n_matched,
        ad_type=rng.integers(1, 3, n_ads).astype(np.int64),
        ad_product=rng.integers(-1, n_prod, n_ads).astype(np.int64),
        ad_relevancy=np.where(rng.random(n_ads) < 0.2, rng.integers(1, 1001, n_ads), 0).astype(
            np.int16
        ),
        ad_flight=rng.integers(0, 3, n_ads).astype(np.int32),
        fl_rate=np.array(
            draw(st.lists(st.sampled_from([0, 1, 2, 3]), min_size=3, max_size=3)), dtype=np.int8
        ),
        fl_price=np.array(
            draw(st.lists(st.sampled_from([100_000, 500_000, 2_000_000]), min_size=3, max_size=3)),
            dtype=np.int64,
        ),
        prior_ctr=np.full(n_ads, 0.01),
        prior_cvr=np.full(n_ads, 0.001),
        types=np.array(draw(st.sampled_from([[1], [1, 2]])), dtype=np.int64),
        vectors=vectors,
        available=(rng.random(n_prod) < 0.8).astype(np.int8),
        query=vectors[0] if draw(st.booleans()) else np.zeros(0, dtype=np.float32),
        confidence=draw(st.sampled_from([1.0, 0.5])),
        active=draw(st.booleans()),
        qrows=qrows if quality else np.zeros(0, dtype=np.int64),
        qscores=np.round(rng.uniform(0.1, 1.0, len(qrows)), 2) if quality else np.zeros(0),
        use_quality=quality,
        exclude=draw(st.integers(-1, n_prod - 1)),
        threshold=draw(st.sampled_from([0.0, 0.3, 0.9])),
        floor=draw(st.sampled_from([0.0, 0.1, 0.5])),
        alpha=draw(st.sampled_from([1.0, 0.5, 2.0])),
    )


def run(impl, case: dict) -> tuple:
    """(how many kept, their boosts, each row's relevance, each row's reason, the kept rows)"""
    n = case["rows"].shape[0]
    out_rows, boost = np.full(n, -1, dtype=np.int32), np.full(n, -1.0)
    rel, reasons = np.empty(n), np.empty(n, dtype=np.int8)
    kept = impl.gate(*case.values(), out_rows, boost, reasons, rel)
    return kept, boost[:kept], rel, reasons, out_rows[:kept]


@settings(max_examples=400, deadline=None)
@given(cases())
def test_gate_matches_twin(case: dict) -> None:
    got, want = run(kernel, case), run(twin, case)
    assert got[0] == want[0]
    assert got[3].tolist() == want[3].tolist()
    assert got[4].tolist() == want[4].tolist() == case["rows"][got[3] == kernel.KEPT].tolist()
    # float32 vectors: the kernel's loop may fuse multiply and add; agree to float32 precision
    assert got[1] == pytest.approx(want[1], rel=1e-6, abs=1e-6)
    assert got[2] == pytest.approx(want[2], rel=1e-6, abs=1e-6)


def test_gate_rules() -> None:
    v = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    case = dict(
        rows=np.array([3, 0, 1, 2, 4, 5], dtype=np.int32),  # row 3 matched by category
        n_given=1,
        n_matched=1,
        ad_type=np.array([1, 1, 1, 1, 1, 9], dtype=np.int64),  # row 5: another format
        ad_product=np.array([0, 1, 2, 2, 1, -1], dtype=np.int64),
        ad_relevancy=np.array([0, 0, 0, 0, 500, 0], dtype=np.int16),
        ad_flight=np.array([0, 0, 0, 0, 1, 0], dtype=np.int32),
        fl_rate=np.array([2, 2], dtype=np.int8),
        fl_price=np.array([1_000_000, 3_000_000]),
        prior_ctr=np.full(6, 0.01),
        prior_cvr=np.full(6, 0.001),
        types=np.array([1], dtype=np.int64),
        vectors=v,
        available=np.array([1, 1, 1], dtype=np.int8),
        query=v[0],
        confidence=1.0,
        active=True,
        qrows=np.zeros(0, dtype=np.int64),
        qscores=np.zeros(0),
        use_quality=False,
        exclude=-1,
        threshold=0.3,
        floor=0.1,
        alpha=1.0,
    )
    kept, boost, rel, reasons, rows = run(kernel, case)
    assert rel.tolist() == pytest.approx([1.0, 1.0, 0.8, 0.0, 0.8, 0.0])  # 5: no product
    # row 2: not relevant; row 3: matched by category, so relevant; rows 1 and 4 promote the
    # same product and row 4 bids 3x with half the boost (Kevel score 500): row 4 stays
    assert reasons.tolist() == [0, 0, kernel.DEDUPED, kernel.NOT_RELEVANT, 0, 0]
    assert kept == 4 and rows.tolist() == [3, 0, 4, 5]
    assert boost.tolist() == pytest.approx([1.0, 1.0, 0.5, 1.0])
    # rows 3 and 0 matched by keyword: a keyword lifts a product that plausibly matches the
    # query (row 0, cosine 1) but not one that does not (row 3, cosine 0 under the floor)
    assert run(kernel, {**case, "n_given": 0, "n_matched": 2})[3].tolist()[:2] == [
        kernel.NOT_RELEVANT,
        0,
    ]
    keyword = run(twin, {**case, "n_given": 0, "n_matched": 3, "floor": 0.7})
    assert keyword[2].tolist()[:3] == pytest.approx([0.0, 1.0, 1.0])  # row 1: 0.8 >= 0.7
    case["available"] = np.array([0, 1, 1], dtype=np.int8)
    case["exclude"] = 2
    reasons = run(kernel, case)[3]
    assert reasons.tolist()[:4] == [
        kernel.NOT_RELEVANT,
        kernel.UNAVAILABLE,
        kernel.DEDUPED,
        kernel.NOT_RELEVANT,
    ]


def test_gate_reason_codes_shared() -> None:
    """The Cython module's codes are the ones the rest of the server reads."""
    assert (kernel.KEPT, kernel.DEDUPED, kernel.NOT_RELEVANT, kernel.UNAVAILABLE) == (
        codes.KEPT,
        codes.DEDUPED,
        codes.NOT_RELEVANT,
        codes.UNAVAILABLE,
    )


def test_gate_checks_its_arrays() -> None:
    """Wrong dtypes, short or read-only outputs and a query of another dimension raise
    ValueError naming the array; strided inputs are read as they are."""
    v = np.eye(3, dtype=np.float32)
    columns = {
        "ad_type": np.ones(4, dtype=np.int64),
        "ad_product": np.arange(4) % 3,
        "ad_relevancy": np.zeros(4, dtype=np.int16),
        "ad_flight": np.zeros(4, dtype=np.int32),
        "fl_rate": np.array([1], dtype=np.int8),
        "fl_price": np.array([1_000_000]),
        "ad_prior_ctr": np.full(4, 0.01),
        "ad_prior_cvr": np.full(4, 0.001),
    }
    gate = kernel.from_columns(columns, v, np.ones(3, dtype=np.int8))
    rows = np.array([0, 1, 2, 3], dtype=np.int32)

    def call(rows=rows, query=v[0], outs=None):
        n = rows.shape[0]
        outs = outs or (
            np.empty(n, dtype=np.int32),
            np.empty(n),
            np.empty(n, dtype=np.int8),
            np.empty(n),
        )
        kept = gate.run(
            rows,
            0,
            0,
            np.array([1]),
            query,
            1.0,
            True,
            np.zeros(0, dtype=np.int64),
            np.zeros(0),
            False,
            -1,
            0.5,
            0.1,
            1.0,
            *outs,
        )
        return kept, outs[0][:kept].tolist()

    assert call() == (1, [0])  # rows 0 and 3 promote product 0: one ad per product
    assert call(rows=np.array([1, 3, 2, 0], dtype=np.int32)[::3]) == (1, [0])  # rows 1, 0
    with pytest.raises(ValueError, match="int32"):
        call(rows=rows.astype(np.int64))
    with pytest.raises(ValueError, match="query: 2 dimensions"):
        call(query=np.ones(2, dtype=np.float32))
    with pytest.raises(ValueError, match="out_boost"):
        call(
            outs=(np.empty(4, dtype=np.int32), np.empty(3), np.empty(4, dtype=np.int8), np.empty(4))
        )
    frozen = np.empty(4, dtype=np.int8)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="reasons"):
        call(outs=(np.empty(4, dtype=np.int32), np.empty(4), frozen, np.empty(4)))
    with pytest.raises(ValueError, match="ad_product: ad row 1 names product row 3 of 3"):
        kernel.from_columns(
            {**columns, "ad_product": np.array([0, 3, 1, 2])}, v, np.ones(3, dtype=np.int8)
        )
    with pytest.raises(ValueError, match="available: 2 entries for 3"):
        kernel.from_columns(columns, v, np.ones(2, dtype=np.int8))
    with pytest.raises(ValueError, match="ads: records"):
        kernel.Gate(
            (np.zeros(64, dtype=np.int64), np.zeros(0, dtype=np.uint8)),
            v,
            np.ones(3, dtype=np.int8),
        )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_product_ads_matches_twin(data: st.DataObject) -> None:
    """The ads of retrieved products: in the products' order, each product's ads in its own
    order, only the wanted types; products without sponsored ads (or repeated) as given."""
    n_prod = data.draw(st.integers(1, 20))
    ads_of = {
        p: data.draw(st.lists(st.integers(0, 29), max_size=4))
        for p in sorted(data.draw(st.sets(st.integers(0, n_prod - 1))))
    }
    sp_prow = np.array(sorted(ads_of), dtype=np.int64)
    sp_ptr = np.cumsum([0] + [len(ads_of[p]) for p in sorted(ads_of)]).astype(np.int64)
    sp_rows = np.array([r for p in sorted(ads_of) for r in ads_of[p]], dtype=np.int32)
    ad_type = np.array(
        data.draw(st.lists(st.integers(1, 3), min_size=30, max_size=30)), dtype=np.int64
    )
    types = np.array(data.draw(st.sampled_from([[1], [1, 2], [3]])), dtype=np.int64)
    prows = np.array(data.draw(st.lists(st.integers(0, n_prod - 1), max_size=12)), dtype=np.int64)
    gate = kernel.from_columns(
        {
            "sp_prow": sp_prow,
            "sp_ptr": sp_ptr,
            "sp_rows": sp_rows,
            "ad_type": ad_type,
            "ad_flight": np.zeros(30, dtype=np.int32),
            "fl_rate": np.zeros(1, dtype=np.int8),
        },
        np.zeros((n_prod, 0), dtype=np.float32),
        np.ones(n_prod, dtype=np.int8),
    )
    got = gate.product_ads(prows, types)
    want = twin.product_ads(prows, sp_prow, sp_ptr, sp_rows, ad_type, types)
    assert got.dtype == np.int32 and got.tolist() == want.tolist()
    assert want.tolist() == [
        r for p in prows.tolist() for r in ads_of.get(p, []) if ad_type[r] in types.tolist()
    ]
