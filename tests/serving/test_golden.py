"""Whole-pipeline cases: tests/golden/<case>.json request -> expected decisions, through a
real server over the network built from tests/golden/network.json."""

from __future__ import annotations

import json

import pytest

from tests.serving.conftest import GOLDEN, Stack

CASES = sorted(p.stem for p in GOLDEN.glob("*.json") if p.stem != "network")


@pytest.mark.parametrize("case", CASES)
def test_golden(stack: Stack, case: str) -> None:
    doc = json.loads((GOLDEN / f"{case}.json").read_text())
    r = stack.decide(doc["request"])
    assert r.status_code == 200, r.text
    decisions = r.json()["decisions"]
    assert set(decisions) == set(doc["expect"])
    for div, want in doc["expect"].items():
        got = decisions[div]
        count = next(
            (
                p.get("count") or 1
                for i, p in enumerate(doc["request"]["placements"])
                if (p.get("divName") or f"div{i}") == div
            ),
            1,
        )
        if want is None:
            assert got is None, div
            continue
        items = got if count > 1 else [got]
        assert isinstance(got, list) == (count > 1), div
        assert [d["adId"] for d in items] == want, div
        for d in items:
            assert d["flightId"] == d["adId"] and d["creativeId"] == d["adId"]
            assert d["impressionUrl"].startswith(stack.decisions + "/i.gif?t=")
            assert d["clickUrl"].startswith(stack.decisions + "/r?t=")
            assert d["contents"] and "type" in d["contents"][0]
            assert ("pricing" in d) == bool(doc["request"].get("includePricingData"))
        if "pricing" in doc:
            assert [d["pricing"] for d in items] == [pytest.approx(p) for p in doc["pricing"][div]]
