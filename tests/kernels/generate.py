"""Random snapshots and queries for comparing kernels with their twins (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import strategies as st

from adserver.common import entities as e
from adserver.control.compiler import Inputs, build
from adserver.snapshot.programs import Properties, geo_id
from adserver.snapshot.query import Query, frequency, phrases, segment_ids
from tests.test_expr import _render, trees

EMPTY = np.zeros(0, dtype=np.int64)
NOW = int(dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC).timestamp())
WORDS = ["red", "shoe", "shoes", "running", "kid", "sale", "blue", "coffee"]
SEGMENTS = ["a", "b", "c", 7]
PROP_KEYS = ["a", "b", "c", "a.b", "page"]

words = st.sampled_from(WORDS)
keyword = st.builds(
    lambda ws, m, n, b: e.Keyword(text=" ".join(ws), match=m, negative=n, bid=b),
    st.lists(words, min_size=1, max_size=2),
    st.sampled_from(["exact", "phrase", "broad"]),
    st.booleans(),
    st.sampled_from([None, None, Decimal("0.5"), Decimal("3.25")]),
)
geo = st.builds(
    lambda c, r, x: e.GeoTarget(country=c, region=r, exclude=x),
    st.sampled_from(["US", "DE"]),
    st.sampled_from([None, "CA", "NY"]),
    st.booleans(),
)
daypart = st.builds(
    lambda days, s, n: e.Daypart(days=days, start_hour=s, end_hour=min(24, s + n)),
    st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True),
    st.integers(0, 23),
    st.integers(1, 12),
)
expression = trees.map(_render)
fcap = st.builds(
    lambda level, n, w: e.FrequencyCap(level=level, count=n, window_seconds=w),
    st.sampled_from(["flight", "campaign", "advertiser"]),
    st.integers(1, 3),
    st.sampled_from([60, 3600, 86400]),
)


def sometimes(strategy: Any, otherwise: Any) -> Any:
    """`strategy` a third of the time, else `otherwise`: keeps most candidates alive long
    enough to reach the later checks."""
    return st.one_of(st.just(otherwise), st.just(otherwise), strategy)


@st.composite
def flights(draw: Any, fid: int) -> e.Flight:
    start = NOW + draw(st.sampled_from([-86400, -86400, -86400, -60, 0, 1, 3600]))
    end = draw(st.sampled_from([None, None, None, NOW, NOW + 1, NOW + 86400]))
    return e.Flight(
        campaign_id=draw(st.integers(1, 3)),
        priority_id=1,
        name=f"f{fid}",
        start=dt.datetime.fromtimestamp(start, dt.UTC),
        end=None if end is None or end <= start else dt.datetime.fromtimestamp(end, dt.UTC),
        price=Decimal("1"),
        site_ids=draw(sometimes(st.lists(st.integers(1, 3), max_size=2, unique=True), [])),
        zone_ids=draw(sometimes(st.lists(st.integers(10, 13), max_size=2, unique=True), [])),
        segments=[
            str(s) for s in draw(sometimes(st.lists(st.sampled_from(SEGMENTS), max_size=2), []))
        ],
        geo=draw(sometimes(st.lists(geo, max_size=2), [])),
        dayparts=draw(sometimes(st.lists(daypart, max_size=2), [])),
        keywords=draw(sometimes(st.lists(keyword, max_size=3), [])),
        custom_targeting=draw(st.none() | expression),
        frequency_caps=draw(st.lists(fcap, max_size=2)),
        dedupe=draw(st.sampled_from(["none", "flight", "campaign", "advertiser", "creative"])),
    )


@st.composite
def snapshots(draw: Any) -> dict[str, np.ndarray]:
    n_flights = draw(st.integers(1, 6))
    fl = {i: draw(flights(i)) for i in range(1, n_flights + 1)}
    ads, creatives = [], {}
    for a in range(1, draw(st.integers(1, 12)) + 1):
        creatives[a] = e.Creative(
            advertiser_id=1, ad_type_id=1, name="c", kind="html", body="x", status="approved"
        )
        ads.append(_Ad(a, draw(st.integers(1, n_flights)), a))
    inp = Inputs(
        ads=ads,
        flights=fl,
        creatives=creatives,
        priorities={1: e.Priority(channel_id=1, name="p", tier=1)},
        ad_types={1: e.AdType(network_id=1, name="t", format="native")},
        scope={i: (1, draw(st.integers(1, 2))) for i in fl},
    )
    arrays, _, strings, _ = build(inp)
    arrays["~strings"] = strings  # type: ignore[assignment]
    return arrays


class _Ad:
    def __init__(self, id_: int, flight_id: int, creative_id: int):
        self.id, self.flight_id, self.creative_id = id_, flight_id, creative_id
        self.weight, self.relevancy_score, self.product_id = 100, None, None


prop_values = st.one_of(
    st.integers(-5, 5),
    st.booleans(),
    st.sampled_from(["x", "ab", "red shoe", "7", "a"]),
    st.floats(-3, 3, allow_nan=False),
)
props = st.dictionaries(
    st.sampled_from(["a", "b", "c", "page"]),
    st.one_of(
        prop_values,
        st.lists(prop_values, max_size=3),
        st.dictionaries(st.sampled_from(["b", "c"]), prop_values, max_size=2),
    ),
    max_size=4,
)


@st.composite
def queries(draw: Any) -> Query:
    def ids(lo: int, hi: int) -> np.ndarray:
        return np.array(draw(st.lists(st.integers(lo, hi), max_size=3)), dtype=np.int64)

    ptr, tok, _ = phrases(
        draw(st.none() | st.lists(words, max_size=4).map(" ".join)),
        draw(st.lists(st.lists(words, min_size=1, max_size=2).map(" ".join), max_size=2)),
    )
    return Query(
        now=NOW + draw(st.sampled_from([0, 1, 3600])),
        hour_of_week=draw(st.integers(0, 167)),
        site_id=draw(st.integers(1, 3)),
        zone_ids=ids(10, 13),
        forced_campaign=draw(st.sampled_from([0, 0, 0, 0, 1, 2])),
        forced_flight=draw(st.sampled_from([0, 0, 0, 0, 1])),
        forced_ad=draw(st.sampled_from([0, 0, 0, 0, 0, 2])),
        blocked_creatives=draw(sometimes(st.builds(lambda: ids(1, 12)), EMPTY)),
        segments=segment_ids(draw(st.lists(st.sampled_from(SEGMENTS + ["7"]), max_size=3))),
        personalized=draw(st.booleans()),
        geo=(
            geo_id(draw(st.sampled_from([None, "US", "DE"]))),
            geo_id(draw(st.sampled_from([None, "CA", "NY"]))),
            0,
            0,
        ),
        phrase_ptr=ptr,
        phrase_tok=tok,
        props=Properties(draw(props)),
        used_flights=draw(sometimes(st.builds(lambda: ids(1, 6)), EMPTY)),
        used_campaigns=draw(sometimes(st.builds(lambda: ids(1, 3)), EMPTY)),
        used_advertisers=draw(sometimes(st.builds(lambda: ids(1, 2)), EMPTY)),
        used_creatives=draw(sometimes(st.builds(lambda: ids(1, 12)), EMPTY)),
        **dict(
            zip(
                ("u_level", "u_id", "u_ts"),
                frequency(
                    draw(
                        sometimes(
                            st.lists(
                                st.tuples(
                                    st.integers(0, 2),
                                    st.integers(1, 6),
                                    st.sampled_from([NOW - 30, NOW - 600, NOW - 7200, NOW - 90000]),
                                ).map(list),
                                max_size=6,
                            ),
                            [],
                        )
                    )
                ),
            )
        ),
    )
