from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

def records(
    columns: Mapping[str, np.ndarray],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
def partial_records(
    columns: Mapping[str, np.ndarray],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
