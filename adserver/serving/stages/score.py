"""Stage 3b (between the filters and the auction): pCTR and pCVR of a placement's candidates
from the active CTR and CVR models, and the shadow models' predictions, which are logged in
the decision record beside the active ones and never reach the auction.

Without an active model the auction uses the ads' prior pCTR/pCVR (snapshot columns). The
features (adserver/learn/features.py) are the request's context (site, zone, hour of week,
device, segments, query tokens, the page's category) and each candidate's ad fields, hashed
in Cython and scored in Numba (adserver/learn/ctr.Model.predict).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.learn.ctr import Model
from adserver.serving.stages import sponsored
from adserver.snapshot import format as f
from adserver.snapshot.loader import Snapshot

NONE = np.zeros(0)


class Models:
    """The models a worker serves with, swapped as one reference (never mutated)."""

    __slots__ = ("ctr", "cvr", "shadow_ctr", "shadow_cvr", "versions", "header")

    def __init__(self, ctr: Model | None = None, cvr: Model | None = None,
                 shadow_ctr: Model | None = None, shadow_cvr: Model | None = None):
        self.ctr, self.cvr, self.shadow_ctr, self.shadow_cvr = ctr, cvr, shadow_ctr, shadow_cvr
        # for the decision record: {"ctr": version, "ctr_shadow": version, ...}
        self.versions = {k: m.version for k, m in (
            ("ctr", ctr), ("cvr", cvr), ("ctr_shadow", shadow_ctr), ("cvr_shadow", shadow_cvr))
            if m is not None}
        # the response header `x-adserver-models` ("ctr=000003,ctr_shadow=000004")
        self.header = ",".join(f"{k}={v}" for k, v in self.versions.items())

    @property
    def any(self) -> bool:
        return bool(self.versions)


NO_MODELS = Models()


def page_category(snap: Snapshot, pctx: sponsored.Context | None) -> int:
    """The page's category id: a category page's own, else the viewed product's leaf
    category; 0 when neither."""
    if pctx is None:
        return 0
    if pctx.categories:
        return pctx.categories[0]
    if pctx.exclude >= 0 and snap.products is not None:
        path = snap.products.product(pctx.exclude).get("category") or ()
        return f.category_id(path[-1]) if path else 0
    return 0


def predict(snap: Snapshot, models: Models, raw: dict[str, Any], rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pCTR, pCVR, shadow pCTR, shadow pCVR) aligned with `rows`; NONE where no model."""
    if not models.any or rows.shape[0] == 0:
        return NONE, NONE, NONE, NONE
    ads = snap.ad_features[rows]
    out = []
    for model in (models.ctr, models.cvr, models.shadow_ctr, models.shadow_cvr):
        out.append(NONE if model is None else
                   model.predict(model.spec.context_arrays(raw), ads))
    return out[0], out[1], out[2], out[3]
