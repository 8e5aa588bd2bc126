"""Stage 3b (between the filters and the auction): pCTR and pCVR of a placement's candidates
from the active CTR and CVR models, where the auction needs them (CPC and CPA flights: a CPM
bid's eCPM does not depend on them). The decision record keeps what the auction used and,
while a shadow model runs, both models' predictions for every winner (the shadow's are never
used).

Without an active model the auction uses the ads' prior pCTR/pCVR (snapshot columns). The
features (adserver/learn/features.py) are the request's context (site, zone, hour of week,
device, segments, query tokens, the page's category) and each candidate's ad fields, hashed
in Cython and scored in Numba (adserver/learn/ctr.Model.predict).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adserver.learn.ctr import Model
from adserver.serving.bound import BoundSnapshot
from adserver.serving.stages import sponsored
from adserver.snapshot import format as f

NONE = np.zeros(0)


class Models:
    """The models a worker serves with, swapped as one reference (never mutated)."""

    __slots__ = ("ctr", "cvr", "shadow_ctr", "shadow_cvr", "versions", "header")

    def __init__(
        self,
        ctr: Model | None = None,
        cvr: Model | None = None,
        shadow_ctr: Model | None = None,
        shadow_cvr: Model | None = None,
    ):
        self.ctr, self.cvr, self.shadow_ctr, self.shadow_cvr = ctr, cvr, shadow_ctr, shadow_cvr
        # for the decision record: {"ctr": version, "ctr_shadow": version, ...}
        self.versions = {
            k: m.version
            for k, m in (
                ("ctr", ctr),
                ("cvr", cvr),
                ("ctr_shadow", shadow_ctr),
                ("cvr_shadow", shadow_cvr),
            )
            if m is not None
        }
        # the response header `x-adserver-models` ("ctr=000003,ctr_shadow=000004")
        self.header = ",".join(f"{k}={v}" for k, v in self.versions.items())

    @property
    def any(self) -> bool:
        return bool(self.versions)


NO_MODELS = Models()


def page_category(snap: BoundSnapshot, pctx: sponsored.Context | None) -> int:
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


class Scorer:
    """One placement's predictions: each model's request context is hashed and summed once,
    then reused for the auction's candidates and for the winners."""

    __slots__ = ("snap", "models", "raw", "contexts")

    def __init__(self, snap: BoundSnapshot, models: Models, raw: dict[str, Any]):
        self.snap, self.models, self.raw = snap, models, raw
        self.contexts: dict[int, Any] = {}

    def _rows(self, model: Model, rows: np.ndarray) -> np.ndarray:
        ctx = self.contexts.get(id(model))
        if ctx is None:
            ctx = self.contexts[id(model)] = model.context(self.raw)
        return model.predict_rows(self.snap.version, self.snap.ad_features, ctx, rows)

    def auction(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pCTR, pCVR) for the auction, aligned with `rows`: the active model's prediction
        for the candidates whose eCPM depends on it (CPC flights for pCTR, CPA for pCVR),
        the prior for the others; NONE where no model is active (the auction then reads
        the priors)."""
        models = self.models
        if rows.shape[0] == 0 or (models.ctr is None and models.cvr is None):
            return NONE, NONE
        c = self.snap.columns
        rates = self.snap.ad_rate[rows]
        out = []
        for model, rate, prior in (
            (models.ctr, f.RATE_CPC, c["ad_prior_ctr"]),
            (models.cvr, f.RATE_CPA, c["ad_prior_cvr"]),
        ):
            if model is None:
                out.append(NONE)
                continue
            values = prior[rows]
            needed = rates == rate
            if needed.any():
                values[needed] = self._rows(model, rows[needed])
            out.append(values)
        return out[0], out[1]

    def logged(self, rows: np.ndarray) -> list[list[Any]]:
        """While a shadow model runs, what the decision record keeps for the winners `rows`:
        [pCTR, shadow pCTR, pCVR, shadow pCVR] lists, both models' predictions for every
        winner whatever its rate type, so that the two can be compared (without a shadow the
        record keeps what the auction used: serving/record.winners)."""
        c = self.snap.columns
        m = self.models
        out: list[list[Any]] = []
        for model, prior in (
            (m.ctr, c["ad_prior_ctr"]),
            (m.shadow_ctr, None),
            (m.cvr, c["ad_prior_cvr"]),
            (m.shadow_cvr, None),
        ):
            if model is not None:
                out.append(self._rows(model, rows).tolist())
            elif prior is not None:
                out.append(prior[rows].tolist())
            else:
                out.append([None] * rows.shape[0])
        return out


def prepare(snap: BoundSnapshot, models: Models) -> None:
    """Sum each model's ad logits for a snapshot before it serves (else the first request
    after a swap pays for it)."""
    for model in (models.ctr, models.cvr, models.shadow_ctr, models.shadow_cvr):
        if model is not None:
            model.ad_logits(snap.version, snap.ad_features)
