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
from libc.stdint cimport uint64_t, uint8_t

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


cpdef uint64_t cross(uint64_t a, uint64_t b) noexcept:
    """Hash of the ordered pair (a, b): the id of a feature cross."""
    return fmix64(a ^ (b + GOLDEN + (a << 6) + (a >> 2)))


def hash_feature(str name, str value, uint64_t seed=0):
    """Hash of a `name=value` feature without building the joined string in Python."""
    return cross(_hash_str(name, seed), _hash_str(value, seed))
