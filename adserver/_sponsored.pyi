from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

KEPT: int
DEDUPED: int
NOT_RELEVANT: int
UNAVAILABLE: int

class Gate:
    def __init__(
        self,
        records: tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
        vectors: npt.NDArray[np.float32],
        available: npt.NDArray[np.int8],
        sp: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None: ...
    def product_ads(
        self, prows: npt.NDArray[np.int64], types: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int32]: ...
    def run(
        self,
        rows: npt.NDArray[np.int32],
        n_given: int,
        n_matched: int,
        types: npt.NDArray[np.int64],
        query: npt.NDArray[np.float32],
        confidence: float,
        active: bool,
        qrows: npt.NDArray[np.int64],
        qscores: npt.NDArray[np.float64],
        use_quality: bool,
        exclude: int,
        threshold: float,
        floor: float,
        alpha: float,
        out_rows: npt.NDArray[np.int32],
        out_boost: npt.NDArray[np.float64],
        reasons: npt.NDArray[np.int8],
        rel: npt.NDArray[np.float64],
    ) -> int: ...

def from_columns(
    columns: Mapping[str, np.ndarray],
    vectors: npt.NDArray[np.float32],
    available: npt.NDArray[np.int8],
) -> Gate: ...
