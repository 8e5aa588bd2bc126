"""Stable 64-bit ids for strings and feature crosses, shared by both planes.

The work is done by the compiled module `adserver._hashing`; its plain-Python twin is
`adserver.kernels.hashing_ref`.
"""

from adserver._hashing import cross, hash_feature, hash_str, hash_strs, text_features

__all__ = ["cross", "hash_feature", "hash_str", "hash_strs", "text_features"]
