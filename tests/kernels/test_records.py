"""The hot records (native/records.pxd) the filter and the relevance gate read: each field
equals its snapshot column, at the layout the header declares, 64-byte aligned."""

from __future__ import annotations

import numpy as np
import pytest

from adserver import _records

AD = np.dtype(
    [
        ("ad_id", "<i8"),
        ("creative", "<i8"),
        ("type", "<i8"),
        ("product", "<i8"),
        ("prior_ctr", "<f8"),
        ("prior_cvr", "<f8"),
        ("flight", "<i4"),
        ("seen", "<i4"),
        ("relevancy", "<i2"),
        ("pad", "V2"),
        ("weight", "<i4"),
    ]
)
RANGES = ("site", "zone", "seg", "geo", "kw")
FLIGHT = np.dtype(
    [
        ("start", "<i8"),
        ("end", "<i8"),
        *((f"{r}_{e}", "<i4") for r in RANGES for e in ("lo", "hi")),
        ("dedupe", "i1"),
        ("rate", "i1"),
        ("pad1", "V2"),
        ("priority", "<i4"),
        *((f"{r}_{e}", "<i4") for r in ("expr", "fcap") for e in ("lo", "hi")),
        ("price", "<i8"),
        ("daypart", "<u8", (3,)),
        ("pad2", "V16"),
    ]
)


def columns(n_ads: int, n_fl: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def ptr() -> np.ndarray:
        return np.concatenate([[0], np.cumsum(rng.integers(0, 4, n_fl))]).astype(np.int64)

    return {
        "ad_id": rng.integers(1, 10**12, n_ads),
        "ad_creative": rng.integers(1, 10**9, n_ads),
        "ad_type": rng.integers(1, 5, n_ads),
        "ad_product": rng.integers(-1, 1000, n_ads),
        "ad_prior_ctr": rng.random(n_ads),
        "ad_prior_cvr": rng.random(n_ads),
        "ad_flight": rng.integers(0, n_fl, n_ads).astype(np.int32),
        "ad_relevancy": rng.integers(0, 1001, n_ads).astype(np.int16),
        "ad_weight": rng.integers(0, 1000, n_ads).astype(np.int32),
        "fl_priority": rng.integers(0, 9, n_fl).astype(np.int32),
        "fl_start": rng.integers(0, 2**40, n_fl),
        "fl_end": rng.integers(0, 2**62, n_fl),
        "fl_dedupe": rng.integers(0, 5, n_fl).astype(np.int8),
        "fl_rate": rng.integers(0, 4, n_fl).astype(np.int8),
        "fl_price": rng.integers(0, 10**8, n_fl),
        "fl_daypart": rng.integers(0, 2**63, (n_fl, 3), dtype=np.uint64),
        **{f"fl_{r}_ptr": ptr() for r in (*RANGES, "expr", "fcap")},
    }


@pytest.mark.parametrize("n_ads,n_fl", [(0, 0), (1, 1), (257, 31)])
def test_records_hold_the_columns(n_ads: int, n_fl: int) -> None:
    c = columns(n_ads, n_fl)
    ads, flights = _records.records(c)
    assert n_ads == 0 or ads.ctypes.data % 64 == 0
    assert n_fl == 0 or flights.ctypes.data % 64 == 0
    assert ads.nbytes == 64 * n_ads and flights.nbytes == 128 * n_fl
    a, f = ads.view(AD), flights.view(FLIGHT)
    for field, column in (
        ("ad_id", "ad_id"),
        ("creative", "ad_creative"),
        ("type", "ad_type"),
        ("product", "ad_product"),
        ("prior_ctr", "ad_prior_ctr"),
        ("prior_cvr", "ad_prior_cvr"),
        ("flight", "ad_flight"),
        ("relevancy", "ad_relevancy"),
        ("weight", "ad_weight"),
    ):
        assert a[field].tolist() == c[column].tolist(), field
    assert not a["seen"].any()
    for field in ("start", "end", "dedupe", "rate", "price", "daypart", "priority"):
        assert f[field].tolist() == c[f"fl_{field}"].tolist(), field
    for r in (*RANGES, "expr", "fcap"):
        assert f[f"{r}_lo"].tolist() == c[f"fl_{r}_ptr"][:-1].tolist(), r
        assert f[f"{r}_hi"].tolist() == c[f"fl_{r}_ptr"][1:].tolist(), r


def test_records_refuse_ranges_beyond_32_bits() -> None:
    c = columns(2, 2)
    c["fl_kw_ptr"] = np.array([0, 2**31, 2**31], dtype=np.int64)
    with pytest.raises(ValueError, match="keywords: 2147483648"):
        _records.records(c)


@pytest.mark.parametrize(
    "column,size,message",
    [
        ("ad_type", 3, "ad_type: 3 entries where 2 were expected"),
        ("fl_geo_ptr", 2, "fl_geo_ptr: 2 entries where 3 were expected"),
    ],
)
def test_records_refuse_columns_of_other_lengths(column: str, size: int, message: str) -> None:
    c = columns(2, 2)
    c[column] = np.zeros(size, dtype=c[column].dtype)
    with pytest.raises(ValueError, match=message):
        _records.records(c)
