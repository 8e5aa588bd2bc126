# Hot records (native/records.pxd): what the candidate filter, the relevance gate and the
# auction read of an ad row and of a flight, one record each, built from a snapshot's columns
# when it loads. Each kernel binds them: the filter builds its own (it keeps a scratch mark
# in the ad records), the gate and the waterfall read the filter's.

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint64_t

from records cimport AdRec, FlightRec, _records

cnp.import_array()


cdef inline int32_t _i32(int64_t x, str what) except? -1:
    if x < 0 or x > 2147483647:
        raise ValueError(f"{what}: {x} is beyond the hot records' 32-bit ranges")
    return <int32_t>x


def records(columns):
    """(ads, flights): the hot records (native/records.pxd) of a snapshot's columns, as
    64-byte aligned uint8 arrays: one 64-byte record per ad row, one 128-byte record per
    flight."""
    if sizeof(AdRec) != 64 or sizeof(FlightRec) != 128:
        raise RuntimeError("hot records: the compiler laid the structs out unexpectedly")
    g = columns.__getitem__
    cdef const int32_t[:] ad_flight = g("ad_flight")
    cdef const int64_t[:] ad_id = g("ad_id"), ad_creative = g("ad_creative")
    cdef const int64_t[:] ad_type = g("ad_type"), ad_product = g("ad_product")
    cdef const int16_t[:] ad_relevancy = g("ad_relevancy")
    cdef const int32_t[:] ad_weight = g("ad_weight"), priority = g("fl_priority")
    cdef const double[:] prior_ctr = g("ad_prior_ctr"), prior_cvr = g("ad_prior_cvr")
    cdef const int64_t[:] start = g("fl_start"), end = g("fl_end"), price = g("fl_price")
    cdef const int8_t[:] dedupe = g("fl_dedupe"), rate = g("fl_rate")
    cdef const uint64_t[:, :] daypart = g("fl_daypart")
    cdef const int64_t[:] site = g("fl_site_ptr"), zone = g("fl_zone_ptr"), seg = g("fl_seg_ptr")
    cdef const int64_t[:] geo = g("fl_geo_ptr"), kw = g("fl_kw_ptr"), expr = g("fl_expr_ptr")
    cdef const int64_t[:] fcap = g("fl_fcap_ptr")
    cdef Py_ssize_t n_ads = ad_flight.shape[0], n_fl = start.shape[0], i, n
    for name, col, want in (
            ("ad_id", ad_id, n_ads), ("ad_creative", ad_creative, n_ads),
            ("ad_type", ad_type, n_ads), ("ad_product", ad_product, n_ads),
            ("ad_relevancy", ad_relevancy, n_ads), ("ad_weight", ad_weight, n_ads),
            ("ad_prior_ctr", prior_ctr, n_ads), ("ad_prior_cvr", prior_cvr, n_ads),
            ("fl_end", end, n_fl), ("fl_price", price, n_fl), ("fl_dedupe", dedupe, n_fl),
            ("fl_rate", rate, n_fl), ("fl_priority", priority, n_fl),
            ("fl_site_ptr", site, n_fl + 1), ("fl_zone_ptr", zone, n_fl + 1),
            ("fl_seg_ptr", seg, n_fl + 1), ("fl_geo_ptr", geo, n_fl + 1),
            ("fl_kw_ptr", kw, n_fl + 1), ("fl_expr_ptr", expr, n_fl + 1),
            ("fl_fcap_ptr", fcap, n_fl + 1)):
        if len(col) != want:
            raise ValueError(f"{name}: {len(col)} entries where {want} were expected")
    if daypart.shape[0] != n_fl or daypart.shape[1] < 3:
        raise ValueError(f"fl_daypart: shape ({daypart.shape[0]}, {daypart.shape[1]}) where"
                         f" ({n_fl}, 3) was expected")
    for i in range(n_ads):
        if ad_flight[i] < 0 or ad_flight[i] >= n_fl:
            raise ValueError(f"ad_flight: row {i} names flight {ad_flight[i]} of {n_fl}")
    ads_arr, fl_arr = _aligned(n_ads * sizeof(AdRec)), _aligned(n_fl * sizeof(FlightRec))
    cdef AdRec* ads = <AdRec*>_records(ads_arr, sizeof(AdRec), &n, "ads")
    cdef FlightRec* fls = <FlightRec*>_records(fl_arr, sizeof(FlightRec), &n, "flights")
    for i in range(n_ads):
        ads[i].ad_id = ad_id[i]; ads[i].creative = ad_creative[i]; ads[i].type = ad_type[i]
        ads[i].product = ad_product[i]; ads[i].prior_ctr = prior_ctr[i]
        ads[i].prior_cvr = prior_cvr[i]; ads[i].flight = ad_flight[i]; ads[i].seen = 0
        ads[i].relevancy = ad_relevancy[i]; ads[i].weight = ad_weight[i]
    for i in range(n_fl):
        fls[i].start = start[i]; fls[i].end = end[i]
        fls[i].site_lo = _i32(site[i], "sites"); fls[i].site_hi = _i32(site[i + 1], "sites")
        fls[i].zone_lo = _i32(zone[i], "zones"); fls[i].zone_hi = _i32(zone[i + 1], "zones")
        fls[i].seg_lo = _i32(seg[i], "segments"); fls[i].seg_hi = _i32(seg[i + 1], "segments")
        fls[i].geo_lo = _i32(geo[i], "geo"); fls[i].geo_hi = _i32(geo[i + 1], "geo")
        fls[i].kw_lo = _i32(kw[i], "keywords"); fls[i].kw_hi = _i32(kw[i + 1], "keywords")
        fls[i].expr_lo = _i32(expr[i], "programs"); fls[i].expr_hi = _i32(expr[i + 1], "programs")
        fls[i].fcap_lo = _i32(fcap[i], "caps"); fls[i].fcap_hi = _i32(fcap[i + 1], "caps")
        fls[i].dedupe = dedupe[i]; fls[i].rate = rate[i]; fls[i].price = price[i]
        fls[i].priority = priority[i]
        fls[i].daypart[0] = daypart[i, 0]; fls[i].daypart[1] = daypart[i, 1]
        fls[i].daypart[2] = daypart[i, 2]
    return ads_arr, fl_arr


def partial_records(columns):
    """`records` of the columns given, every other field zero: for kernels' tests and
    benchmarks, which pass only the columns a kernel reads (the server builds every field).
    The ad and flight counts come from `ad_flight` and from `fl_rate` or `fl_price`."""
    n_ads = len(columns["ad_flight"])
    n_fl = len(columns["fl_rate"] if "fl_rate" in columns else columns["fl_price"])
    full = {"fl_daypart": np.zeros((n_fl, 3), dtype=np.uint64)}
    for name, dtype in (("ad_id", np.int64), ("ad_creative", np.int64), ("ad_type", np.int64),
                        ("ad_product", np.int64), ("ad_prior_ctr", np.float64),
                        ("ad_prior_cvr", np.float64), ("ad_relevancy", np.int16),
                        ("ad_weight", np.int32)):
        full[name] = np.zeros(n_ads, dtype=dtype)
    for name, dtype in (("fl_start", np.int64), ("fl_end", np.int64), ("fl_price", np.int64),
                        ("fl_dedupe", np.int8), ("fl_rate", np.int8), ("fl_priority", np.int32)):
        full[name] = np.zeros(n_fl, dtype=dtype)
    for name in ("site", "zone", "seg", "geo", "kw", "expr", "fcap"):
        full[f"fl_{name}_ptr"] = np.zeros(n_fl + 1, dtype=np.int64)
    full.update(columns)
    return records(full)


cdef object _aligned(Py_ssize_t nbytes):
    """A zeroed uint8 array of `nbytes` whose data starts on a 64-byte boundary."""
    raw = np.zeros(nbytes + 64, dtype=np.uint8)
    cdef Py_ssize_t off = (-<Py_ssize_t>cnp.PyArray_DATA(<cnp.ndarray>raw)) & 63
    return raw[off:off + nbytes]
