from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

class Targeting:
    def __init__(self, columns: Mapping[str, np.ndarray], strings: list[str]) -> None: ...
    @property
    def records(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
    def filter(
        self,
        rows: npt.NDArray[np.int32],
        q: Any,
        paused: npt.NDArray[np.int8],
        explain: bool = False,
        limit: int = 0,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int8] | None]: ...
    def filter_lists(
        self,
        lists: list[npt.NDArray[np.int32]],
        q: Any,
        paused: npt.NDArray[np.int8],
        explain: bool = False,
        limit: int = 0,
        counts: npt.NDArray[np.int64] | None = None,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int8] | None]: ...
    def keyword_bids(self, rows: npt.NDArray[np.int32], q: Any) -> npt.NDArray[np.float64]: ...
