"""Query and keyword normalisation, shared by the snapshot compiler and the decision path.

Lower case, punctuation to spaces, simple plural folding ("shoes" -> "shoe", "boxes" -> "box",
"berries" -> "berry"; words of three letters or fewer and words ending in "ss" are kept).
Tokens become stable 64-bit ids with the Cython hash, so both planes agree on them.
"""

from __future__ import annotations

import re

import numpy as np

from adserver.common.hashing import hash_strs

_PUNCT = re.compile(r"[^\w]+", re.UNICODE)
TOKEN_SEED = 0x6B6579  # keeps token ids apart from other string ids


def fold(word: str) -> str:
    if len(word) <= 3 or word.endswith("ss") or not word.endswith("s"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    return word[:-1]


def tokens(text: str) -> list[str]:
    """Normalised tokens of a query or keyword, in order."""
    return [fold(w) for w in _PUNCT.sub(" ", text.lower()).replace("_", " ").split()]


def token_ids(text: str) -> np.ndarray:
    """uint64 ids of the normalised tokens, in order."""
    return hash_strs(tokens(text), TOKEN_SEED)
