# The sponsored-product relevance gate: which of a placement's passing rows may enter its
# auction, and the factor their quality gets (the rules: adserver/kernels/sponsored_ref.py,
# the plain-Python twin that tests compare this with, and adserver/serving/stages/sponsored).
#
# A `Gate` binds the snapshot's hot ad and flight records (native/records.pxd: the filter
# has just read the same ones) and its product index's vectors and availability once per
# snapshot; a call passes only the request's arrays (by pointer, native/views.pxd). With cold caches, the call's fixed cost is what a decision pays for it:
# a Numba function taking the 26 arrays and scalars paid ~20 us to dispatch and ~40 more to
# allocate and sort before reading a row.

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.stdlib cimport qsort, malloc, free

from records cimport AdRec, FlightRec, _records
from views cimport _data, _out

cnp.import_array()

from codes cimport DEDUPED as R_DEDUPED
from codes cimport NOT_RELEVANT as R_NOT_RELEVANT
from codes cimport PASS as R_KEPT
from codes cimport RATE_CPA, RATE_CPC, RATE_CPM
from codes cimport UNAVAILABLE as R_UNAVAILABLE

# the codes as Python sees them (adserver/kernels/codes.py)
KEPT, DEDUPED, NOT_RELEVANT, UNAVAILABLE = R_KEPT, R_DEDUPED, R_NOT_RELEVANT, R_UNAVAILABLE

ctypedef struct Entry:  # a kept row in the one-ad-per-product contest
    int64_t product
    Py_ssize_t i
    double score


cdef int _by_product(const void* a, const void* b) noexcept nogil:
    """Order entries by product, then by their place in the candidates (a stable order)."""
    cdef const Entry* x = <const Entry*>a
    cdef const Entry* y = <const Entry*>b
    if x.product != y.product:
        return -1 if x.product < y.product else 1
    return -1 if x.i < y.i else (1 if x.i > y.i else 0)


cdef inline bint _has(const int64_t* xs, Py_ssize_t n, int64_t x) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        if xs[j] == x:
            return True
    return False


cdef class Gate:
    """The relevance gate over one snapshot's records and one product index."""
    cdef object records  # (ads, flights) arrays, kept alive
    cdef const AdRec* ads
    cdef const FlightRec* fls
    cdef const float[:, ::1] vectors
    cdef const int8_t[:] available
    cdef Entry* entries  # scratch for the contest, grown as needed (one caller at a time)
    cdef Py_ssize_t capacity
    cdef object sp  # the sponsored products' ads: (sp_prow, sp_ptr, sp_rows), kept alive
    cdef const int64_t* sp_prow
    cdef const int64_t* sp_ptr
    cdef const int32_t* sp_rows
    cdef Py_ssize_t n_sp

    def __init__(self, records, vectors, available, sp=None):
        """`records`: the snapshot's (ads, flights) hot records (`Targeting.records`);
        `vectors` (float32, one row per product, unit length; zero rows: no embedding) and
        `available` (int8) are the product index's; `sp`: the snapshot's (sp_prow, sp_ptr,
        sp_rows) columns (the product rows that have sponsored ads, sorted, and each one's
        ad rows, best first; None: none)."""
        cdef Py_ssize_t n, n_ptr, n_rows
        cdef list keep = []
        if sp is None:
            sp = (np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                  np.zeros(0, dtype=np.int32))
        self.sp_prow = <const int64_t*>_data(sp[0], cnp.NPY_INT64, &self.n_sp, keep)
        self.sp_ptr = <const int64_t*>_data(sp[1], cnp.NPY_INT64, &n_ptr, keep)
        self.sp_rows = <const int32_t*>_data(sp[2], cnp.NPY_INT32, &n_rows, keep)
        if n_ptr != self.n_sp + 1 or (n_ptr and self.sp_ptr[self.n_sp] != n_rows):
            raise ValueError("sp: sp_ptr needs one entry per product and one more, the last"
                             " the length of sp_rows")
        self.sp = (tuple(sp), keep)
        self.records = tuple(records)
        self.ads = <const AdRec*>_records(self.records[0], sizeof(AdRec), &n, "ads")
        self.fls = <const FlightRec*>_records(self.records[1], sizeof(FlightRec), &n, "flights")
        v = np.ascontiguousarray(vectors, dtype=np.float32)  # (a memory map stays one)
        self.vectors = v if v.ndim == 2 else v.reshape(v.shape[0], 0)
        self.available = available
        # rows are read without bounds checks: refuse data that points nowhere, here
        cdef Py_ssize_t n_prod = self.vectors.shape[0], i
        cdef Py_ssize_t n_ads = len(self.records[0]) // sizeof(AdRec)
        if self.available.shape[0] != n_prod:
            raise ValueError(f"available: {self.available.shape[0]} entries for {n_prod}"
                             " product vectors")
        for i in range(n_ads):
            if self.ads[i].product >= n_prod:
                raise ValueError(f"ad_product: ad row {i} names product row"
                                 f" {self.ads[i].product} of {n_prod}")
        for i in range(self.n_sp):
            if self.sp_prow[i] < 0 or self.sp_prow[i] >= n_prod:
                raise ValueError(f"sp_prow: {self.sp_prow[i]} is not a product row")
        for i in range(n_rows):
            if self.sp_rows[i] < 0 or self.sp_rows[i] >= n_ads:
                raise ValueError(f"sp_rows: {self.sp_rows[i]} is not an ad row")

    def __dealloc__(self):
        free(self.entries)

    cdef Entry* _scratch(self, Py_ssize_t n) except NULL:
        if n > self.capacity or self.entries == NULL:
            free(self.entries)
            self.capacity = 0
            self.entries = <Entry*>malloc(max(n, 64) * sizeof(Entry))
            if self.entries == NULL:
                raise MemoryError()
            self.capacity = max(n, 64)
        return self.entries

    def run(self, rows_obj, Py_ssize_t n_given, Py_ssize_t n_matched, types_obj, query_obj,
            double confidence, bint active, qrows_obj, qscores_obj, bint use_quality,
            int64_t exclude, double threshold, double floor, double alpha, out_rows_obj,
            out_boost_obj, reasons_obj, rel_obj):
        """For each of `rows` (int32 ad rows), its relevance in `rel` and in `reasons` 0
        (kept) or why it is dropped; the kept rows in order to `out_rows`, the factor their
        auction quality gets to `out_boost` (outputs: writable arrays as long as `rows`).
        `types`: the placement's sponsored ad types (int64; rows of others pass with boost
        1); `query`: the context's float32 vector, shape (0,) for none; the first
        `n_given` rows came from category lists or were given (relevance 1), the rows after
        them up to `n_matched` from keyword lists (relevance 1 when the measured relevance
        is at least `floor`: the product itself must still match); with
        `use_quality`, the retailer's score per product row (sorted int64 `qrows`, float64
        `qscores`; 1 when absent) is the relevance and no threshold applies. Returns how
        many rows are kept."""
        cdef list keep = []
        cdef Py_ssize_t n, n_types, d, n_q, n_qs, i, k, lo, hi, mid, m, best
        cdef const int32_t* rows = <const int32_t*>_data(rows_obj, cnp.NPY_INT32, &n, keep)
        cdef const int64_t* types = <const int64_t*>_data(types_obj, cnp.NPY_INT64, &n_types,
                                                          keep)
        cdef const float* query = <const float*>_data(query_obj, cnp.NPY_FLOAT32, &d, keep)
        cdef const int64_t* qrows = <const int64_t*>_data(qrows_obj, cnp.NPY_INT64, &n_q, keep)
        cdef const double* qscores = <const double*>_data(qscores_obj, cnp.NPY_FLOAT64, &n_qs,
                                                          keep)
        cdef int32_t* out_rows = <int32_t*>_out(out_rows_obj, cnp.NPY_INT32, n, "out_rows")
        cdef double* out_boost = <double*>_out(out_boost_obj, cnp.NPY_FLOAT64, n, "out_boost")
        cdef int8_t* reasons = <int8_t*>_out(reasons_obj, cnp.NPY_INT8, n, "reasons")
        cdef double* rel = <double*>_out(rel_obj, cnp.NPY_FLOAT64, n, "rel")
        if use_quality and n_qs < n_q:
            raise ValueError("qscores: one score per entry of qrows")
        if d > 0 and d != self.vectors.shape[1]:
            raise ValueError(f"query: {d} dimensions, the product vectors have "
                             f"{self.vectors.shape[1]}")
        cdef Entry* entries = self._scratch(n)
        cdef Py_ssize_t n_entries = 0, kept = 0
        cdef const AdRec* a
        cdef const FlightRec* fl
        cdef int64_t p
        cdef double r, s0, s1, s2, s3, rank, boost, quality
        cdef bint avail, relevant
        cdef const float* v
        for i in range(n):
            a = &self.ads[rows[i]]
            p = a.product
            r = 0.0 if active else 1.0
            if i < n_given:
                r = 1.0
            elif d > 0 and p >= 0:  # (a given row's vector is never read: random pages)
                v = &self.vectors[p, 0]
                s0 = s1 = s2 = s3 = 0.0
                k = 0
                while k + 4 <= d:
                    s0 += <double>query[k] * <double>v[k]
                    s1 += <double>query[k + 1] * <double>v[k + 1]
                    s2 += <double>query[k + 2] * <double>v[k + 2]
                    s3 += <double>query[k + 3] * <double>v[k + 3]
                    k += 4
                while k < d:
                    s0 += <double>query[k] * <double>v[k]
                    k += 1
                r = (s0 + s1 + s2 + s3) * confidence
            if i >= n_given and i < n_matched and r >= floor:
                r = 1.0  # a keyword match of a product that plausibly matches the query
            r = min(max(r, 0.0), 1.0)
            avail = p < 0 or self.available[p] != 0
            relevant = r >= threshold and p != exclude
            if use_quality:
                r = 1.0
                lo = 0
                hi = n_q
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if qrows[mid] < p:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < n_q and qrows[lo] == p:
                    r = qscores[lo]
                relevant = p != exclude
            rel[i] = r
            if not _has(types, n_types, a.type):  # another format: passes
                out_boost[i] = 1.0
                reasons[i] = R_KEPT
                continue
            rank = a.relevancy / 1000.0 if a.relevancy > 0 else r
            boost = rank ** alpha if alpha != 1.0 else rank
            out_boost[i] = boost  # (compacted below)
            if relevant and avail:
                reasons[i] = R_KEPT
                if p >= 0:
                    fl = &self.fls[a.flight]
                    quality = 1.0 if fl.rate == RATE_CPM else (
                        a.prior_ctr * 1000.0 if fl.rate == RATE_CPC else (
                            a.prior_cvr * 1000.0 if fl.rate == RATE_CPA else 0.0))
                    entries[n_entries].product = p
                    entries[n_entries].i = i
                    entries[n_entries].score = fl.price * quality * boost
                    n_entries += 1
            else:
                reasons[i] = R_UNAVAILABLE if not avail else R_NOT_RELEVANT
        # one ad per product: the highest static eCPM stays (ties: the earlier row)
        if n_entries > 1:
            qsort(entries, n_entries, sizeof(Entry), _by_product)
        i = 0
        while i < n_entries:
            k = i
            best = i
            while k < n_entries and entries[k].product == entries[i].product:
                if entries[k].score > entries[best].score:
                    best = k
                k += 1
            for m in range(i, k):
                if m != best:
                    reasons[entries[m].i] = R_DEDUPED
            i = k
        for i in range(n):  # compact in place: slot `kept` <= i was read before
            if reasons[i] == R_KEPT:
                out_rows[kept] = rows[i]
                out_boost[kept] = out_boost[i]
                kept += 1
        return kept


    def product_ads(self, prows_obj, types_obj):
        """The ad rows (int32) of the given product rows (int64) whose type is in `types`
        (int64), in the order of `prows`, each product's ads best first; products without
        sponsored ads give none."""
        cdef list keep = []
        cdef Py_ssize_t n, n_types, i, lo, hi, mid, j, total = 0, m = 0
        cdef const int64_t* prows = <const int64_t*>_data(prows_obj, cnp.NPY_INT64, &n, keep)
        cdef const int64_t* types = <const int64_t*>_data(types_obj, cnp.NPY_INT64, &n_types,
                                                          keep)
        cdef Py_ssize_t* found = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
        if found == NULL:
            raise MemoryError()
        cdef cnp.npy_intp size
        cdef cnp.ndarray out_arr
        cdef int32_t* out
        try:
            for i in range(n):  # each product's place among those with sponsored ads
                lo = 0
                hi = self.n_sp
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if self.sp_prow[mid] < prows[i]:
                        lo = mid + 1
                    else:
                        hi = mid
                found[i] = lo if lo < self.n_sp and self.sp_prow[lo] == prows[i] else -1
                if found[i] >= 0:
                    total += self.sp_ptr[lo + 1] - self.sp_ptr[lo]
            size = total
            out_arr = cnp.PyArray_EMPTY(1, &size, cnp.NPY_INT32, 0)
            out = <int32_t*>cnp.PyArray_DATA(out_arr)
            for i in range(n):
                if found[i] < 0:
                    continue
                for j in range(self.sp_ptr[found[i]], self.sp_ptr[found[i] + 1]):
                    if _has(types, n_types, self.ads[self.sp_rows[j]].type):
                        out[m] = self.sp_rows[j]
                        m += 1
        finally:
            free(found)
        return out_arr if m == total else out_arr[:m]


def from_columns(columns, vectors, available):
    """A Gate over the given columns alone (the records' other fields zero): for tests and
    benchmarks, where the server binds the filter's records."""
    from adserver._records import partial_records
    sp = tuple(columns[k] for k in ("sp_prow", "sp_ptr", "sp_rows")) \
        if "sp_prow" in columns else None
    return Gate(partial_records(columns), vectors, available, sp)
