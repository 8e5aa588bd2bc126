"""The Cython candidate filter against its plain-Python twin, and compiled targeting
programs against the expression semantics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adserver import _targeting
from adserver.common.expr import parse
from adserver.kernels import targeting_ref
from adserver.snapshot import format as f
from adserver.snapshot.programs import Properties, compile_expr, properties
from tests.kernels.generate import props, queries, snapshots
from tests.test_expr import trees


def _pair(arrays: dict) -> tuple:
    strings = arrays.pop("~strings")
    return _targeting.Targeting(arrays, strings), targeting_ref.Targeting(arrays, strings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshots(), queries(), st.data())
def test_filter_matches_twin(arrays: dict, q, data: st.DataObject) -> None:
    kernel, twin = _pair(arrays)
    n = len(arrays["ad_id"])
    rows = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=2 * n)), dtype=np.int32)
    paused = np.array(
        data.draw(
            st.lists(
                st.sampled_from([0, 0, 1]),
                min_size=len(arrays["fl_id"]),
                max_size=len(arrays["fl_id"]),
            )
        ),
        dtype=np.int8,
    )
    for pause in (np.zeros(0, np.int8), paused):
        got, got_reasons = kernel.filter(rows, q, pause, True)
        want, want_reasons = twin.filter(rows, q, pause, True)
        assert got.tolist() == want.tolist()
        assert got_reasons.tolist() == want_reasons.tolist()
        fast, none = kernel.filter(rows, q, pause, False)
        assert fast.tolist() == want.tolist() and none is None
    # pacing throttles: one seeded draw per flight and request, the same in both
    q.throttle = np.array(
        data.draw(
            st.lists(
                st.sampled_from([0.0, 0.25, 0.5, 0.999, 1.0]),
                min_size=len(arrays["fl_id"]),
                max_size=len(arrays["fl_id"]),
            )
        ),
        dtype=np.float32,
    )
    q.seed = data.draw(st.integers(0, 2**64 - 1))
    got, got_reasons = kernel.filter(rows, q, paused, True)
    want, want_reasons = twin.filter(rows, q, paused, True)
    assert got.tolist() == want.tolist() and got_reasons.tolist() == want_reasons.tolist()
    for row, reason in zip(rows.tolist(), got_reasons.tolist()):
        if reason == f.THROTTLED:
            assert q.throttle[arrays["ad_flight"][row]] < 1.0
    # a placement's posting lists in one call, an ad passing once, each list capped
    limit = data.draw(st.integers(0, 4))
    cut = data.draw(st.integers(0, len(rows)))
    lists = [rows[:cut], rows[cut:]]
    for explain in (False, True):
        got_n, want_n = np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64)
        got, got_r = kernel.filter_lists(lists, q, paused, explain, limit, got_n)
        want, want_r = twin.filter_lists(lists, q, paused, explain, limit, want_n)
        assert got.tolist() == want.tolist()
        assert got_n.tolist() == want_n.tolist() and got_n.sum() == len(got)
        assert (got_r is None and want_r is None) or got_r.tolist() == want_r.tolist()
    if limit:
        capped, _ = kernel.filter_lists(lists, q, paused, False, limit)
        assert len(capped) <= 2 * limit
    # keyword bids of the passing rows: the best matched keyword's own bid, else -1
    passing, _ = kernel.filter(rows, q, paused, False)
    assert kernel.keyword_bids(passing, q).tolist() == twin.keyword_bids(passing, q).tolist()
    # strided inputs (the kernel reads arrays by pointer: it must copy these, not misread)
    strided = np.repeat(rows, 2)[::2]
    q.zone_ids = np.repeat(q.zone_ids, 2)[::2]
    got, got_r = kernel.filter(strided, q, np.repeat(paused, 2)[::2], True)
    want, want_r = twin.filter(rows, q, paused, True)
    assert got.tolist() == want.tolist() and got_r.tolist() == want_r.tolist()


@settings(max_examples=5, deadline=None)
@given(snapshots())
def test_filter_refuses_arrays_of_another_dtype(arrays: dict) -> None:
    """The kernel reads a request's arrays by pointer: a wrong dtype is a clear error, never
    a misread."""
    from adserver.snapshot.query import Query

    kernel, _ = _pair(arrays)
    q = Query()
    rows = np.zeros(1, dtype=np.int32)
    paused = np.zeros(0, dtype=np.int8)
    q.zone_ids = np.zeros(1, dtype=np.int32)  # int64 expected
    with pytest.raises(ValueError, match="int64"):
        kernel.filter(rows, q, paused)
    q.zone_ids = np.zeros(1, dtype=np.int64)
    with pytest.raises(ValueError, match="int32"):
        kernel.filter(rows.astype(np.int64), q, paused)
    with pytest.raises(ValueError, match="counts"):
        kernel.filter_lists([rows], q, paused, False, 0, np.zeros(1, np.int32))
    assert kernel.filter(rows, q, paused)[0].tolist() in ([], [0])  # and the right ones pass


def test_throttle_lets_a_flight_through_at_its_rate() -> None:
    from adserver.kernels.targeting_ref import throttle_unit

    rng = np.random.default_rng(7)
    seeds = rng.integers(0, 2**63, size=20000).tolist()
    for p in (0.05, 0.3, 0.8):
        for row in (0, 17):
            share = sum(throttle_unit(s, row) < p for s in seeds) / len(seeds)
            assert abs(share - p) < 0.015
    # independent across flights in one request: not the same draw for every flight
    same = sum((throttle_unit(s, 0) < 0.5) == (throttle_unit(s, 1) < 0.5) for s in seeds)
    assert abs(same / len(seeds) - 0.5) < 0.02


@settings(max_examples=300, deadline=None)
@given(trees, props)
def test_compiled_program_means_what_the_expression_says(tree: tuple, properties: dict) -> None:
    from tests.test_expr import _render

    ast = parse(_render(tree))
    strings: list[str] = []
    program = compile_expr(ast, strings)
    cols = {
        name: np.array([ins[i] for ins in program], dtype=f.COLUMNS[name])
        for i, name in enumerate(("ins_op", "ins_key", "ins_num", "ins_str", "ins_arg"))
    }
    cols["fl_expr_ptr"] = np.array([0, len(program)], dtype=np.int64)
    twin = targeting_ref.Targeting(cols, strings)
    assert twin._program_ok(0, Properties(properties)) == targeting_ref.eval_ast(ast, properties)


@pytest.mark.parametrize(
    "expr, properties, expected",
    [
        ('$page == "search"', {"page": "search"}, True),
        ('$page == "search"', {"page": ["home", "search"]}, True),
        ("$price >= 20", {"price": "25.5"}, True),
        ("$price >= 20", {"price": "cheap"}, False),
        ("$member == true", {"member": True}, True),
        ("$member == true", {"member": "true"}, True),
        ("$n == 3", {"n": 3.0}, True),
        ('$user.tier in ["gold", "silver"]', {"user": {"tier": "gold"}}, True),
        ('$tags contains "sale"', {"tags": "summer sale now"}, True),
        ('$tags contains "sale"', {"tags": ["sale", "new"]}, True),
        ('$x != "a"', {}, True),
        ("exists $coupon", {"coupon": None}, False),
        ("not exists $coupon", {}, True),
    ],
)
def test_semantics_examples(expr: str, properties: dict, expected: bool) -> None:
    assert targeting_ref.eval_ast(parse(expr), properties) is expected


def test_request_properties_are_shared_only_when_they_compare_alike() -> None:
    """Placements repeat their properties, so their flattened form is kept; a boolean and
    the number 1 (equal and hashing alike in Python) still compare as "true" and "1"."""
    first = properties({"page_type": "search", "n": 1})
    assert properties({"page_type": "search", "n": 1}) is first
    assert properties({"page_type": "search", "n": True}).str.tolist() != first.str.tolist()
    assert properties({"page_type": "search", "n": 1.0}).str.tolist() == first.str.tolist()
    nested = properties({"tags": ["a", "b"]})  # a list value: flattened each time, alike
    assert nested is not properties({"tags": ["a", "b"]})
    assert nested.key.tolist() == properties({"tags": ["a", "b"]}).key.tolist()
    assert properties({}) is properties(None)
