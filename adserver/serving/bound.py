"""A published snapshot as a decision worker serves it: the format (snapshot/loader.py) with
the native kernels bound once to its columns (the candidate filter, the relevance gate, the
auction waterfall), the product index and embedding model it names, every ad row's model
features, and the per-version caches the stages keep (candidate lists, retrieved products,
ads read for responding). Immutable apart from those caches; the worker swaps it as one
reference when a new version is published."""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec
import numpy as np

from adserver import _auction, _sponsored, _targeting
from adserver.learn import embed, features
from adserver.learn.embed import Model
from adserver.snapshot.loader import Snapshot, SnapshotError
from adserver.snapshot.products import ProductIndex, ProductIndexError
from adserver.snapshot.writer import current_version


class Ad(NamedTuple):
    """An ad row's ids, contents and logged fields (Snapshot.ad)."""

    ad_id: int
    creative_id: int
    flight_id: int
    campaign_id: int
    advertiser_id: int
    contents: msgspec.Raw  # Kevel contents JSON
    dest: str  # the creative's (or product's) click destination
    features: tuple[int, ...]  # learn/features.AD_ORDER values, as the decision record logs them
    prior_ctr: float
    prior_cvr: float


class BoundSnapshot(Snapshot):
    """One snapshot version with what serving binds to it (see the module)."""

    def __init__(self, root: str, version: str):
        super().__init__(root, version)
        c = self.columns
        self.products: ProductIndex | None = None
        self.embedder: Model | None = None
        if self.meta.get("products"):
            self.products, self.embedder = _product_index(root, self.meta["products"])
        # per-version caches (serving/stages/sponsored.retrieved, candidates.for_placement)
        self.retrieved: dict[Any, tuple[np.ndarray, ...]] = {}
        self.candidates: dict[Any, Any] = {}
        self.no_pause = np.zeros(0, dtype=np.int8)
        self._ads: dict[int, Ad] = {}
        self._bind_kernels()
        # every ad row's CTR-model fields (learn/features.AD_ORDER), for scoring and records
        self.ad_features = features.ad_matrix(c)
        self.ad_rate = c["fl_rate"][c["ad_flight"]]  # each ad row's flight rate type

    def _bind_kernels(self) -> None:
        """The native kernels, bound once to this version's columns: the filter (which
        builds the hot records), the relevance gate (the records and the product index) and
        the auction waterfall (the records and the priorities). They read rows without
        bounds checks, so data that points nowhere is refused here, not in a request."""
        c = self.columns
        try:
            self.targeting = _targeting.Targeting(c, self.meta["strings"])
            self.gate: _sponsored.Gate | None = (
                None
                if self.products is None
                else _sponsored.Gate(
                    self.targeting.records,
                    self.products.vectors,
                    self.products.available,
                    (c["sp_prow"], c["sp_ptr"], c["sp_rows"]),
                )
            )
            self.waterfall = _auction.Waterfall(
                self.targeting.records,
                self.prio_order,
                c["prio_selection"],
                c["prio_second"],
                self.prio_floor_cpm,
                self.prio_floor_cpc,
            )
        except (ValueError, TypeError) as e:
            raise SnapshotError(f"snapshot {self.version}: {e}") from e

    def ad(self, row: int) -> Ad:
        """What responding and logging need of an ad row, read once per version (winners
        repeat: a few plain-Python fields beat six numpy fancy-index reads per winner). Its
        contents are its product's when it promotes one the product index holds, else its
        creative's."""
        found = self._ads.get(row)
        if found is None:
            c = self.columns
            fl = int(c["ad_flight"][row])
            creative = int(c["ad_creative"][row])
            if c["ad_product"][row] < 0:
                contents, dest = self._entry(b"cr", creative, "creative")
            else:
                contents, dest = self._entry(b"ap", int(c["ad_id"][row]), "product contents of ad")
            found = self._ads[row] = Ad(
                int(c["ad_id"][row]),
                creative,
                int(c["fl_id"][fl]),
                int(c["fl_campaign"][fl]),
                int(c["fl_advertiser"][fl]),
                msgspec.Raw(contents),
                dest,
                tuple(self.ad_features[row].tolist()),
                float(c["ad_prior_ctr"][row]),
                float(c["ad_prior_cvr"][row]),
            )
        return found


_indexes: dict[str, tuple[ProductIndex, Model]] = {}


def _product_index(root: str, version: str) -> tuple[ProductIndex, Model]:
    """A product index version with its HNSW graphs and embedding model, shared by the
    snapshots that name it (the last two versions stay open)."""
    found = _indexes.get(version)
    if found is None:
        try:
            index = ProductIndex(root, version)
            model = embed.load(root, index.model or "")
        except (ProductIndexError, embed.ModelError) as e:
            raise SnapshotError(str(e)) from e
        while len(_indexes) >= 2:
            _indexes.pop(next(iter(_indexes)))
        found = _indexes[version] = (index, model)
    return found


def load_current(root: str) -> BoundSnapshot | None:
    """The version CURRENT points at, bound for serving, or None before the first publish."""
    version = current_version(root)
    return None if version is None else BoundSnapshot(root, version)
