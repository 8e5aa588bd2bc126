"""The sponsored-product kernels' shared codes. The kernels (the relevance gate and the ads
of retrieved products) are Cython, bound to a snapshot (native/_sponsored.pyx, `Gate`);
their rules and plain-Python twins: adserver/kernels/sponsored_ref.py.
"""

from __future__ import annotations

KEPT, DEDUPED, NOT_RELEVANT, UNAVAILABLE = 0, 11, 18, 19
RATE_CPM, RATE_CPC, RATE_CPA = 1, 2, 3
