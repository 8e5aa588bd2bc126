"""Prices in decisions are rounded to micro-units (revenue to nano-units)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adserver.serving.stages.respond import decimals


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_decimals_rounds_to_the_unit_and_prints_short(x: float) -> None:
    got = decimals(x, 1e6)
    assert abs(got - x) <= 0.5e-6 + 1e-9 * max(1.0, x)  # the nearest micro-unit (within an ulp)
    assert abs(got - round(x, 6)) <= 1.01e-6  # round(x, 6) or its neighbour at a tie
    text = repr(got)  # what the JSON encoder writes: no binary noise past the decimals
    assert "e" in text or len(text.partition(".")[2]) <= 6
    revenue = decimals(x / 1000, 1e9)  # a CPM price's revenue per impression
    assert abs(revenue - x / 1000) <= 0.5e-9 + 1e-12 * max(1.0, x)
    assert "e" in repr(revenue) or len(repr(revenue).partition(".")[2]) <= 9
