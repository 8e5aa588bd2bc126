# Hot records: what the candidate filter, the relevance gate and the auction read of an ad
# row and of a flight, side by side in one 64-byte record per ad and a 128-byte one per flight (built
# from the snapshot's columns when it loads: adserver._records.records).
#
# The snapshot stores a column per field (adserver/snapshot/format.py). A row walked with
# cold caches then costs a cache miss per column read: ~20 for an ad row through the filter,
# the gate and the auction. From the records it costs ~3: the ad's line, its flight's first line (every
# check the filter makes of most rows) and, for the rows that get that far, the flight's
# second. Rarely read fields (forced ids, dedupe and frequency-cap identities, the lists the
# ranges point into) stay columns.

cimport numpy as cnp
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint64_t

ctypedef struct AdRec:  # 64 bytes
    int64_t ad_id
    int64_t creative
    int64_t type
    int64_t product  # row in the product index, -1: none
    double prior_ctr
    double prior_cvr
    int32_t flight
    int32_t seen  # the filter's scratch: the call that last saw this row
    int16_t relevancy
    char _pad[2]
    int32_t weight  # lottery weight

ctypedef struct FlightRec:  # 128 bytes; [lo, hi) ranges into the snapshot's value columns
    # first line: what the filter checks of every row
    int64_t start
    int64_t end
    int32_t site_lo, site_hi, zone_lo, zone_hi, seg_lo, seg_hi, geo_lo, geo_hi
    int32_t kw_lo, kw_hi
    int8_t dedupe
    int8_t rate
    char _pad1[2]
    int32_t priority  # row in the snapshot's priorities
    # second line
    int32_t expr_lo, expr_hi, fcap_lo, fcap_hi
    int64_t price
    uint64_t daypart[3]
    char _pad2[16]


cdef inline void* _records(object o, size_t size, Py_ssize_t* n, str name) except NULL:
    """The records in `o` (a uint8 array from adserver._records.records, 64-byte aligned,
    whole records of `size` bytes), their count in `n`; ValueError naming it otherwise."""
    if not isinstance(o, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>o) != cnp.NPY_UINT8 \
            or cnp.PyArray_NDIM(<cnp.ndarray>o) != 1 \
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>o) \
            or cnp.PyArray_DIM(<cnp.ndarray>o, 0) % size != 0 \
            or (cnp.PyArray_DIM(<cnp.ndarray>o, 0) > 0
                and <size_t>cnp.PyArray_DATA(<cnp.ndarray>o) % 64 != 0):
        raise ValueError(f"{name}: records as adserver._records.records builds them")
    n[0] = cnp.PyArray_DIM(<cnp.ndarray>o, 0) // size
    return cnp.PyArray_DATA(<cnp.ndarray>o)
