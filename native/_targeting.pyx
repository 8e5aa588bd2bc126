# The candidate filter: which ads of a placement's posting lists may enter its auction.
#
# One pass over the candidate rows, reading the snapshot's columns (adserver/snapshot/format.py)
# and the request's Query; for each row it checks, in order: duplicate, live pause, flight
# frequency caps, dates, site/zone, forced ids, blocked creative, in-request dedupe, segments and consent, geo,
# daypart, keywords (exact/phrase/broad with negatives), the custom targeting program and,
# last, the pacing throttle (one seeded draw per flight and request).
# The plain-Python twin is adserver/kernels/targeting_ref.py; tests compare them.

import numpy as np
cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

cnp.import_array()

from codes cimport (
    BLOCKED, CUSTOM, DATES, DAYPART, DEDUPED, DUPLICATE, FORCED, FREQUENCY, GEO, KEYWORDS,
    M_BROAD, M_EXACT, M_PHRASE, OP_AND, OP_CONTAINS, OP_EQ_NUM, OP_EQ_STR, OP_EXISTS, OP_GE,
    OP_GT, OP_LE, OP_LT, OP_NOT, OP_OR, PASS, PAUSED, SEGMENTS, SITE_ZONE, THROTTLED,
)


cdef inline double throttle_unit(uint64_t seed, int64_t f) noexcept nogil:
    # twin: adserver/kernels/targeting_ref.throttle_unit (splitmix64, top 53 bits)
    cdef uint64_t z = seed + <uint64_t>(f + 1) * <uint64_t>0x9E3779B97F4A7C15ULL
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    z = z ^ (z >> 31)
    return <double>(z >> 11) * (1.0 / 9007199254740992.0)


from views cimport I64s, U64s, F8s, I8s, _data, _out, _i64, _u64, _f8, _i8
from records cimport AdRec, FlightRec, _records

from adserver._records import records


cdef inline bint has_i64(I64s xs, int64_t x) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(xs.n):
        if xs.p[i] == x:
            return True
    return False


cdef inline bint has_u64(U64s xs, uint64_t x) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(xs.n):
        if xs.p[i] == x:
            return True
    return False


cdef class Targeting:
    """The filter over one snapshot's columns (built once per snapshot load)."""

    cdef const int64_t[:] fl_id
    cdef const int64_t[:] fl_campaign
    cdef const int64_t[:] fl_advertiser
    cdef const int64_t[:] fl_site_val
    cdef const int64_t[:] fl_zone_val
    cdef const uint64_t[:] fl_seg_val
    cdef const uint64_t[:] geo_country
    cdef const uint64_t[:] geo_region
    cdef const uint64_t[:] geo_metro
    cdef const uint64_t[:] geo_city
    cdef const int8_t[:] geo_exclude
    cdef const int64_t[:] kw_tok_ptr
    cdef const uint64_t[:] kw_tok
    cdef const int8_t[:] kw_match
    cdef const int8_t[:] kw_negative
    cdef const int64_t[:] kw_bid
    cdef const int8_t[:] fcap_level
    cdef const int32_t[:] fcap_count
    cdef const int64_t[:] fcap_window
    cdef const int8_t[:] ins_op
    cdef const uint64_t[:] ins_key
    cdef const double[:] ins_num
    cdef const uint64_t[:] ins_str
    cdef const int32_t[:] ins_arg
    cdef list strings
    cdef object ads_arr, fl_arr  # the hot records (native/records.pxd) and their data
    cdef AdRec* ads
    cdef FlightRec* fls
    cdef Py_ssize_t n_ads
    cdef int32_t generation
    cdef int8_t[:] stack

    def __init__(self, columns, list strings):
        """`columns` maps the snapshot's column names to arrays (mmaps are fine)."""
        g = columns.__getitem__
        cdef Py_ssize_t n_fl
        self.ads_arr, self.fl_arr = records(columns)
        self.ads = <AdRec*>_records(self.ads_arr, sizeof(AdRec), &self.n_ads, "ads")
        self.fls = <FlightRec*>_records(self.fl_arr, sizeof(FlightRec), &n_fl, "flights")
        self.fl_id = g("fl_id"); self.fl_campaign = g("fl_campaign")
        self.fl_advertiser = g("fl_advertiser")
        self.fl_site_val = g("fl_site_val")
        self.fl_zone_val = g("fl_zone_val")
        self.fl_seg_val = g("fl_seg_val")
        self.geo_country = g("geo_country")
        self.geo_region = g("geo_region"); self.geo_metro = g("geo_metro")
        self.geo_city = g("geo_city"); self.geo_exclude = g("geo_exclude")
        self.kw_tok_ptr = g("kw_tok_ptr")
        self.kw_tok = g("kw_tok"); self.kw_match = g("kw_match")
        self.kw_negative = g("kw_negative"); self.kw_bid = g("kw_bid")
        self.fcap_level = g("fcap_level")
        self.fcap_count = g("fcap_count"); self.fcap_window = g("fcap_window")
        self.ins_op = g("ins_op")
        self.ins_key = g("ins_key"); self.ins_num = g("ins_num"); self.ins_str = g("ins_str")
        self.ins_arg = g("ins_arg")
        self.strings = strings
        self.generation = 0
        ptr = np.asarray(g("fl_expr_ptr"))
        longest = int(np.max(np.diff(ptr))) if ptr.shape[0] > 1 else 0
        self.stack = np.zeros(max(1, longest), dtype=np.int8)

    @property
    def records(self):
        """(ads, flights): this filter's hot records, which the relevance gate reads too."""
        return self.ads_arr, self.fl_arr

    cdef bint _capped(self, int64_t f, int64_t now, I8s ulevel, I64s uid,
                      F8s uts) noexcept:
        cdef int64_t c, ident, seen
        cdef Py_ssize_t j
        cdef int8_t level
        for c in range(self.fls[f].fcap_lo, self.fls[f].fcap_hi):
            level = self.fcap_level[c]
            ident = self.fl_id[f] if level == 0 else (
                self.fl_campaign[f] if level == 1 else self.fl_advertiser[f])
            seen = 0
            for j in range(ulevel.n):
                if (ulevel.p[j] == level and uid.p[j] == ident
                        and uts.p[j] > <double>(now - self.fcap_window[c])):
                    seen += 1
            if seen >= self.fcap_count[c]:
                return True
        return False

    cdef bint _keyword(self, int64_t k, I64s pptr, U64s ptok) noexcept:
        cdef int64_t t0 = self.kw_tok_ptr[k], t1 = self.kw_tok_ptr[k + 1]
        cdef int64_t n = t1 - t0, p, s, e, start, j
        cdef int8_t m = self.kw_match[k]
        cdef bint ok
        if m == M_BROAD:
            for j in range(t0, t1):
                if not has_u64(ptok, self.kw_tok[j]):
                    return False
            return True
        for p in range(pptr.n - 1):
            s = pptr.p[p]
            e = pptr.p[p + 1]
            if m == M_EXACT and e - s != n:
                continue
            for start in range(s, e - n + 1):
                ok = True
                for j in range(n):
                    if ptok.p[start + j] != self.kw_tok[t0 + j]:
                        ok = False
                        break
                if ok:
                    return True
                if m == M_EXACT:
                    break
        return False

    cdef bint _leaf(self, int64_t i, U64s pkey, F8s pnum, U64s pstr, list praw):
        cdef int8_t op = self.ins_op[i]
        cdef uint64_t key = self.ins_key[i]
        cdef double x = self.ins_num[i]
        cdef Py_ssize_t j
        cdef object raw
        for j in range(pkey.n):
            if pkey.p[j] != key:
                continue
            if op == OP_EXISTS:
                return True
            elif op == OP_EQ_STR:
                if pstr.p[j] == self.ins_str[i]:
                    return True
            elif op == OP_EQ_NUM:
                if pnum.p[j] == x:
                    return True
            elif op == OP_LT:
                if pnum.p[j] < x:
                    return True
            elif op == OP_LE:
                if pnum.p[j] <= x:
                    return True
            elif op == OP_GT:
                if pnum.p[j] > x:
                    return True
            elif op == OP_GE:
                if pnum.p[j] >= x:
                    return True
            elif op == OP_CONTAINS:
                if pstr.p[j] == self.ins_str[i]:
                    return True
                raw = praw[j]
                if raw is not None and <str>self.strings[self.ins_arg[i]] in <str>raw:
                    return True
        return False

    cdef bint _program(self, int64_t f, U64s pkey, F8s pnum, U64s pstr, list praw):
        cdef int64_t i, top = 0, n, j
        cdef int8_t op, acc
        for i in range(self.fls[f].expr_lo, self.fls[f].expr_hi):
            op = self.ins_op[i]
            if op == OP_AND or op == OP_OR:
                n = self.ins_arg[i]
                acc = 1 if op == OP_AND else 0
                for j in range(top - n, top):
                    if op == OP_AND:
                        acc = acc & self.stack[j]
                    else:
                        acc = acc | self.stack[j]
                top -= n
                self.stack[top] = acc
                top += 1
            elif op == OP_NOT:
                self.stack[top - 1] = 1 - self.stack[top - 1]
            else:
                self.stack[top] = 1 if self._leaf(i, pkey, pnum, pstr, praw) else 0
                top += 1
        return top == 0 or self.stack[0] != 0

    def keyword_bids(self, rows_obj, q):
        """Per row (currency units): the highest bid among the flight's positive keywords the
        request matches, a keyword without its own bid bidding the flight's price; -1 when
        no matched keyword has its own bid (the flight's price applies)."""
        cdef Py_ssize_t i, n_rows
        cdef int64_t f, k, best
        cdef bint own
        cdef list keep = []
        cdef const int32_t* rows = <const int32_t*>_data(rows_obj, cnp.NPY_INT32, &n_rows, keep)
        cdef I64s pptr = _i64(q.phrase_ptr, keep)
        cdef U64s ptok = _u64(q.phrase_tok, keep)
        cdef cnp.ndarray out_arr = np.full(n_rows, -1.0)
        cdef double* out = <double*>cnp.PyArray_DATA(out_arr)
        for i in range(n_rows):
            f = self.ads[rows[i]].flight
            best = -1
            own = False
            for k in range(self.fls[f].kw_lo, self.fls[f].kw_hi):
                if self.kw_negative[k] or not self._keyword(k, pptr, ptok):
                    continue
                if self.kw_bid[k] >= 0:
                    own = True
                    if self.kw_bid[k] > best:
                        best = self.kw_bid[k]
                elif self.fls[f].price > best:
                    best = self.fls[f].price
            if own:
                out[i] = best / 1e6
        return out_arr

    def filter(self, rows, q, paused, bint explain=False, Py_ssize_t limit=0):
        """Rows that pass, in input order, and (with explain) a reason code per input row;
        `limit` > 0 stops after that many passing rows (except with explain)."""
        return self.filter_lists([rows], q, paused, explain, limit)

    def filter_lists(self, list lists, q, paused_obj, bint explain=False,
                     Py_ssize_t limit=0, counts_obj=None):
        """The passing rows of a placement's posting lists, list by list in order, taking at
        most `limit` passing rows from each list (0: all; lists are ordered best first), and
        with explain a reason code for every row of every list (then nothing is skipped).
        An ad in several lists passes once. `counts`, when given, gets how many rows passed
        from each list (so a caller knows which list each passing row came from)."""
        cdef Py_ssize_t n = 0, i, out_n = 0, li, taken, n_rows, n_thr, n_counts = 0
        for li in range(len(lists)):
            n += len(lists[li])
        cdef list keep = []  # contiguous copies of strided inputs, alive for the call
        cdef const int32_t* rows
        cdef Py_ssize_t base = 0
        cdef int64_t now = q.now, how = q.hour_of_week, site = q.site_id
        cdef int64_t forced_c = q.forced_campaign, forced_f = q.forced_flight, forced_a = q.forced_ad
        cdef I64s zones = _i64(q.zone_ids, keep)
        cdef I64s blocked = _i64(q.blocked_creatives, keep)
        cdef U64s segs = _u64(q.segments, keep)
        cdef bint personal = q.personalized
        cdef uint64_t g_country = q.geo[0], g_region = q.geo[1], g_metro = q.geo[2], g_city = q.geo[3]
        cdef I64s pptr = _i64(q.phrase_ptr, keep)
        cdef U64s ptok = _u64(q.phrase_tok, keep)
        props = q.props
        cdef U64s pkey = _u64(props.key, keep)
        cdef F8s pnum = _f8(props.num, keep)
        cdef U64s pstr = _u64(props.str, keep)
        cdef list praw = props.raw
        cdef I64s used_f = _i64(q.used_flights, keep)
        cdef I64s used_c = _i64(q.used_campaigns, keep)
        cdef I64s used_a = _i64(q.used_advertisers, keep)
        cdef I64s used_cr = _i64(q.used_creatives, keep)
        cdef I8s ulevel = _i8(q.u_level, keep)
        cdef I64s uid = _i64(q.u_id, keep)
        cdef F8s uts = _f8(q.u_ts, keep)
        cdef I8s paused = _i8(paused_obj, keep)
        cdef const float* thr = <const float*>_data(q.throttle, cnp.NPY_FLOAT32, &n_thr, keep)
        cdef int64_t* counts = NULL
        if counts_obj is not None:  # one entry per list
            counts = <int64_t*>_out(counts_obj, cnp.NPY_INT64, len(lists), "counts")
        cdef uint64_t seed = q.seed
        cdef cnp.ndarray out_arr = np.empty(n, dtype=np.int32)
        cdef int32_t* out = <int32_t*>cnp.PyArray_DATA(out_arr)
        cdef cnp.ndarray reasons_arr = np.zeros(n if explain else 0, dtype=np.int8)
        cdef int8_t* reasons = <int8_t*>cnp.PyArray_DATA(reasons_arr)
        cdef int32_t row
        cdef AdRec* a
        cdef const FlightRec* fl
        cdef int64_t f, k, j, lo, hi
        cdef int8_t reason, d
        cdef bint ok, has_pos, any_pos, incl, incl_ok, excl, m
        self.generation += 1
        if self.generation == 2147483647:
            for i in range(self.n_ads):
                self.ads[i].seen = 0
            self.generation = 1
        if explain:
            limit = 0
        for li in range(len(lists)):
            rows = <const int32_t*>_data(lists[li], cnp.NPY_INT32, &n_rows, keep)
            taken = 0
            for i in range(n_rows):
                row = rows[i]
                a = &self.ads[row]
                f = a.flight
                fl = &self.fls[f]
                reason = PASS
                if a.seen == self.generation:
                    reason = DUPLICATE
                elif paused.n > 0 and paused.p[f] != 0:
                    reason = PAUSED
                elif ulevel.n > 0 and self._capped(f, now, ulevel, uid, uts):
                    reason = FREQUENCY
                elif now < fl.start or now >= fl.end:
                    reason = DATES
                else:
                    lo = fl.site_lo; hi = fl.site_hi
                    ok = lo == hi
                    for j in range(lo, hi):
                        if self.fl_site_val[j] == site:
                            ok = True
                            break
                    if ok:
                        lo = fl.zone_lo; hi = fl.zone_hi
                        ok = lo == hi
                        for j in range(lo, hi):
                            if has_i64(zones, self.fl_zone_val[j]):
                                ok = True
                                break
                    if not ok:
                        reason = SITE_ZONE
                    elif ((forced_c != 0 and self.fl_campaign[f] != forced_c)
                          or (forced_f != 0 and self.fl_id[f] != forced_f)
                          or (forced_a != 0 and a.ad_id != forced_a)):
                        reason = FORCED
                    elif blocked.n > 0 and has_i64(blocked, a.creative):
                        reason = BLOCKED
                if reason == PASS:
                    d = fl.dedupe
                    if ((d == 1 and has_i64(used_f, self.fl_id[f]))
                            or (d == 2 and has_i64(used_c, self.fl_campaign[f]))
                            or (d == 3 and has_i64(used_a, self.fl_advertiser[f]))
                            or (d == 4 and has_i64(used_cr, a.creative))):
                        reason = DEDUPED
                if reason == PASS:
                    lo = fl.seg_lo; hi = fl.seg_hi
                    if lo != hi:
                        ok = False
                        if personal:
                            for j in range(lo, hi):
                                if has_u64(segs, self.fl_seg_val[j]):
                                    ok = True
                                    break
                        if not ok:
                            reason = SEGMENTS
                if reason == PASS:
                    incl = False; incl_ok = False; excl = False
                    for j in range(fl.geo_lo, fl.geo_hi):
                        m = (g_country != 0 and self.geo_country[j] == g_country
                             and (self.geo_region[j] == 0 or self.geo_region[j] == g_region)
                             and (self.geo_metro[j] == 0 or self.geo_metro[j] == g_metro)
                             and (self.geo_city[j] == 0 or self.geo_city[j] == g_city))
                        if self.geo_exclude[j]:
                            excl = excl or m
                        else:
                            incl = True
                            incl_ok = incl_ok or m
                    if excl or (incl and not incl_ok):
                        reason = GEO
                if reason == PASS:
                    if not (fl.daypart[how >> 6] >> (how & 63)) & 1:
                        reason = DAYPART
                if reason == PASS:
                    has_pos = False; any_pos = False
                    for k in range(fl.kw_lo, fl.kw_hi):
                        if self.kw_negative[k]:
                            if self._keyword(k, pptr, ptok):
                                reason = KEYWORDS
                                break
                        else:
                            has_pos = True
                            if not any_pos and self._keyword(k, pptr, ptok):
                                any_pos = True
                    if reason == PASS and has_pos and not any_pos:
                        reason = KEYWORDS
                if reason == PASS and fl.expr_lo != fl.expr_hi:
                    if not self._program(f, pkey, pnum, pstr, praw):
                        reason = CUSTOM
                if reason == PASS and n_thr > 0 and thr[f] < 1.0:
                    if throttle_unit(seed, f) >= thr[f]:
                        reason = THROTTLED
                if reason != DUPLICATE:
                    a.seen = self.generation
                if explain:
                    reasons[base + i] = reason
                if reason == PASS:
                    out[out_n] = row
                    out_n += 1
                    taken += 1
                    if taken == limit:
                        break
            if counts != NULL:
                counts[li] = taken
            base += n_rows
        return out_arr[:out_n], (reasons_arr if explain else None)
