"""Stage 2: the candidate ad rows of a placement, from the snapshot's posting lists.

Assumes a resolved Plan. Returns the rows of every list that could hold an eligible ad:
per ad type, the lists of the placement's zones, its site, the untargeted list, and the
keyword lists of the request's tokens. Rows may repeat; the filter drops repeats.
"""

from __future__ import annotations

import numpy as np

from adserver.serving.stages.resolve import Plan
from adserver.snapshot.format import posting_key
from adserver.snapshot.loader import Snapshot


def rows(snap: Snapshot, plan: Plan, tokens: list[int]) -> np.ndarray:
    keys = []
    net = plan.network_id
    for ad_type in plan.placement.ad_types or ():
        keys.append(posting_key("all", net, ad_type))
        keys.append(posting_key("site", net, ad_type, plan.site_id))
        for z in plan.zone_ids.tolist():
            keys.append(posting_key("zone", net, ad_type, z))
        for t in tokens:
            keys.append(posting_key("kw", net, ad_type, t))
    return snap.rows(keys)
