"""Numba kernels and the plain-Python twins of every kernel (Cython ones are built from native/)."""
