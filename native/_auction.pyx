# The priority waterfall: a placement's slots filled priority by priority (tier, then id),
# each by weighted lottery or by auction (eCPM ranking, generalized second price, floors).
# The rules: adserver/kernels/auction.py; the plain-Python twin that tests compare this
# with: adserver/kernels/auction_ref.py.
#
# A `Waterfall` binds the snapshot's hot ad and flight records (native/records.pxd: the
# filter has just read the same ones) and its priority table once per snapshot; a call
# passes only the request's arrays (by pointer, native/views.pxd) and works in one scratch
# block. (It replaced a Numba kernel taking 22 arrays and scalars per call, which allocated
# a dozen small arrays on each.)

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.stdlib cimport malloc, free

from records cimport AdRec, FlightRec, _records
from views cimport _data, _out

cnp.import_array()

from codes cimport FLOOR, LOST_LOTTERY, OUTBID, PASS, RATE_CPA, RATE_CPC, RATE_CPM

cdef enum:
    N_COLS = 7  # W_ROW, W_POS, W_PRIO, W_ECPM, W_CLEAR, W_BID, W_RATE
cdef double CENT = 0.01


cdef inline double _quality(int8_t rate, double ctr, double cvr) noexcept nogil:
    if rate == RATE_CPM:
        return 1.0
    if rate == RATE_CPC:
        return ctr * 1000.0
    if rate == RATE_CPA:
        return cvr * 1000.0
    return 0.0


ctypedef struct Request:  # one call's inputs and scratch
    const int32_t* rows
    Py_ssize_t n
    const double* tiebreak  # n values
    const double* draws  # k values, one per lottery draw
    const double* bids  # n values or NULL
    const double* boost
    const double* ctr
    const double* cvr
    double* detail  # 3 x n (explain) or NULL
    # scratch, n each: priority, bid, quality, eCPM, floor bid, reason, eligible or taken
    int32_t* prio
    double* bid
    double* q
    double* ecpm
    double* fbid
    int8_t* reason
    int8_t* flag
    Py_ssize_t* idx  # the current priority's candidates (positions in rows)
    Py_ssize_t* order  # their ranking


cdef class Waterfall:
    """The waterfall over one snapshot's records and priorities."""
    cdef object keep  # the arrays the pointers below read
    cdef const AdRec* ads
    cdef const FlightRec* fls
    cdef const int32_t* prio_order
    cdef const int8_t* prio_selection
    cdef const int8_t* prio_second
    cdef const double* prio_floor_cpm
    cdef const double* prio_floor_cpc
    cdef Py_ssize_t n_prio

    def __init__(self, records, prio_order, prio_selection, prio_second, prio_floor_cpm,
                 prio_floor_cpc):
        """`records`: the snapshot's (ads, flights) hot records (`Targeting.records`);
        priorities: their order (int32 rows, tier then id), selection (int8: 0 lottery, 1
        auction), second pricing (int8) and floors (float64, currency units)."""
        cdef Py_ssize_t n, n_sel, n_sec, n_cpm, n_cpc, j
        cdef list keep = [tuple(records)]
        self.ads = <const AdRec*>_records(keep[0][0], sizeof(AdRec), &n, "ads")
        self.fls = <const FlightRec*>_records(keep[0][1], sizeof(FlightRec), &n, "flights")
        self.prio_order = <const int32_t*>_data(prio_order, cnp.NPY_INT32, &self.n_prio, keep)
        self.prio_selection = <const int8_t*>_data(prio_selection, cnp.NPY_INT8, &n_sel, keep)
        self.prio_second = <const int8_t*>_data(prio_second, cnp.NPY_INT8, &n_sec, keep)
        self.prio_floor_cpm = <const double*>_data(prio_floor_cpm, cnp.NPY_FLOAT64, &n_cpm, keep)
        self.prio_floor_cpc = <const double*>_data(prio_floor_cpc, cnp.NPY_FLOAT64, &n_cpc, keep)
        if not self.n_prio == n_sel == n_sec == n_cpm == n_cpc:
            raise ValueError("priorities: every array needs one entry per priority")
        for j in range(self.n_prio):
            if self.prio_order[j] < 0 or self.prio_order[j] >= self.n_prio:
                raise ValueError(f"prio_order: {self.prio_order[j]} is not a priority row")
        for j in range(len(keep[0][1]) // sizeof(FlightRec)):
            if self.fls[j].priority < 0 or self.fls[j].priority >= self.n_prio:
                raise ValueError(f"fl_priority: flight row {j} names priority"
                                 f" {self.fls[j].priority} of {self.n_prio}")
        keep += [prio_order, prio_selection, prio_second, prio_floor_cpm, prio_floor_cpc]
        self.keep = keep

    def run(self, rows_obj, double floor_cpm, double floor_cpc, uniforms_obj, Py_ssize_t k,
            detail_obj, bids_obj, boost_obj, ctr_obj, cvr_obj):
        """(winners, min eCPM to win the last auction run): winners is a float64 (slots
        filled, 7) array in slot order with the columns W_* of adserver/kernels/auction.py.
        `rows`: int32 candidate ad rows; `uniforms`: n + k values in [0, 1) (the first n
        break eCPM ties, the last k drive lottery draws); the placement's floors in currency
        units; `detail`: shape (3, n) (explain: reason, eCPM, priority reached per candidate)
        or (3, 0); `bids`, `boost`, `ctr`, `cvr`: float64 aligned with rows, or shape (0,)
        for none."""
        cdef list keep = []
        cdef Request r
        cdef Py_ssize_t n_u, n_b, n_bo, n_c, n_v, i, j, m = 0, drawn = 0, n_idx, need, got
        cdef int32_t pr
        r.rows = <const int32_t*>_data(rows_obj, cnp.NPY_INT32, &r.n, keep)
        cdef Py_ssize_t n = r.n
        cdef const double* uniforms = <const double*>_data(uniforms_obj, cnp.NPY_FLOAT64, &n_u,
                                                           keep)
        if k < 0 or n_u < n + k:
            raise ValueError(f"uniforms: {n} + {k} values needed, got {n_u}")
        r.tiebreak = uniforms
        r.draws = uniforms + n
        r.bids = <const double*>_data(bids_obj, cnp.NPY_FLOAT64, &n_b, keep)
        r.boost = <const double*>_data(boost_obj, cnp.NPY_FLOAT64, &n_bo, keep)
        r.ctr = <const double*>_data(ctr_obj, cnp.NPY_FLOAT64, &n_c, keep)
        r.cvr = <const double*>_data(cvr_obj, cnp.NPY_FLOAT64, &n_v, keep)
        if n_b != n: r.bids = NULL
        if n_bo != n: r.boost = NULL
        if n_c != n: r.ctr = NULL
        if n_v != n: r.cvr = NULL
        r.detail = NULL
        if not isinstance(detail_obj, cnp.ndarray) or (<cnp.ndarray>detail_obj).ndim != 2 \
                or (<cnp.ndarray>detail_obj).shape[0] != 3 \
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>detail_obj):
            raise ValueError("detail: a C-contiguous float64 array of shape (3, n) or (3, 0)")
        if (<cnp.ndarray>detail_obj).shape[1] == n and n > 0:
            r.detail = <double*>_out(detail_obj.reshape(-1), cnp.NPY_FLOAT64, 3 * n, "detail")
        cdef cnp.npy_intp dims[2]
        dims[0] = k
        dims[1] = N_COLS
        cdef cnp.ndarray wins_arr = cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT64, 0)
        cdef double* wins = <double*>cnp.PyArray_DATA(wins_arr)
        cdef double min_ecpm = 0.0
        if n == 0 or k == 0:
            return wins_arr[:0], min_ecpm
        cdef char* block = <char*>malloc(n * (4 * sizeof(double) + sizeof(int32_t) + 2
                                              + 2 * sizeof(Py_ssize_t)))
        if block == NULL:
            raise MemoryError()
        r.bid = <double*>block
        r.q = r.bid + n
        r.ecpm = r.q + n
        r.fbid = r.ecpm + n
        r.idx = <Py_ssize_t*>(r.fbid + n)
        r.order = r.idx + n
        r.prio = <int32_t*>(r.order + n)
        r.reason = <int8_t*>(r.prio + n)
        r.flag = r.reason + n
        try:
            for i in range(n):
                r.prio[i] = self.fls[self.ads[r.rows[i]].flight].priority
                r.reason[i] = OUTBID
                r.ecpm[i] = 0.0
            for j in range(self.n_prio):
                pr = self.prio_order[j]
                need = k - m
                if need <= 0:
                    break
                n_idx = 0
                for i in range(n):
                    if r.prio[i] == pr:
                        r.idx[n_idx] = i
                        n_idx += 1
                if n_idx == 0:
                    continue
                if r.detail != NULL:
                    for i in range(n_idx):
                        r.detail[2 * n + r.idx[i]] = 1.0
                if self.prio_selection[pr] == 0:
                    got = self._lottery(&r, n_idx, r.draws + drawn, need)
                    drawn += got  # k draws in all: one per slot filled
                    for i in range(got):
                        self._win(&r, wins, m, r.order[i], pr, 0.0, self._bid(&r, r.order[i]))
                        m += 1
                else:
                    got = self._auction(&r, n_idx, need,
                                        max(floor_cpm, self.prio_floor_cpm[pr]),
                                        max(floor_cpc, self.prio_floor_cpc[pr]),
                                        self.prio_second[pr] != 0, &min_ecpm, wins, m, pr)
                    m += got
            if r.detail != NULL:
                for i in range(n):
                    r.detail[i] = r.reason[i]
                    r.detail[n + i] = r.ecpm[i]
        finally:
            free(block)
        return (wins_arr if m == k else wins_arr[:m]), min_ecpm

    cdef inline double _bid(self, Request* r, Py_ssize_t i) noexcept:
        """Candidate i's bid in currency units: its keyword bid, else its flight's price."""
        if r.bids != NULL and r.bids[i] >= 0.0:
            return r.bids[i]
        return self.fls[self.ads[r.rows[i]].flight].price / 1e6

    cdef inline void _win(self, Request* r, double* wins, Py_ssize_t m, Py_ssize_t i,
                          int32_t pr, double ecpm, double clear) noexcept:
        cdef double* w = wins + m * N_COLS
        w[0] = r.rows[i]
        w[1] = i
        w[2] = pr
        w[3] = ecpm
        w[4] = clear
        w[5] = self._bid(r, i)
        w[6] = self.fls[self.ads[r.rows[i]].flight].rate

    cdef Py_ssize_t _lottery(self, Request* r, Py_ssize_t n_idx, const double* draws,
                             Py_ssize_t k) noexcept:
        """Draw up to k distinct candidates of r.idx with probability proportional to
        weight (draws[s] drives draw s); winners to r.order, reasons set. Returns how many."""
        cdef Py_ssize_t s, t, pick, m = 0
        cdef double total, target, acc
        for t in range(n_idx):
            r.flag[t] = 0  # taken
            r.reason[r.idx[t]] = LOST_LOTTERY
        for s in range(min(k, n_idx)):
            total = 0.0
            for t in range(n_idx):
                if not r.flag[t]:
                    total += self.ads[r.rows[r.idx[t]]].weight
            if total <= 0.0:
                break
            target = draws[s] * total
            acc = 0.0
            pick = -1
            for t in range(n_idx):
                if r.flag[t]:
                    continue
                acc += self.ads[r.rows[r.idx[t]]].weight
                pick = t
                if target < acc:
                    break
            r.flag[pick] = 1
            r.reason[r.idx[pick]] = PASS
            r.order[m] = r.idx[pick]
            m += 1
        return m

    cdef Py_ssize_t _auction(self, Request* r, Py_ssize_t n_idx, Py_ssize_t k,
                             double floor_cpm, double floor_cpc, bint second_price,
                             double* min_ecpm, double* wins, Py_ssize_t m0,
                             int32_t pr) noexcept:
        """Rank the candidates of r.idx by eCPM, take the top k (ties: the higher tiebreak,
        then the earlier candidate), price each at the least bid that keeps its rank; the
        winners go to `wins` from slot m0. Returns how many."""
        cdef Py_ssize_t t, i, best, m = 0, nwin, rank, limit
        cdef const AdRec* a
        cdef const FlightRec* fl
        cdef double price, floor_own
        for t in range(n_idx):
            i = r.idx[t]
            a = &self.ads[r.rows[i]]
            fl = &self.fls[a.flight]
            r.bid[i] = self._bid(r, i)
            r.q[i] = _quality(fl.rate, r.ctr[i] if r.ctr != NULL else a.prior_ctr,
                              r.cvr[i] if r.cvr != NULL else a.prior_cvr)
            if r.boost != NULL:
                r.q[i] *= r.boost[i]
            r.ecpm[i] = r.bid[i] * r.q[i]
            r.fbid[i] = floor_cpc if fl.rate == RATE_CPC else 0.0
            if r.ecpm[i] < floor_cpm or r.bid[i] < r.fbid[i]:
                r.reason[i] = FLOOR
                r.flag[i] = 0
            else:
                r.reason[i] = OUTBID
                r.flag[i] = 1  # eligible, not yet taken
        limit = min(k + 1, n_idx)  # the top k + 1: the one after the last winner prices it
        while m < limit:
            best = -1
            for t in range(n_idx):
                i = r.idx[t]
                if not r.flag[i]:
                    continue
                if best < 0 or r.ecpm[i] > r.ecpm[best] or (
                        r.ecpm[i] == r.ecpm[best] and r.tiebreak[i] > r.tiebreak[best]):
                    best = i
            if best < 0:
                break
            r.flag[best] = 0
            r.order[m] = best
            m += 1
        nwin = min(k, m)
        for rank in range(nwin):
            i = r.order[rank]
            r.reason[i] = PASS
            if not second_price or r.q[i] == 0.0:
                price = r.bid[i]
            else:
                floor_own = floor_cpm / r.q[i]
                if r.fbid[i] > floor_own:
                    floor_own = r.fbid[i]
                price = r.ecpm[r.order[rank + 1]] / r.q[i] + CENT if rank + 1 < m \
                    else floor_own
                if price < floor_own:
                    price = floor_own
                if price > r.bid[i]:
                    price = r.bid[i]
            self._win(r, wins, m0 + rank, i, pr, r.ecpm[i], price)
        min_ecpm[0] = r.ecpm[r.order[nwin - 1]] + CENT if nwin == k and nwin > 0 \
            else floor_cpm
        return nwin


def from_columns(columns, prio_order, prio_selection, prio_second, prio_floor_cpm,
                 prio_floor_cpc):
    """A Waterfall over the given columns alone (the records' other fields zero): for tests
    and benchmarks, where the server binds the filter's records."""
    from adserver._records import partial_records
    return Waterfall(partial_records(columns), prio_order, prio_selection, prio_second,
                     prio_floor_cpm, prio_floor_cpc)
