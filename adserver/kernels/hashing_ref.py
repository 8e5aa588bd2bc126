"""Plain-Python twin of the Cython module adserver._hashing (native/_hashing.pyx).

Slow and obviously correct; tests compare it with the compiled module on generated cases.
"""

import numpy as np

MASK = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
GOLDEN = 0x9E3779B97F4A7C15


def fmix64(k: int) -> int:
    """MurmurHash3's 64-bit finalizer."""
    k &= MASK
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK
    k ^= k >> 33
    return k


def hash_str(s: str, seed: int = 0) -> int:
    data = s.encode("utf-8")
    h = FNV_OFFSET ^ fmix64(seed + GOLDEN)
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & MASK
    return fmix64(h ^ len(data))


def hash_strs(items: list[str], seed: int = 0) -> np.ndarray:
    return np.array([hash_str(s, seed) for s in items], dtype=np.uint64)


def text_features(
    words: list[str],
    buckets: int,
    word_weight: float,
    gram_weight: float,
    word_seed: int,
    gram_seed: int,
    gram: int,
) -> tuple[np.ndarray, np.ndarray]:
    grams = [
        g
        for w in words
        for p in [f"<{w}>"]
        for g in (p[i : i + gram] for i in range(len(p) - gram + 1))
    ]
    ids = [hash_str(w, word_seed) % buckets for w in words] + [
        hash_str(g, gram_seed) % buckets for g in grams
    ]
    kinds = [word_weight] * len(words) + [gram_weight] * len(grams)
    return np.array(ids, dtype=np.int64), np.array(kinds, dtype=np.float32)


def cross(a: int, b: int) -> int:
    return fmix64(a ^ ((b + GOLDEN + ((a << 6) & MASK) + (a >> 2)) & MASK))


def hash_feature(name: str, value: str, seed: int = 0) -> int:
    return cross(hash_str(name, seed), hash_str(value, seed))


def feature_width(
    ctx_field: np.ndarray, n_ad_fields: int, crosses: np.ndarray, singles: bool = True
) -> int:
    return (len(ctx_field) + n_ad_fields if singles else 0) + sum(
        int(f == c) for c in crosses[:, 0].tolist() for f in ctx_field.tolist()
    )


def hash_features(
    ctx_field: np.ndarray,
    ctx_value: np.ndarray,
    ad_field: np.ndarray,
    ad_values: np.ndarray,
    crosses: np.ndarray,
    seed: int,
    bits: int,
    singles: bool = True,
) -> np.ndarray:
    """Each candidate's feature buckets: context features, ad features (unless not
    `singles`), then crosses."""
    if not 1 <= bits <= 30:
        raise ValueError("bits must be in 1..30")
    mask = (1 << bits) - 1
    rows = []
    for values in ad_values.tolist():
        feats = []
        if singles:
            feats += [
                cross(cross(seed, f), v) for f, v in zip(ctx_field.tolist(), ctx_value.tolist())
            ]
            feats += [cross(cross(seed, f), v) for f, v in zip(ad_field.tolist(), values)]
        for cf, col in crosses.tolist():
            for f, v in zip(ctx_field.tolist(), ctx_value.tolist()):
                if f == cf:
                    feats.append(
                        cross(cross(cross(cross(seed, f), v), int(ad_field[col])), values[col])
                    )
        rows.append([h & mask for h in feats])
    width = feature_width(ctx_field, len(ad_field), crosses, singles)
    return np.array(rows, dtype=np.int32).reshape(len(rows), width)


def action_features(
    ctx_ids: np.ndarray,
    ctx_vals: np.ndarray,
    act_ids: np.ndarray,
    act_vals: np.ndarray,
    act_ptr: np.ndarray,
    bits: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each action's own features, then each (context, action feature) pair."""
    if not 1 <= bits <= 30:
        raise ValueError("bits must be in 1..30")
    mask = (1 << bits) - 1
    ptr, idx, val = [0], [], []
    for a, b in zip(act_ptr[:-1].tolist(), act_ptr[1:].tolist()):
        for j in range(a, b):
            idx.append(int(act_ids[j]) & mask)
            val.append(float(act_vals[j]))
            for c, cv in zip(ctx_ids.tolist(), ctx_vals.tolist()):
                idx.append(cross(c, int(act_ids[j])) & mask)
                val.append(cv * float(act_vals[j]))
        ptr.append(len(idx))
    return (
        np.array(ptr, dtype=np.int64),
        np.array(idx, dtype=np.int32),
        np.array(val, dtype=np.float64),
    )
