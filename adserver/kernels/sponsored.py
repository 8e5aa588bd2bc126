"""The sponsored-product kernels' shared codes. The kernels (the relevance gate and the ads
of retrieved products) are Cython, bound to a snapshot (native/_sponsored.pyx, `Gate`);
their rules and plain-Python twins: adserver/kernels/sponsored_ref.py.
"""

from __future__ import annotations

from adserver.kernels.codes import (  # noqa: F401  (the gate's codes, declared once)
    DEDUPED,
    KEPT,
    NOT_RELEVANT,
    RATE_CPA,
    RATE_CPC,
    RATE_CPM,
    UNAVAILABLE,
)
