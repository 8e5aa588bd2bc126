# Plain (pointer, length) views of a request's 1-D numpy arrays for the hot-path kernels.
#
# A typed memoryview per array and call costs ~0.3 us warm and ~2 us with cold caches (buffer
# protocol, format checks); reading the array's own fields costs next to nothing. Kernels
# take per-request arrays through these views (dtype and shape checked: ValueError, as a
# typed memoryview would raise; a strided array is copied and the copy kept alive in the
# caller's `keep` list) and bind snapshot columns as memoryviews once per snapshot.

cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

ctypedef struct I64s:
    const int64_t* p
    Py_ssize_t n

ctypedef struct U64s:
    const uint64_t* p
    Py_ssize_t n

ctypedef struct F8s:
    const double* p
    Py_ssize_t n

ctypedef struct I8s:
    const int8_t* p
    Py_ssize_t n


cdef inline const void* _data(object o, int typenum, Py_ssize_t* n, list keep) except NULL:
    """The data of a 1-D array of one dtype (a C-contiguous copy, kept alive in `keep`, when
    it is strided), its length in `n`; ValueError for another dtype or shape."""
    cdef cnp.ndarray a
    if not isinstance(o, cnp.ndarray):
        o = cnp.PyArray_FROM_O(o)
    a = <cnp.ndarray>o
    if cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != 1:
        raise ValueError(f"expected a 1-D array of {cnp.PyArray_DescrFromType(typenum)}, got "
                         f"{a.dtype} with {a.ndim} dimensions")
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        a = cnp.PyArray_GETCONTIGUOUS(a)
        keep.append(a)
    n[0] = cnp.PyArray_DIM(a, 0)
    return cnp.PyArray_DATA(a)


cdef inline void* _out(object o, int typenum, Py_ssize_t n, str name) except NULL:
    """The data of an output array: the caller's own 1-D, C-contiguous, writable array of one
    dtype with at least `n` entries (never a copy); ValueError naming it otherwise."""
    if not isinstance(o, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray>o) != typenum \
            or cnp.PyArray_NDIM(<cnp.ndarray>o) != 1 \
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>o) \
            or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>o) or cnp.PyArray_DIM(<cnp.ndarray>o, 0) < n:
        raise ValueError(f"{name}: a writable, contiguous 1-D array of "
                         f"{cnp.PyArray_DescrFromType(typenum)} with at least {n} entries")
    return cnp.PyArray_DATA(<cnp.ndarray>o)


cdef inline I64s _i64(object o, list keep) except *:
    cdef I64s v
    v.p = <const int64_t*>_data(o, cnp.NPY_INT64, &v.n, keep)
    return v


cdef inline U64s _u64(object o, list keep) except *:
    cdef U64s v
    v.p = <const uint64_t*>_data(o, cnp.NPY_UINT64, &v.n, keep)
    return v


cdef inline F8s _f8(object o, list keep) except *:
    cdef F8s v
    v.p = <const double*>_data(o, cnp.NPY_FLOAT64, &v.n, keep)
    return v


cdef inline I8s _i8(object o, list keep) except *:
    cdef I8s v
    v.p = <const int8_t*>_data(o, cnp.NPY_INT8, &v.n, keep)
    return v
