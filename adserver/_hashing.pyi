import numpy as np
import numpy.typing as npt

def hash_str(s: str, seed: int = 0) -> int: ...
def hash_strs(items: list[str], seed: int = 0) -> npt.NDArray[np.uint64]: ...
def text_features(
    words: list[str],
    buckets: int,
    word_weight: float,
    gram_weight: float,
    word_seed: int,
    gram_seed: int,
    gram: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def cross(a: int, b: int) -> int: ...
def hash_feature(name: str, value: str, seed: int = 0) -> int: ...
def feature_width(
    ctx_field: npt.NDArray[np.uint64],
    n_ad_fields: int,
    crosses: npt.NDArray[np.int32],
    singles: bool = True,
) -> int: ...
def hash_features(
    ctx_field: npt.NDArray[np.uint64],
    ctx_value: npt.NDArray[np.uint64],
    ad_field: npt.NDArray[np.uint64],
    ad_values: npt.NDArray[np.uint64],
    crosses: npt.NDArray[np.int32],
    seed: int,
    bits: int,
    singles: bool = True,
) -> npt.NDArray[np.int32]: ...
def action_features(
    ctx_ids: npt.NDArray[np.uint64],
    ctx_vals: npt.NDArray[np.float64],
    act_ids: npt.NDArray[np.uint64],
    act_vals: npt.NDArray[np.float64],
    act_ptr: npt.NDArray[np.int64],
    bits: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
