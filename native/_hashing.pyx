# Stable 64-bit hashes of string ids and feature crosses.
#
# Python's hash() is salted per process, so it cannot name a feature across the control
# process and the workers. hashlib would do, but costs a digest object and a bytes->int
# conversion per call (~0.5 us); this is one pass over the UTF-8 bytes (~40 ns for a short id).
#
# hash = fmix64(FNV-1a-64(utf8(s)) seeded), fmix64 being MurmurHash3's 64-bit finalizer,
# which gives FNV's weak high bits full avalanche. The plain-Python twin is
# adserver/kernels/hashing_ref.py; tests/test_hashing.py compares the two.

import numpy as np
cimport numpy as cnp
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t, uint8_t

cnp.import_array()

cdef uint64_t FNV_OFFSET = 0xcbf29ce484222325ULL
cdef uint64_t FNV_PRIME = 0x100000001b3ULL
cdef uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL


cdef inline uint64_t fmix64(uint64_t k) noexcept nogil:
    k ^= k >> 33
    k *= 0xff51afd7ed558ccdULL
    k ^= k >> 33
    k *= 0xc4ceb9fe1a85ec53ULL
    k ^= k >> 33
    return k


cdef inline uint64_t _hash_bytes(const uint8_t* data, Py_ssize_t n, uint64_t seed) noexcept nogil:
    cdef uint64_t h = FNV_OFFSET ^ fmix64(seed + GOLDEN)
    cdef Py_ssize_t i
    for i in range(n):
        h ^= data[i]
        h *= FNV_PRIME
    return fmix64(h ^ <uint64_t>n)


cdef inline uint64_t _hash_str(str s, uint64_t seed) except? 0:
    cdef bytes b = s.encode("utf-8")
    return _hash_bytes(<const uint8_t*><char*>b, len(b), seed)


def hash_str(str s, uint64_t seed=0):
    """Stable 64-bit hash of a string id (same value in every process and on every machine)."""
    return _hash_str(s, seed)


def hash_strs(list items, uint64_t seed=0):
    """Hash a list of strings into a new uint64 array."""
    cdef Py_ssize_t i, n = len(items)
    cdef cnp.ndarray[cnp.uint64_t, ndim=1] out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = _hash_str(<str>items[i], seed)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
def text_features(list words, uint64_t buckets, float word_weight, float gram_weight,
                  uint64_t word_seed, uint64_t gram_seed, int gram):
    """(bucket ids int64, kind weights float32) of a text's normalised words for the hashed
    embedding model (adserver/learn/embed.py): each word's hash, then, word by word, the
    hash of each run of `gram` characters of "<word>", all modulo `buckets`. A character
    run's UTF-8 bytes are a slice of the padded word's UTF-8 bytes between character starts,
    so no gram string is built (the Python version, of ~30 small strings and five numpy
    calls, took ~50 us a query)."""
    if buckets < 1 or gram < 1:
        raise ValueError("buckets and gram must be at least 1")
    cdef Py_ssize_t nw = len(words), i, j, c, nb, nchars, total = nw
    cdef bytes b
    cdef const uint8_t* data
    encoded = []
    for i in range(nw):
        b = ("<" + <str?>words[i] + ">").encode("utf-8")
        encoded.append(b)
        # characters: the bytes that do not continue a UTF-8 sequence
        data = <const uint8_t*><char*>b
        nchars = 0
        for j in range(len(b)):
            if (data[j] & 0xC0) != 0x80:
                nchars += 1
        if nchars >= gram:
            total += nchars - gram + 1
    ids_arr = np.empty(total, dtype=np.int64)
    kinds_arr = np.empty(total, dtype=np.float32)
    cdef int64_t[:] ids = ids_arr
    cdef float[:] kinds = kinds_arr
    cdef Py_ssize_t k = nw
    cdef Py_ssize_t starts[256]
    for i in range(nw):
        ids[i] = <int64_t>(_hash_str(<str>words[i], word_seed) % buckets)
        kinds[i] = word_weight
    for i in range(nw):
        b = <bytes>encoded[i]
        data = <const uint8_t*><char*>b
        nb = len(b)
        c = 0
        for j in range(nb):
            if (data[j] & 0xC0) != 0x80:
                if c < 256:
                    starts[c] = j
                c += 1
        if c > 255:  # a very long word: its grams one by one (as the Python version)
            padded = b.decode("utf-8")
            for j in range(c - gram + 1):
                ids[k] = <int64_t>(_hash_str(padded[j:j + gram], gram_seed) % buckets)
                kinds[k] = gram_weight
                k += 1
            continue
        starts[c] = nb
        for j in range(c - gram + 1):
            ids[k] = <int64_t>(_hash_bytes(data + starts[j], starts[j + gram] - starts[j],
                                           gram_seed) % buckets)
            kinds[k] = gram_weight
            k += 1
    return ids_arr, kinds_arr


cpdef uint64_t cross(uint64_t a, uint64_t b) noexcept nogil:
    """Hash of the ordered pair (a, b): the id of a feature cross."""
    return fmix64(a ^ (b + GOLDEN + (a << 6) + (a >> 2)))


def hash_feature(str name, str value, uint64_t seed=0):
    """Hash of a `name=value` feature without building the joined string in Python."""
    return cross(_hash_str(name, seed), _hash_str(value, seed))


# ---- feature hashing for the CTR/CVR models (adserver/learn/features.py) ----------------
#
# A candidate's features: every context feature (field, value), every ad feature (field,
# value) and, for each cross (context field, ad column), the pair of every context value of
# that field with the candidate's value in that column. A feature's bucket is
#   single: cross(cross(seed, field), value) & mask
#   cross:  cross(cross(cross(cross(seed, ctx field), ctx value), ad field), ad value) & mask
# Context features are hashed once and copied to every row.



def feature_width(const uint64_t[:] ctx_field, Py_ssize_t n_ad_fields,
                  const int32_t[:, :] crosses, bint singles=True):
    """How many features each candidate has: the columns `hash_features` fills."""
    cdef Py_ssize_t k = ctx_field.shape[0] + n_ad_fields if singles else 0
    cdef Py_ssize_t c, j
    for c in range(crosses.shape[0]):
        for j in range(ctx_field.shape[0]):
            if ctx_field[j] == <uint64_t>crosses[c, 0]:
                k += 1
    return k


@cython.boundscheck(False)
@cython.wraparound(False)
def hash_features(const uint64_t[:] ctx_field, const uint64_t[:] ctx_value,
                  const uint64_t[:] ad_field, const uint64_t[:, :] ad_values,
                  const int32_t[:, :] crosses, uint64_t seed, int bits, bint singles=True):
    """(n candidates, width) int32 buckets in [0, 2**bits). `ad_values[i, a]` is candidate
    i's value of field `ad_field[a]`; `crosses[c]` = (context field id, ad column). Without
    `singles`, only the crosses' columns (the context and ad features' own buckets are then
    summed apart: once per request, once per ad)."""
    if bits < 1 or bits > 30:
        raise ValueError("bits must be in 1..30")
    if ctx_field.shape[0] != ctx_value.shape[0]:
        raise ValueError("ctx_field and ctx_value differ in length")
    if ad_values.shape[1] != ad_field.shape[0]:
        raise ValueError("ad_values has a column per ad field")
    cdef Py_ssize_t n = ad_values.shape[0], nc = ctx_field.shape[0], na = ad_field.shape[0]
    cdef Py_ssize_t width = feature_width(ctx_field, na, crosses, singles)
    cdef Py_ssize_t i, j, a, c, k
    cdef uint64_t mask = (<uint64_t>1 << bits) - 1
    cdef uint64_t h
    for c in range(crosses.shape[0]):
        if crosses[c, 1] < 0 or crosses[c, 1] >= na:
            raise ValueError("a cross names an ad column out of range")
    out_arr = np.empty((n, width), dtype=np.int32)
    cdef int32_t[:, :] out = out_arr
    ctx_arr = np.empty(nc, dtype=np.uint64)  # hash of (field, value) before the ad part
    cdef uint64_t[:] ctx_h = ctx_arr
    ad_arr = np.empty(na, dtype=np.uint64)
    cdef uint64_t[:] ad_h = ad_arr
    with nogil:
        for j in range(nc):
            ctx_h[j] = cross(cross(seed, ctx_field[j]), ctx_value[j])
        for a in range(na):
            ad_h[a] = cross(seed, ad_field[a])
        for i in range(n):
            k = 0
            if singles:
                for j in range(nc):
                    out[i, j] = <int32_t>(ctx_h[j] & mask)
                k = nc
                for a in range(na):
                    out[i, k] = <int32_t>(cross(ad_h[a], ad_values[i, a]) & mask)
                    k += 1
            for c in range(crosses.shape[0]):
                a = crosses[c, 1]
                for j in range(nc):
                    if ctx_field[j] == <uint64_t>crosses[c, 0]:
                        h = cross(cross(ctx_h[j], ad_field[a]), ad_values[i, a])
                        out[i, k] = <int32_t>(h & mask)
                        k += 1
    return out_arr


# ---- contextual bandit features (adserver/learn/bandit.py) -----------------------------
#
# Each action's features: its own (id, value) pairs, then every (context, action) pair, whose
# id is cross(context id, action id) and value the product of the two values.

@cython.boundscheck(False)
@cython.wraparound(False)
def action_features(const uint64_t[:] ctx_ids, const double[:] ctx_vals,
                    const uint64_t[:] act_ids, const double[:] act_vals,
                    const int64_t[:] act_ptr, int bits):
    """(ptr, buckets, values): CSR rows of each action's features in [0, 2**bits)."""
    if bits < 1 or bits > 30:
        raise ValueError("bits must be in 1..30")
    if ctx_ids.shape[0] != ctx_vals.shape[0] or act_ids.shape[0] != act_vals.shape[0]:
        raise ValueError("ids and values differ in length")
    cdef Py_ssize_t n = act_ptr.shape[0] - 1, nc = ctx_ids.shape[0], i, j, c, k = 0
    if n < 0 or act_ptr[0] != 0 or act_ptr[n] != act_ids.shape[0]:
        raise ValueError("act_ptr must run from 0 to len(act_ids)")
    for i in range(n):
        if act_ptr[i + 1] < act_ptr[i]:
            raise ValueError("act_ptr must not decrease")
    cdef Py_ssize_t total = act_ids.shape[0] * (1 + nc)
    cdef uint64_t mask = (<uint64_t>1 << bits) - 1
    ptr_arr = np.empty(n + 1, dtype=np.int64)
    idx_arr = np.empty(total, dtype=np.int32)
    val_arr = np.empty(total, dtype=np.float64)
    cdef int64_t[:] ptr = ptr_arr
    cdef int32_t[:] idx = idx_arr
    cdef double[:] val = val_arr
    with nogil:
        ptr[0] = 0
        for i in range(n):
            for j in range(act_ptr[i], act_ptr[i + 1]):
                idx[k] = <int32_t>(act_ids[j] & mask)
                val[k] = act_vals[j]
                k += 1
                for c in range(nc):
                    idx[k] = <int32_t>(cross(ctx_ids[c], act_ids[j]) & mask)
                    val[k] = ctx_vals[c] * act_vals[j]
                    k += 1
            ptr[i + 1] = k
    return ptr_arr, idx_arr, val_arr
