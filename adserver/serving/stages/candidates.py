"""Stage 2: the candidate ad rows of a placement, from the snapshot's posting lists.

Assumes a resolved Plan. Returns every posting list that could hold an eligible ad: per ad
type, the lists of the placement's zones, its site, the untargeted list, and the keyword
lists of the request's tokens. Each list is ordered best first (tier, then static eCPM);
an ad may be in several; the filter drops repeats.
"""

from __future__ import annotations

import numpy as np

from adserver.serving.stages.resolve import Plan
from adserver.snapshot.format import posting_key
from adserver.snapshot.loader import Snapshot

_placement_keys: dict[tuple, list[int]] = {}


def lists(snap: Snapshot, plan: Plan, tokens: tuple[int, ...], contextual: tuple[int, ...] = ()
          ) -> list[np.ndarray]:
    """`contextual`: ad types whose candidates come from the request's context (sponsored
    products with a query, product or category: adserver/serving/stages/sponsored.py), so
    the generic lists are skipped for them; keyword lists are kept for every type."""
    p = plan.placement
    net = plan.network_id
    ad_types = tuple(t for t in p.ad_types or () if t not in contextual)
    shape = (net, ad_types, plan.site_id, tuple(p.zone_ids or ()))
    keys = _placement_keys.get(shape)
    if keys is None:  # a storefront asks for the same few placements over and over
        keys = []
        for ad_type in ad_types:
            keys.append(posting_key("all", net, ad_type))
            keys.append(posting_key("site", net, ad_type, plan.site_id))
            for z in shape[3]:
                keys.append(posting_key("zone", net, ad_type, z))
        if len(_placement_keys) > 10000:
            _placement_keys.clear()
        _placement_keys[shape] = keys
    if tokens:
        keys = keys + [posting_key("kw", net, t2, t) for t2 in (*ad_types, *contextual)
                       for t in tokens]
    return snap.lists(keys)
