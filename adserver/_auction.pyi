from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

class Waterfall:
    def __init__(
        self,
        records: tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
        prio_order: npt.NDArray[np.int32],
        prio_selection: npt.NDArray[np.int8],
        prio_second: npt.NDArray[np.int8],
        prio_floor_cpm: npt.NDArray[np.float64],
        prio_floor_cpc: npt.NDArray[np.float64],
    ) -> None: ...
    def run(
        self,
        rows: npt.NDArray[np.int32],
        floor_cpm: float,
        floor_cpc: float,
        uniforms: npt.NDArray[np.float64],
        k: int,
        detail: npt.NDArray[np.float64],
        bids: npt.NDArray[np.float64],
        boost: npt.NDArray[np.float64],
        ctr: npt.NDArray[np.float64],
        cvr: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], float]: ...

def from_columns(
    columns: Mapping[str, np.ndarray],
    prio_order: npt.NDArray[np.int32],
    prio_selection: npt.NDArray[np.int8],
    prio_second: npt.NDArray[np.int8],
    prio_floor_cpm: npt.NDArray[np.float64],
    prio_floor_cpc: npt.NDArray[np.float64],
) -> Waterfall: ...
